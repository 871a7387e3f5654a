/**
 * Issue 14, the Kommo findings, through a real MCP client against the Kommo emulator, which plays what each
 * hole relies on: `accrue_bonus` credits bonus points, PHP's `_method` and method-override headers, bodies
 * shaped `{"0": …}` decoded as lists, `_embedded.tags: null` detaching every tag, duplicate control merging a
 * complex lead into an existing one, and tag names extending the account's tag list. Each emulator behaviour
 * is shown first, so a refusal below is known to protect something; a refused call sends nothing (the
 * emulator's log is empty) and changes nothing.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Grant } from '../../src/policy/policy.js';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { ADMIN, ALL, CREATE_ONLY, FULL, WRITE, connectKommo, errorOf, startKommo, structured, text, writesTo, type Connected } from '../helpers/index.js';

let emu: KommoEmulator;
let token: string;
const open: Connected[] = [];

beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  token = emu.createLongLivedToken();
});
afterAll(async () => {
  for (const c of open) await c.close();
  await emu.close();
});

async function as(flags: typeof WRITE): Promise<Connected> {
  const c = await connectKommo(emu, { flags });
  open.push(c);
  return c;
}

/** A request straight to the emulator (not through crm-mcp), to show what Kommo does with it. */
async function direct(method: string, pathAndQuery: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${emu.url}${pathAndQuery}`, {
    method: method as 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const t = await res.body.text();
  return { status: res.statusCode, json: t ? JSON.parse(t) : undefined };
}

const customer = () => emu.state.customers.get(DEMO.customerId)!;

/** A transaction straight in the emulator, to be removed (or not) below. */
async function transaction(): Promise<number> {
  const r = await direct('POST', `/api/v4/customers/${DEMO.customerId}/transactions`, [{ price: 10 }]);
  return r.json._embedded.transactions[0].id as number;
}

function refusedNothingSent(r: Awaited<ReturnType<Connected['call']>>, pattern?: RegExp): void {
  const e = errorOf(r);
  expect(e.code, text(r)).toBe('policy_denied');
  if (pattern) expect(e.message).toMatch(pattern);
  expect(emu.requests, 'a refused call sends nothing').toHaveLength(0);
}

describe('finding 8: query parameters of writes are classified; method overrides never go out', () => {
  const path = `/api/v4/customers/${DEMO.customerId}/transactions`;

  it('the emulator credits bonus points for accrue_bonus (also spelt accrue.bonus) and runs a POST as _method says', async () => {
    const points = customer().bonus_points;
    expect((await direct('POST', `${path}?accrue_bonus=true`, [{ price: 500 }])).status).toBe(200);
    expect(customer().bonus_points).toBe(points + 50);
    await direct('POST', `${path}?accrue.bonus=1`, [{ price: 100 }]);
    expect(customer().bonus_points).toBe(points + 60);
    const t = await transaction();
    expect((await direct('POST', `${path}/${t}?_method=DELETE`)).status).toBe(204);
    expect(emu.state.transactions.has(t)).toBe(false);
    const t2 = await transaction();
    expect((await direct('POST', `${path}/${t2}`, undefined, { 'X-HTTP-Method-Override': 'DELETE' })).status).toBe(204);
    expect(emu.state.transactions.has(t2)).toBe(false);
  });

  it('create-only: a transaction is a create, but accrue_bonus credits an existing customer: refused, nothing sent', async () => {
    const c = await as(CREATE_ONLY);
    const points = customer().bonus_points;
    for (const query of [{ accrue_bonus: true }, { accrue_bonus: 'false' }, { 'accrue.bonus': 1 }]) {
      emu.resetLog();
      refusedNothingSent(await c.call('kommo_request', { method: 'POST', path, query, body: [{ price: 1000 }] }), /accrue_bonus.*CRM_SAFE_MODE=false/s);
    }
    expect(customer().bonus_points).toBe(points);
    const plain = await c.call('kommo_request', { method: 'POST', path, body: [{ price: 1000 }] });
    expect(plain.isError, text(plain)).toBeFalsy();
    expect(customer().bonus_points).toBe(points);
  });

  it('write mode may credit points; an unknown parameter on a write is outside the table (admin), nothing sent', async () => {
    const c = await as(WRITE);
    const points = customer().bonus_points;
    const ok = await c.call('kommo_request', { method: 'POST', path, query: { accrue_bonus: true }, body: [{ price: 1000 }] });
    expect(ok.isError, text(ok)).toBeFalsy();
    expect(customer().bonus_points).toBe(points + 100);
    emu.resetLog();
    refusedNothingSent(
      await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads', query: { debug: 1 }, body: [{ name: 'x' }] }),
      /"debug" is not in the classification table.*CRM_ALLOW_ADMIN=true/s,
    );
  });

  it.each([ADMIN, ALL])('a `_method` override is refused in every mode, in every spelling PHP reads (%o)', async (flags) => {
    const c = await as(flags);
    const t = await transaction();
    for (const query of [{ _method: 'DELETE' }, { '.method': 'DELETE' }, { _METHOD: 'delete' }, { '_method[]': 'DELETE' }]) {
      emu.resetLog();
      refusedNothingSent(await c.call('kommo_request', { method: 'POST', path: `${path}/${t}`, query }), /another HTTP method/);
    }
    expect(emu.state.transactions.has(t)).toBe(true);
  });

  it('the HTTP core classifies the URL it sends and refuses method-override headers, whatever the caller was granted', async () => {
    const c = await as(ALL);
    const t = await transaction();
    const grant = new Grant(['read', 'create', 'update', 'admin']);
    for (const header of ['X-HTTP-Method-Override', 'x-http-method', 'X-Method-Override']) {
      emu.resetLog();
      const sent = c.provider.http.request({ method: 'POST', path: `${path}/${t}`, headers: { [header]: 'DELETE' }, body: [], op: 'create', grant });
      await expect(sent).rejects.toMatchObject({ code: 'policy_denied' });
      expect(emu.requests).toHaveLength(0);
    }
    emu.resetLog();
    await expect(c.provider.http.request({ method: 'POST', path: `${path}/${t}`, query: { _method: 'DELETE' }, op: 'create', grant })).rejects.toMatchObject({
      code: 'policy_denied',
    });
    await expect(
      c.provider.http.request({ method: 'POST', path, query: { accrue_bonus: 'true' }, body: [{ price: 5 }], op: 'create', grant: Grant.for('create') }),
    ).rejects.toMatchObject({ code: 'policy_denied' });
    expect(emu.requests).toHaveLength(0);
    expect(emu.state.transactions.has(t)).toBe(true);
  });
});

describe('finding 9: a body shaped {"0": …} is a list, as PHP decodes it', () => {
  it('the emulator takes {"0": …, "1": …} as a two-element list', async () => {
    const before = emu.state.leads.size;
    const r = await direct('POST', '/api/v4/leads', { '0': { name: 'List A' }, '1': { name: 'List B' } });
    expect(r.status).toBe(200);
    expect(emu.state.leads.size).toBe(before + 2);
  });

  it('create-only: an item-level id in a numeric-keyed object is an update: refused, nothing sent', async () => {
    const c = await as(CREATE_ONLY);
    const lead = structuredClone(emu.state.leads.get(DEMO.ivanLeadId));
    for (const body of [
      { '0': { id: DEMO.ivanLeadId, name: 'x' } },
      { '1': { name: 'new' }, '0': { id: DEMO.ivanLeadId } },
      { name: 'x', '5': { id: DEMO.ivanLeadId } },
    ]) {
      emu.resetLog();
      refusedNothingSent(await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads', body }), /existing record by id/);
    }
    expect(emu.state.leads.get(DEMO.ivanLeadId)).toEqual(lead);
  });
});

describe('finding 6: a PATCH that removes data is a delete', () => {
  const tagged = () => [...emu.state.leads.values()].find((l) => l._embedded.tags.length > 0)!;

  it.each([
    ['tags null', { _embedded: { tags: null } }],
    ['tags []', { _embedded: { tags: [] } }],
    ['tags replaced', { _embedded: { tags: [{ id: 40003 }] } }],
    ['tags_to_delete', { tags_to_delete: [{ id: 40001 }, { id: 40002 }] }],
    ['a field cleared', { custom_fields_values: [{ field_id: DEMO.leadFields.source, values: null }] }],
  ])('write mode: PATCH /leads/{id} with %s is refused, nothing sent, the lead unchanged', async (_what, body) => {
    const c = await as(WRITE);
    const lead = tagged();
    const before = structuredClone(lead);
    emu.resetLog();
    refusedNothingSent(await c.call('kommo_request', { method: 'PATCH', path: `/api/v4/leads/${lead.id}`, body }), /CRM_ALLOW_DELETE=true/);
    emu.resetLog();
    refusedNothingSent(
      await c.call('kommo_request', { method: 'PATCH', path: '/api/v4/leads', body: { '0': { id: lead.id, ...body } } }),
      /CRM_ALLOW_DELETE=true/,
    );
    expect(emu.state.leads.get(lead.id)).toEqual(before);
  });

  it('full mode (deletes allowed): tags null detaches every tag at the emulator', async () => {
    const c = await as(FULL);
    const lead = tagged();
    const r = await c.call('kommo_request', { method: 'PATCH', path: `/api/v4/leads/${lead.id}`, body: { _embedded: { tags: null } } });
    expect(r.isError, text(r)).toBeFalsy();
    expect(emu.state.leads.get(lead.id)!._embedded.tags).toEqual([]);
  });

  it('write mode: update_contact removing tags is refused before anything is sent', async () => {
    const c = await as(WRITE);
    emu.resetLog();
    const e = errorOf(await c.call('update_contact', { id: DEMO.ivanContactId, tags_to_delete: ['vip'] }));
    expect(e.code).toBe('policy_denied');
    expect(e.message).toMatch(/tags_to_delete.*delete/s);
    expect(emu.requests).toHaveLength(0);
  });
});

describe.each([false, true])('finding 5: create-only never changes an existing lead (duplicate control %s)', (duplicateControl) => {
  let c: Connected;
  beforeAll(async () => {
    emu.behaviour.duplicateControl = duplicateControl;
    c = await as(CREATE_ONLY);
  });
  afterAll(() => {
    emu.behaviour.duplicateControl = false;
  });
  /** Every lead of Ivan's as stored (a merge goes into whichever of them is open and most recently updated). */
  const ivanLeads = () => structuredClone([...emu.state.leads.values()].filter((l) => l._embedded.contacts.some((x) => x.id === DEMO.ivanContactId)));
  const ivanLeadsAsBefore = () => ivanLeads().filter((l) => before.some((b) => b.id === l.id));
  let before: ReturnType<typeof ivanLeads> = [];

  it('the emulator: a complex lead naming Ivan merges into his open lead only when duplicate control is on', async () => {
    const leads = ivanLeads();
    const r = await direct('POST', '/api/v4/leads/complex', [{ name: 'Probe', price: 4321, _embedded: { contacts: [{ id: DEMO.ivanContactId }] } }]);
    expect(r.json[0].merged).toBe(duplicateControl);
    const into = leads.find((l) => l.id === r.json[0].id);
    expect(!!into).toBe(duplicateControl);
    expect(emu.state.leads.get(r.json[0].id)!.price).toBe(4321);
    // Put Ivan's leads back for the tests below.
    for (const l of leads) emu.state.leads.set(l.id, l);
    if (!into) emu.state.leads.delete(r.json[0].id);
    before = ivanLeads();
    expect(before.length).toBeGreaterThan(0);
  });

  it('create_lead asked for another lead of Ivan: a new lead linked to him, his open lead untouched', async () => {
    before = ivanLeads();
    emu.resetLog();
    const r = structured<{ created: boolean; lead: { id: number; contact_ids: number[] }; contact_id: number }>(
      await c.call('create_lead', { name: 'Another order', price: 999, contact: { email: DEMO.ivanEmail }, if_open_lead_exists: 'create' }),
    );
    expect(r.created).toBe(true);
    expect(r.lead.id).not.toBe(DEMO.ivanLeadId);
    expect(r.lead.contact_ids).toEqual([DEMO.ivanContactId]);
    expect(writesTo(emu.requests).map((q) => `${q.method} ${q.path}`)).toEqual(['POST /api/v4/leads']);
    expect(ivanLeadsAsBefore()).toEqual(before);
  });

  it('create_lead when the search misses Ivan (index lag): plain creates, his open lead untouched, the result says created', async () => {
    before = ivanLeads();
    emu.injectFault({ kind: 'status', status: 204 }, { times: 20, match: { method: 'GET', path: /^\/api\/v4\/contacts$/ } });
    emu.resetLog();
    const r = structured<{ created: boolean; lead: { id: number }; reason?: string }>(
      await c.call('create_lead', { name: 'Lagged order', price: 777, contact: { first_name: 'Ivan', phone: DEMO.ivanPhone } }),
    );
    emu.clearFaults();
    expect(r.created).toBe(true);
    expect(r.lead.id).not.toBe(DEMO.ivanLeadId);
    expect(r.reason ?? '').not.toMatch(/merged/i);
    expect(writesTo(emu.requests).map((q) => q.path)).toEqual(['/api/v4/contacts', '/api/v4/leads']);
    expect(ivanLeadsAsBefore()).toEqual(before);
  });

  it('a raw complex lead with an existing contact, or a contact that may match one, is an update: refused, nothing sent', async () => {
    before = ivanLeads();
    const leads = emu.state.leads.size;
    for (const contact of [
      { id: DEMO.ivanContactId },
      { first_name: 'Ivan', custom_fields_values: [{ field_code: 'PHONE', values: [{ value: DEMO.ivanPhone }] }] },
    ]) {
      emu.resetLog();
      refusedNothingSent(
        await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads/complex', body: [{ name: 'Raw', price: 1, _embedded: { contacts: [contact] } }] }),
        /duplicate control.*CRM_SAFE_MODE=false/s,
      );
    }
    expect(ivanLeadsAsBefore()).toEqual(before);
    expect(emu.state.leads.size).toBe(leads);
  });

  it('a lost answer to the contact create is looked up before it is sent again: one contact, one lead', async () => {
    const email = `lost-contact-${String(duplicateControl)}@example.org`;
    emu.injectFault({ kind: 'reset-after' }, { match: { method: 'POST', path: '/api/v4/contacts' } });
    const r = structured<{ created: boolean; lead: { id: number }; contact_id: number }>(
      await c.call('create_lead', { name: 'Lost contact', contact: { first_name: 'Lo', email } }),
    );
    emu.clearFaults();
    const made = [...emu.state.contacts.values()].filter((x) => x.custom_fields_values?.some((f) => f.values.some((v) => v.value === email)));
    expect(made.map((x) => x.id)).toEqual([r.contact_id]);
    expect(emu.state.leads.get(r.lead.id)!._embedded.contacts).toEqual([{ id: r.contact_id, is_main: true }]);
  });
});

describe('finding 11: tags by name may extend the account tag list (admin)', () => {
  const tagCount = () => emu.state.tags.leads.size + emu.state.tags.contacts.size;

  it('the emulator adds an unknown tag name to the account tag list', async () => {
    const before = emu.state.tags.leads.size;
    await direct('POST', '/api/v4/leads', [{ name: 'Tagged', _embedded: { tags: [{ name: 'emulator-made-tag' }] } }]);
    expect(emu.state.tags.leads.size).toBe(before + 1);
  });

  it('create-only: create_lead and create_contact with a tag the account lacks are refused, no write, tag list unchanged', async () => {
    const c = await as(CREATE_ONLY);
    const before = { tags: tagCount(), leads: emu.state.leads.size, contacts: emu.state.contacts.size };
    emu.resetLog();
    const lead = errorOf(await c.call('create_lead', { name: 'Tagged lead', tags: ['vip', 'never-seen-tag'] }));
    expect(lead.code).toBe('policy_denied');
    expect(lead.message).toMatch(/"never-seen-tag".*list_tags.*CRM_ALLOW_ADMIN=true/s);
    expect(lead.message).not.toMatch(/"vip"/);
    const contact = errorOf(await c.call('create_contact', { first_name: 'Tag', email: 'tag-less@example.org', tags: ['never-seen-tag'] }));
    expect(contact.code).toBe('policy_denied');
    expect(writesTo(emu.requests)).toHaveLength(0);
    expect({ tags: tagCount(), leads: emu.state.leads.size, contacts: emu.state.contacts.size }).toEqual(before);
  });

  it('create-only: existing tags are sent by id, so the create cannot add a tag', async () => {
    const c = await as(CREATE_ONLY);
    const before = tagCount();
    emu.resetLog();
    const r = structured<{ lead: { tags: string[] } }>(await c.call('create_lead', { name: 'Known tags', tags: [' VIP ', 'website'] }));
    expect(r.lead.tags.sort()).toEqual(['vip', 'website']);
    const post = writesTo(emu.requests).find((q) => q.path === '/api/v4/leads')!;
    expect(JSON.parse(post.body)[0]._embedded.tags).toEqual([{ id: 40002 }, { id: 40001 }]);
    expect(tagCount()).toBe(before);
  });

  it('a raw create or update naming a tag by name is admin: refused without admin, sent with it', async () => {
    const body = [{ name: 'Raw tagged', _embedded: { tags: [{ name: 'raw-new-tag' }] } }];
    const before = tagCount();
    const c = await as(WRITE);
    emu.resetLog();
    refusedNothingSent(await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads', body }), /tags by name.*CRM_ALLOW_ADMIN=true/s);
    // The typed tool looks the tag up first (reads), then refuses before any write.
    const upd = errorOf(await c.call('update_lead', { id: DEMO.ivanLeadId, tags_to_add: ['raw-new-tag'] }));
    expect(upd).toMatchObject({ code: 'policy_denied' });
    expect(upd.message).toMatch(/tags_to_add.*"raw-new-tag"/s);
    expect(writesTo(emu.requests)).toHaveLength(0);
    expect(tagCount()).toBe(before);
    const admin = await as(ADMIN);
    const ok = await admin.call('kommo_request', { method: 'POST', path: '/api/v4/leads', body });
    expect(ok.isError, text(ok)).toBeFalsy();
    expect(tagCount()).toBe(before + 1);
  });
});
