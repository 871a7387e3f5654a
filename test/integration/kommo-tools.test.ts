/** Every Kommo tool through a real MCP Client against the emulator: success, not found, bad input, paging. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { connectKommo, errorOf, FULL, structured, text, WRITE, writesTo, type Connected, closeAll, kommoSession } from '../helpers/index.js';

interface LeadOut {
  id: number;
  name: string;
  stage: { id: number; name: string | null; type: string | null } | null;
  pipeline: { id: number; name: string | null } | null;
  contact_ids: number[];
  tags: string[];
  created_at: string | null;
}
interface PageOut<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
}

let emu: KommoEmulator;
let c: Connected;

beforeAll(async () => {
  ({ emu, c } = await kommoSession({ flags: WRITE }));
});
afterAll(() => closeAll(c, emu));

describe('reads', () => {
  it('get_account reports the account and the policy', async () => {
    const a = structured<{ provider: string; name: string; policy: { mode: string }; auth: { type: string; expires_at: string | null } }>(
      await c.call('get_account'),
    );
    expect(a.provider).toBe('kommo');
    expect(a.name).toBeTruthy();
    expect(a.policy.mode).toBe('write');
    expect(a.auth.type).toBe('long-lived');
    expect(a.auth.expires_at).toMatch(/^\d{4}-/);
  });

  it('get_pipelines lists stages with won/lost semantics and names', async () => {
    const { pipelines } = structured<{
      pipelines: Array<{ id: number; name: string; is_main: boolean; stages: Array<{ id: number; name: string; type: string }> }>;
    }>(await c.call('get_pipelines'));
    expect(pipelines.length).toBeGreaterThanOrEqual(3);
    expect(pipelines.filter((p) => p.is_main)).toHaveLength(1);
    for (const p of pipelines) {
      expect(p.stages.find((s) => s.id === 142)?.type).toBe('won');
      expect(p.stages.find((s) => s.id === 143)?.type).toBe('lost');
    }
  });

  it('list_leads pages through every lead with an exact has_more', async () => {
    const seen = new Set<number>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: PageOut<LeadOut> = structured(await c.call('list_leads', { limit: 100, ...(cursor ? { cursor } : {}) }));
      for (const l of page.items) seen.add(l.id);
      if (page.has_more) expect(page.items).toHaveLength(100);
      cursor = page.cursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(seen.size).toBe(emu.state.leads.size ?? [...(emu.state.leads as unknown as Iterable<unknown>)].length);
    expect(seen.size).toBeGreaterThanOrEqual(200);
  });

  it('list pages leave custom fields out unless asked; get_lead always has them', async () => {
    type Item = { id: number; custom_fields?: Array<{ id: number; name: string; code?: string; values: unknown[] }> };
    const plain = structured<PageOut<Item>>(await c.call('list_leads', { limit: 20 }));
    expect(plain.items.length).toBe(20);
    for (const l of plain.items) expect(l).not.toHaveProperty('custom_fields');
    const full = structured<PageOut<Item>>(await c.call('list_leads', { limit: 20, with_custom_fields: true }));
    expect(full.items.every((l) => Array.isArray(l.custom_fields))).toBe(true);
    expect(full.items.some((l) => (l.custom_fields ?? []).length > 0)).toBe(true);
    // `code` appears only where a field has one (never as null).
    for (const f of full.items.flatMap((l) => l.custom_fields ?? [])) expect(f.code === undefined || typeof f.code === 'string').toBe(true);
    // closed_at only on closed (won/lost) leads.
    const all = structured<PageOut<Item & { stage: { type: string } | null; closed_at?: string | null }>>(await c.call('list_leads', { limit: 250 })).items;
    for (const l of all.filter((x) => x.stage?.type === 'open' || x.stage?.type === 'incoming')) expect(l, `lead ${l.id}`).not.toHaveProperty('closed_at');
    const closed = all.filter((x) => x.stage?.type === 'won' || x.stage?.type === 'lost');
    expect(closed.length).toBeGreaterThan(0);
    for (const l of closed) expect(typeof l.closed_at, `lead ${l.id}`).toBe('string');
    const contacts = structured<PageOut<Item>>(await c.call('list_contacts', { limit: 5 }));
    for (const x of contacts.items) expect(x).not.toHaveProperty('custom_fields');
    const one = structured<{ lead: Item }>(await c.call('get_lead', { id: full.items[0]!.id }));
    expect(Array.isArray(one.lead.custom_fields)).toBe(true);
  });

  it('list_leads filters by pipeline and stage and puts names beside ids', async () => {
    const { pipelines } = structured<{ pipelines: Array<{ id: number; is_main: boolean; stages: Array<{ id: number; type: string }> }> }>(
      await c.call('get_pipelines'),
    );
    const main = pipelines.find((p) => p.is_main)!;
    const stage = main.stages.find((s) => s.type === 'open')!;
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { pipeline_id: main.id, status_ids: [stage.id], limit: 250 }));
    expect(page.items.length).toBeGreaterThan(0);
    for (const l of page.items) {
      expect(l.pipeline?.id).toBe(main.id);
      expect(l.stage?.id).toBe(stage.id);
      expect(l.stage?.name).toBeTruthy();
    }
  });

  it('list_leads with a query that matches nothing is an empty page (204), not an error', async () => {
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { query: 'zzz-no-such-lead-qqq' }));
    expect(page).toEqual({ items: [], has_more: false, cursor: null, total: null });
  });

  it('rejects a forged cursor and a bad date with a clear error', async () => {
    expect(errorOf(await c.call('list_leads', { cursor: 'not-a-cursor' }))).toMatchObject({ code: 'validation' });
    expect(errorOf(await c.call('list_leads', { created_from: 'last tuesday' })).message).toMatch(/created_from/);
  });

  it('get_lead returns contacts with flattened phones and emails', async () => {
    const search = structured<{ leads: LeadOut[] }>(await c.call('search_lead_by_contact', { email: 'ivan.petrov@example.com' }));
    const id = search.leads[0]!.id;
    const r = structured<{ lead: LeadOut; contacts: Array<{ name: string; phones: string[]; emails: string[] }> }>(await c.call('get_lead', { id }));
    expect(r.lead.id).toBe(id);
    expect(r.contacts.some((x) => x.emails.some((e) => e.toLowerCase() === 'ivan.petrov@example.com'))).toBe(true);
    expect(r.contacts.some((x) => x.phones.length > 0)).toBe(true);
  });

  it('get_lead / get_contact / get_company: not found is a clear not_found error', async () => {
    for (const tool of ['get_lead', 'get_contact', 'get_company']) {
      const e = errorOf(await c.call(tool, { id: 987654321 }));
      expect(e.code).toBe('not_found');
      expect(e.message).toMatch(/987654321/);
    }
  });

  it('bad input is a tool error, not a crash', async () => {
    const r = await c.call('get_lead', { id: -5 });
    expect(r.isError).toBe(true);
    const r2 = await c.call('get_lead', { id: 1, surprise: true });
    expect(r2.isError).toBe(true);
    const r3 = await c.call('list_leads', { limit: 100000 });
    expect(r3.isError).toBe(true);
  });

  it('list_contacts, get_contact, list_companies, get_company', async () => {
    const contacts = structured<PageOut<{ id: number; name: string; phones: string[] }>>(await c.call('list_contacts', { limit: 20 }));
    expect(contacts.items).toHaveLength(20);
    expect(contacts.has_more).toBe(true);
    const one = structured<{ contact: { id: number } }>(await c.call('get_contact', { id: contacts.items[0]!.id }));
    expect(one.contact.id).toBe(contacts.items[0]!.id);
    const companies = structured<PageOut<{ id: number; name: string }>>(await c.call('list_companies', { limit: 5 }));
    expect(companies.items.length).toBe(5);
    const co = structured<{ company: { id: number; name: string } }>(await c.call('get_company', { id: companies.items[0]!.id }));
    expect(co.company.name).toBe(companies.items[0]!.name);
  });

  it('get_custom_fields, list_users, list_tags', async () => {
    const f = structured<{ fields: Array<{ name: string; type: string; options?: unknown[] }> }>(await c.call('get_custom_fields', { entity: 'contacts' }));
    expect(f.fields.some((x) => x.name && x.type)).toBe(true);
    const leadFields = structured<{ fields: Array<{ options?: unknown[] }> }>(await c.call('get_custom_fields', { entity: 'leads' }));
    expect(leadFields.fields.some((x) => (x.options?.length ?? 0) > 0)).toBe(true);
    const u = structured<{ users: Array<{ id: number; name: string }> }>(await c.call('list_users'));
    expect(u.users.length).toBeGreaterThanOrEqual(3);
    const t = structured<{ tags: Array<{ name: string }> }>(await c.call('list_tags', { entity: 'leads' }));
    expect(t.tags.length).toBeGreaterThan(0);
    expect((await c.call('get_custom_fields', { entity: 'deals' })).isError).toBe(true);
  });
});

describe('search_lead_by_contact', () => {
  it.each(['+7 912 345-67-89', '8 (912) 345 67 89', '79123456789', '+79123456789'])('finds Ivan by phone %s', async (phone) => {
    const r = structured<{ found: boolean; query: { phone_e164: string }; contacts: Array<{ name: string }>; leads: LeadOut[] }>(
      await c.call('search_lead_by_contact', { phone }),
    );
    expect(r.query.phone_e164).toBe('+79123456789');
    expect(r.found).toBe(true);
    expect(r.contacts.map((x) => x.name).join()).toMatch(/Ivan Petrov/);
  });

  it('matches email case-insensitively', async () => {
    const r = structured<{ found: boolean }>(await c.call('search_lead_by_contact', { email: 'IVAN.PETROV@Example.COM' }));
    expect(r.found).toBe(true);
  });

  it('an unknown person is found: false; junk input is a validation error', async () => {
    const r = structured<{ found: boolean; leads: unknown[] }>(await c.call('search_lead_by_contact', { email: 'nobody-here@example.org' }));
    expect(r).toMatchObject({ found: false, leads: [] });
    // Rejected by the input schema (the SDK's -32602 tool error), before any request.
    const junk = await c.call('search_lead_by_contact', { phone: 'call me maybe' });
    expect(junk.isError).toBe(true);
    expect(text(junk)).toMatch(/phone[\s\S]*at least 5 digits/);
    expect(errorOf(await c.call('search_lead_by_contact', {})).code).toBe('validation');
  });
});

describe('writes', () => {
  it('create_lead creates lead + contact + company, visible in later reads', async () => {
    const before = writesTo(emu.requests).length;
    const r = structured<{ created: boolean; lead: LeadOut; contact_id: number }>(
      await c.call('create_lead', {
        name: 'Ada — analytics engine',
        price: 1200,
        contact: { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '+44 20 7946 0001' },
        company: { name: 'Analytical Engines Ltd' },
        tags: ['VIP'],
      }),
    );
    expect(r.created).toBe(true);
    expect(r.lead.name).toBe('Ada — analytics engine');
    expect(r.lead.tags).toContain('vip');
    expect(r.contact_id).toBeTruthy();
    // Plain creates that never merge (crms/kommo/leads.ts): company, contact, then the lead linked to both.
    expect(
      writesTo(emu.requests)
        .slice(before)
        .map((q) => `${q.method} ${q.path}`),
    ).toEqual(['POST /api/v4/companies', 'POST /api/v4/contacts', 'POST /api/v4/leads']);
    const again = structured<{ found: boolean; leads: LeadOut[] }>(await c.call('search_lead_by_contact', { email: 'ada@example.com' }));
    expect(again.leads.map((l) => l.id)).toContain(r.lead.id);
  });

  it('create_lead resolves custom fields by name and enum label, and refuses unknown ones before writing', async () => {
    const { fields } = structured<{ fields: Array<{ id: number; name: string; options?: Array<{ value: string }> }> }>(
      await c.call('get_custom_fields', { entity: 'leads' }),
    );
    const select = fields.find((f) => (f.options?.length ?? 0) > 0)!;
    const r = structured<{ lead: { custom_fields: Array<{ id: number; values: unknown[] }> } }>(
      await c.call('create_lead', { name: 'CF lead', custom_fields: [{ field_name: select.name, value: select.options![0]!.value }] }),
    );
    expect(r.lead.custom_fields.find((f) => f.id === select.id)?.values).toEqual([select.options![0]!.value]);
    const before = writesTo(emu.requests).length;
    const bad = errorOf(await c.call('create_lead', { name: 'x', custom_fields: [{ field_name: 'No Such Field', value: 1 }] }));
    expect(bad.code).toBe('validation');
    expect(bad.message).toMatch(/No Such Field/);
    const badOpt = errorOf(await c.call('create_lead', { name: 'x', custom_fields: [{ field_id: select.id, value: 'not-an-option' }] }));
    expect(badOpt.message).toMatch(/not an option/);
    const badStage = errorOf(await c.call('create_lead', { name: 'x', status_id: 999999 }));
    expect(badStage.message).toMatch(/status_id/);
    expect(writesTo(emu.requests).length).toBe(before);
  });

  it('dry_run returns the exact request and sends nothing', async () => {
    const before = writesTo(emu.requests).length;
    const r = structured<{ dry_run: boolean; created: boolean; requests: Array<{ method: string; url: string; body: unknown }> }>(
      await c.call('create_lead', { name: 'Preview only', contact: { first_name: 'Pre', email: 'preview-only@example.org' }, dry_run: true }),
    );
    expect(r).toMatchObject({ dry_run: true, created: false });
    expect(r.requests.map((q) => q.url)).toEqual([`${emu.url}/api/v4/contacts`, `${emu.url}/api/v4/leads`]);
    expect(JSON.stringify(r.requests[0]!.body)).toContain('preview-only@example.org');
    expect(writesTo(emu.requests).length).toBe(before);
  });

  it('update_lead changes fields and tags incrementally, keeping other tags', async () => {
    // Existing tags only: a new name would extend the account's tag list (admin; kommo-safety-holes.test.ts).
    const created = structured<{ lead: LeadOut }>(await c.call('create_lead', { name: 'Tag test', tags: ['website', 'urgent'] }));
    const { pipelines } = structured<{ pipelines: Array<{ id: number; stages: Array<{ id: number; type: string }> }> }>(await c.call('get_pipelines'));
    const p = pipelines.find((x) => x.id === created.lead.pipeline!.id)!;
    const r = structured<{ lead: LeadOut & { price: number } }>(
      await c.call('update_lead', { id: created.lead.id, price: 77, status_id: 142, tags_to_add: ['promo'] }),
    );
    expect(r.lead.price).toBe(77);
    expect(r.lead.stage?.type).toBe('won');
    expect(r.lead.pipeline?.id).toBe(p.id);
    expect(r.lead.tags.sort()).toEqual(['promo', 'urgent', 'website']);
    // Removing a tag removes data (a delete): refused in this mode before anything is sent.
    const writes = writesTo(emu.requests).length;
    expect(errorOf(await c.call('update_lead', { id: created.lead.id, tags_to_delete: ['urgent'] })).code).toBe('policy_denied');
    expect(writesTo(emu.requests).length).toBe(writes);
    const patch = emu.requests.filter((q) => q.method === 'PATCH').at(-1)!;
    expect(JSON.parse(patch.body)).toMatchObject({ status_id: 142, pipeline_id: p.id });
    expect(errorOf(await c.call('update_lead', { id: created.lead.id })).message).toMatch(/Nothing to update/);
    expect(errorOf(await c.call('update_lead', { id: 987654321, name: 'x' })).code).toBe('not_found');
  });

  it('create_contact is duplicate-safe; update_contact keeps existing phones', async () => {
    const first = structured<{ created: boolean; contact: { id: number; phones: string[] } }>(
      await c.call('create_contact', { first_name: 'Grace', last_name: 'Hopper', email: 'grace@example.com', phone: '+1 202 555 0143' }),
    );
    expect(first.created).toBe(true);
    const dup = structured<{ created: boolean; contact: { id: number } }>(await c.call('create_contact', { first_name: 'G', email: 'GRACE@example.com' }));
    expect(dup).toMatchObject({ created: false, contact: { id: first.contact.id } });
    const upd = structured<{ contact: { phones: string[]; emails: string[] } }>(
      await c.call('update_contact', { id: first.contact.id, phones_to_add: ['+1 202 555 0199'] }),
    );
    expect(upd.contact.phones).toHaveLength(2);
    expect(upd.contact.emails).toEqual(['grace@example.com']);
    // Removing a phone removes data (a delete): refused in write mode with nothing sent, done in full mode.
    const writes = writesTo(emu.requests).length;
    const refused = errorOf(await c.call('update_contact', { id: first.contact.id, phones_to_remove: ['+12025550143'] }));
    expect(refused.code).toBe('policy_denied');
    expect(refused.message).toContain('CRM_ALLOW_DELETE=true');
    expect(writesTo(emu.requests).length).toBe(writes);
    const full = await connectKommo(emu, { flags: FULL });
    try {
      const rm = structured<{ contact: { phones: string[] } }>(await full.call('update_contact', { id: first.contact.id, phones_to_remove: ['+12025550143'] }));
      expect(rm.contact.phones).toEqual(['+12025550199']);
    } finally {
      await full.close();
    }
  });

  it('add_note and create_task attach to an existing lead; a missing lead is not_found with no write', async () => {
    const lead = structured<{ lead: LeadOut }>(await c.call('create_lead', { name: 'Notes here' })).lead;
    const n = structured<{ note: { id: number; text: string } }>(await c.call('add_note', { entity: 'lead', entity_id: lead.id, text: 'Called, interested.' }));
    expect(n.note.text).toBe('Called, interested.');
    const t = structured<{ task: { id: number; complete_till: string } }>(
      await c.call('create_task', { text: 'Call back', complete_till: '2030-01-02T10:00:00Z', entity: 'lead', entity_id: lead.id }),
    );
    expect(t.task.complete_till).toBe('2030-01-02T10:00:00Z');
    const before = writesTo(emu.requests).length;
    expect(errorOf(await c.call('add_note', { entity: 'lead', entity_id: 987654321, text: 'x' })).code).toBe('not_found');
    expect(errorOf(await c.call('create_task', { text: 'x', complete_till: 'soonish' })).code).toBe('validation');
    expect(writesTo(emu.requests).length).toBe(before);
  });

  it('kommo_request reads and writes raw paths', async () => {
    const r = structured<{ status: number; data: { _embedded: { leads: unknown[] } } }>(
      await c.call('kommo_request', { method: 'GET', path: '/api/v4/leads', query: { limit: 2 } }),
    );
    expect(r.status).toBe(200);
    expect(r.data._embedded.leads).toHaveLength(2);
  });
});
