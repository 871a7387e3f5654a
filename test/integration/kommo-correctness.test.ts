/**
 * Kommo correctness against the documented API (issue 10): whole-read lists follow `_links.next` past Kommo's
 * 50-per-page cap on custom fields; won/lost stage ids cover every pipeline; create_lead never goes
 * through `/leads/complex`, which duplicate control may merge into an existing lead; lists come in the order they promise; embedded records carry their own links. Every
 * expectation is computed from the emulator's stored state, independently of the provider's code, and the
 * provider's tests run under every behaviour variant the sources leave open.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import type { KommoBehaviour, KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { KCustomField, KLead } from '../../src/sandbox/kommo/types.js';
import { connectKommo, startKommo, structured, WRITE, writesTo, type Connected, closeAll, kommoSession } from '../helpers/index.js';

interface LeadOut {
  id: number;
  name: string;
  pipeline: { id: number } | null;
  stage: { id: number } | null;
  contact_ids: number[];
  created_at: string | null;
  updated_at: string | null;
}
interface PageOut<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
}

const unix = (iso: string | null) => Date.parse(iso!) / 1000;
const gets = (emu: KommoEmulator, path: string) => emu.requests.filter((r) => r.method === 'GET' && r.path === path);
const paramsOf = (url: string) => new URL(url, 'http://x').searchParams;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function raw(emu: KommoEmulator, path: string, token: string): Promise<{ status: number; json: any }> {
  const res = await request(`${emu.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

/** Adds `n` plain text lead fields, as a large real account has. */
function addLeadFields(emu: KommoEmulator, n: number): KCustomField[] {
  const added: KCustomField[] = [];
  for (let i = 0; i < n; i++) {
    const id = 920001 + i;
    const f: KCustomField = {
      id,
      name: `Extra field ${i + 1}`,
      type: 'text',
      account_id: emu.state.account.id,
      code: null,
      sort: 600 + i,
      is_api_only: false,
      enums: null,
      group_id: null,
      required_statuses: [],
      is_deletable: true,
      is_predefined: false,
      entity_type: 'leads',
      tracking_callback: null,
      remind: null,
      triggers: [],
      currency: null,
      hidden_statuses: [],
      chained_lists: null,
    };
    emu.state.customFields.leads.set(id, f);
    added.push(f);
  }
  return added;
}

describe('custom fields: Kommo returns at most 50 per request whatever `limit` says', () => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
    addLeadFields(emu, 80);
    c = await connectKommo(emu, { flags: WRITE });
  });
  afterAll(async () => {
    await c.close();
    await emu.close();
  });

  it('the emulator pages custom fields by 50 even for limit=250, with _links.next and _page_count', async () => {
    const total = emu.state.customFields.leads.size;
    expect(total).toBe(86);
    const token = emu.createLongLivedToken();
    const p1 = await raw(emu, '/api/v4/leads/custom_fields?limit=250&page=1', token);
    expect(p1.json._embedded.custom_fields).toHaveLength(50);
    expect(p1.json).toMatchObject({ _total_items: 86, _page: 1, _page_count: 2 });
    expect(p1.json._links.next.href).toContain('page=2');
    const p2 = await raw(emu, '/api/v4/leads/custom_fields?limit=250&page=2', token);
    expect(p2.json._embedded.custom_fields).toHaveLength(36);
    expect(p2.json._links.next).toBeUndefined();
  });

  it('get_custom_fields returns all 86 lead fields, reading both pages', async () => {
    emu.resetLog();
    const { fields } = structured<{ fields: Array<{ id: number; name: string }> }>(await c.call('get_custom_fields', { entity: 'leads' }));
    expect(fields.map((f) => f.id).sort((a, b) => a - b)).toEqual([...emu.state.customFields.leads.keys()].sort((a, b) => a - b));
    const pages = gets(emu, '/api/v4/leads/custom_fields').map((r) => paramsOf(r.url).get('page'));
    expect(pages).toEqual(['1', '2']);
  });

  it('create_lead resolves a field that is only on the second page, and the value is stored', async () => {
    const res = structured<{ created: boolean; lead: { id: number } }>(
      await c.call('create_lead', { name: 'Field on page two', custom_fields: [{ field_name: 'Extra field 79', value: 'deep value' }] }),
    );
    expect(res.created).toBe(true);
    const stored = emu.state.leads.get(res.lead.id)!;
    expect(stored.custom_fields_values?.find((f) => f.field_id === 920001 + 78)?.values[0]?.value).toBe('deep value');
  });
});

const STATUS_VARIANTS: Array<KommoBehaviour['statusFilter']> = ['pairs', 'first_pair', 'one_pair'];

describe.each(STATUS_VARIANTS)('won/lost stages cover every pipeline (emulator statusFilter=%s)', (statusFilter) => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({}, { behaviour: { statusFilter } }));
  });
  afterAll(() => closeAll(c, emu));

  const stored = (pred: (l: KLead) => boolean) => [...emu.state.leads.values()].filter(pred);

  it('status_ids [142] without a pipeline returns the won leads of every pipeline', async () => {
    const won = stored((l) => l.status_id === DEMO.wonStatusId);
    // The demo account has won leads in more than one pipeline, so the first pipeline's alone are not enough.
    expect(new Set(won.map((l) => l.pipeline_id)).size).toBeGreaterThan(1);
    emu.resetLog();
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { status_ids: [142], limit: 250 }));
    expect(page.items.map((l) => l.id).sort((a, b) => a - b)).toEqual(won.map((l) => l.id).sort((a, b) => a - b));
    expect(page.has_more).toBe(false);
    // Newest first across the pipelines.
    const times = page.items.map((l) => unix(l.created_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    // One (pipeline, 142) pair per pipeline, each in a request of its own.
    const pairs = gets(emu, '/api/v4/leads').map((r) => {
      const q = paramsOf(r.url);
      expect(q.get('filter[statuses][1][pipeline_id]')).toBeNull();
      return `${q.get('filter[statuses][0][pipeline_id]')}:${q.get('filter[statuses][0][status_id]')}`;
    });
    expect(new Set(pairs)).toEqual(new Set([...emu.state.pipelines.keys()].map((p) => `${p}:142`)));
  });

  it('pages of a merged list follow the cursor: every lead once, in order, exact has_more', async () => {
    const closed = stored((l) => l.status_id === 142 || l.status_id === 143);
    const seen: LeadOut[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 50; i++) {
      const page: PageOut<LeadOut> = structured(await c.call('list_leads', { status_ids: [142, 143], limit: 17, ...(cursor ? { cursor } : {}) }));
      seen.push(...page.items);
      if (page.has_more) expect(page.items).toHaveLength(17);
      cursor = page.cursor;
      if (!cursor) break;
    }
    expect(seen.map((l) => l.id).sort((a, b) => a - b)).toEqual(closed.map((l) => l.id).sort((a, b) => a - b));
    const times = seen.map((l) => unix(l.created_at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });

  it('a pipeline narrows won/lost to that pipeline; an ordinary stage names its own pipeline', async () => {
    const pid = DEMO.pipelineIds[1]!;
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { pipeline_id: pid, status_ids: [143], limit: 250 }));
    expect(page.items.map((l) => l.id).sort((a, b) => a - b)).toEqual(
      stored((l) => l.pipeline_id === pid && l.status_id === 143)
        .map((l) => l.id)
        .sort((a, b) => a - b),
    );
    const stage = emu.state.pipelines.get(pid)!._embedded.statuses.find((s) => s.type === 0 && s.id > 143)!;
    const one = structured<PageOut<LeadOut>>(await c.call('list_leads', { status_ids: [stage.id], limit: 250 }));
    expect(one.items.map((l) => l.id).sort((a, b) => a - b)).toEqual(
      stored((l) => l.status_id === stage.id)
        .map((l) => l.id)
        .sort((a, b) => a - b),
    );
  });
});

describe('the emulator takes filter[statuses] only as pairs', () => {
  it('a status without its pipeline is a 400; several pairs are OR-ed, or refused, or cut to one, per behaviour', async () => {
    const emu = await startKommo({ rateLimit: false });
    const token = emu.createLongLivedToken();
    expect((await raw(emu, '/api/v4/leads?filter[statuses][0][status_id]=142', token)).status).toBe(400);
    expect((await raw(emu, '/api/v4/leads?filter[status_id]=142', token)).status).toBe(400);
    const [p1, p2] = DEMO.pipelineIds;
    const two = `/api/v4/leads?limit=250&filter[statuses][0][pipeline_id]=${p1}&filter[statuses][0][status_id]=142&filter[statuses][1][pipeline_id]=${p2}&filter[statuses][1][status_id]=142`;
    const won = (pids: number[]) => [...emu.state.leads.values()].filter((l) => l.status_id === 142 && pids.includes(l.pipeline_id)).length;
    expect((await raw(emu, two, token)).json._embedded.leads).toHaveLength(won([p1!, p2!]));
    emu.behaviour.statusFilter = 'first_pair';
    expect((await raw(emu, two, token)).json._embedded.leads).toHaveLength(won([p1!]));
    emu.behaviour.statusFilter = 'one_pair';
    expect((await raw(emu, two, token)).status).toBe(400);
    await emu.close();
  });
});

describe('/leads/complex merged by the account duplicate control', () => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({ flags: WRITE }, { behaviour: { duplicateControl: true } }));
  });
  afterAll(() => closeAll(c, emu));

  it('the emulator merges into the contact’s open lead: existing ids, merged: true, request ids gathered, nothing created', async () => {
    const token = emu.createLongLivedToken();
    const before = { leads: emu.state.leads.size, contacts: emu.state.contacts.size };
    const lead = (rid: string) => ({
      name: `Repeat ${rid}`,
      request_id: rid,
      _embedded: { contacts: [{ name: 'Ivan', custom_fields_values: [{ field_code: 'PHONE', values: [{ value: '89123456789' }] }] }] },
    });
    const res = await request(`${emu.url}/api/v4/leads/complex`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify([lead('a'), lead('b')]),
    });
    const body = (await res.body.json()) as unknown[];
    expect(body).toEqual([{ id: DEMO.ivanLeadId, contact_id: DEMO.ivanContactId, company_id: DEMO.ivanCompanyId, request_id: ['a', 'b'], merged: true }]);
    expect({ leads: emu.state.leads.size, contacts: emu.state.contacts.size }).toEqual(before);
  });

  it('create_lead never merges: when the search did not see the contact, plain creates leave its open lead as it was', async () => {
    const before = { leads: emu.state.leads.size, contacts: emu.state.contacts.size };
    const ivanLead = structuredClone(emu.state.leads.get(DEMO.ivanLeadId));
    // Kommo's search index lags behind writes: the dedupe search finds nothing (every query it tries); a
    // complex create would now be merged by duplicate control into Ivan's open lead, changing it.
    emu.injectFault({ kind: 'status', status: 204 }, { times: 20, match: { method: 'GET', path: /^\/api\/v4\/contacts$/ } });
    emu.resetLog();
    const res = structured<{ created: boolean; lead: { id: number } | null; contact_id: number | null; reason?: string }>(
      await c.call('create_lead', { name: 'Second order', contact: { first_name: 'Ivan', phone: '+7 912 345 67 89' } }),
    );
    expect(writesTo(emu.requests).map((r) => r.path)).toEqual(['/api/v4/contacts', '/api/v4/leads']);
    expect(res.created).toBe(true);
    expect(res.lead?.id).not.toBe(DEMO.ivanLeadId);
    expect(emu.state.leads.get(DEMO.ivanLeadId)).toEqual(ivanLead);
    expect({ leads: emu.state.leads.size, contacts: emu.state.contacts.size }).toEqual({ leads: before.leads + 1, contacts: before.contacts + 1 });
    emu.harness.clearFaults();
  });

  it('without a duplicate the same call creates, merged: false', async () => {
    const before = emu.state.leads.size;
    const res = structured<{ created: boolean; lead: { id: number } }>(
      await c.call('create_lead', { name: 'Fresh', contact: { first_name: 'Nova', phone: '+44 20 7946 0123' } }),
    );
    expect(res.created).toBe(true);
    expect(emu.state.leads.size).toBe(before + 1);
    expect(emu.state.leads.get(res.lead.id)?.name).toBe('Fresh');
  });
});

const ORDER_VARIANTS: Array<KommoBehaviour['defaultOrder']> = ['id_asc', 'id_desc'];

describe.each(ORDER_VARIANTS)('list order (emulator default order %s)', (defaultOrder) => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({}, { behaviour: { defaultOrder } }));
  });
  afterAll(() => closeAll(c, emu));

  const lastUrl = (path: string) => paramsOf(gets(emu, path).at(-1)!.url);

  it('list_leads is newest created first by default, and honours created_asc and updated_desc across pages', async () => {
    const leads = [...emu.state.leads.values()];
    const expectTimes = (got: LeadOut[], key: 'created_at' | 'updated_at', dir: 1 | -1) => {
      const want = leads
        .map((l) => l[key])
        .sort((a, b) => dir * (a - b))
        .slice(0, got.length);
      expect(got.map((l) => unix(l[key]))).toEqual(want);
    };
    const first = structured<PageOut<LeadOut>>(await c.call('list_leads', { limit: 60 }));
    expect(lastUrl('/api/v4/leads').get('order[created_at]')).toBe('desc');
    const second = structured<PageOut<LeadOut>>(await c.call('list_leads', { cursor: first.cursor }));
    expectTimes([...first.items, ...second.items], 'created_at', -1);
    expectTimes(structured<PageOut<LeadOut>>(await c.call('list_leads', { sort: 'created_asc', limit: 40 })).items, 'created_at', 1);
    expect(lastUrl('/api/v4/leads').get('order[created_at]')).toBe('asc');
    expectTimes(structured<PageOut<LeadOut>>(await c.call('list_leads', { sort: 'updated_desc', limit: 40 })).items, 'updated_at', -1);
    expect(lastUrl('/api/v4/leads').get('order[updated_at]')).toBe('desc');
  });

  it('list_contacts and list_companies: newest (highest id) first by default, updated_desc by updated_at', async () => {
    for (const [tool, path, map] of [
      ['list_contacts', '/api/v4/contacts', emu.state.contacts],
      ['list_companies', '/api/v4/companies', emu.state.companies],
    ] as const) {
      const rows = [...(map as Map<number, { id: number; updated_at: number }>).values()];
      const page = structured<PageOut<{ id: number; updated_at: string | null }>>(await c.call(tool, { limit: 30 }));
      expect(lastUrl(path).get('order[id]')).toBe('desc');
      expect(page.items.map((x) => x.id)).toEqual(
        rows
          .map((r) => r.id)
          .sort((a, b) => b - a)
          .slice(0, 30),
      );
      const asc = structured<PageOut<{ id: number }>>(await c.call(tool, { limit: 30, sort: 'created_asc' }));
      expect(asc.items.map((x) => x.id)).toEqual(
        rows
          .map((r) => r.id)
          .sort((a, b) => a - b)
          .slice(0, 30),
      );
      const upd = structured<PageOut<{ id: number; updated_at: string | null }>>(await c.call(tool, { limit: 30, sort: 'updated_desc' }));
      expect(lastUrl(path).get('order[updated_at]')).toBe('desc');
      expect(upd.items.map((x) => unix(x.updated_at))).toEqual(
        rows
          .map((r) => r.updated_at)
          .sort((a, b) => b - a)
          .slice(0, 30),
      );
    }
  });

  it('the emulator itself: no order → id order per the variant; contacts refuse order[created_at]', async () => {
    const token = emu.createLongLivedToken();
    const r = await raw(emu, '/api/v4/leads?limit=5', token);
    const allIds = [...emu.state.leads.keys()].sort((a, b) => a - b);
    expect((r.json._embedded.leads as Array<{ id: number }>).map((l) => l.id)).toEqual(
      defaultOrder === 'id_asc' ? allIds.slice(0, 5) : allIds.reverse().slice(0, 5),
    );
    expect((await raw(emu, '/api/v4/contacts?order[created_at]=desc', token)).status).toBe(400);
  });
});

describe('embedded records carry their own links', () => {
  it('get_lead: its contacts list their leads and its company its contacts and leads, as stored', async () => {
    const emu = await startKommo({ rateLimit: false });
    const c = await connectKommo(emu);
    const r = structured<{ contacts: Array<{ id: number; lead_ids: number[] }>; companies: Array<{ id: number; contact_ids: number[]; lead_ids: number[] }> }>(
      await c.call('get_lead', { id: DEMO.ivanLeadId }),
    );
    const leadsOfContact = [...emu.state.leads.values()].filter((l) => l._embedded.contacts.some((x) => x.id === DEMO.ivanContactId)).map((l) => l.id);
    const leadsOfCompany = [...emu.state.leads.values()].filter((l) => l._embedded.companies.some((x) => x.id === DEMO.ivanCompanyId)).map((l) => l.id);
    const contactsOfCompany = [...emu.state.contacts.values()].filter((x) => x._embedded.companies.some((co) => co.id === DEMO.ivanCompanyId)).map((x) => x.id);
    expect(leadsOfContact).toContain(DEMO.ivanLeadId);
    expect(r.contacts.find((x) => x.id === DEMO.ivanContactId)?.lead_ids.sort()).toEqual(leadsOfContact.sort());
    const co = r.companies.find((x) => x.id === DEMO.ivanCompanyId)!;
    expect(co.lead_ids.sort()).toEqual(leadsOfCompany.sort());
    expect(co.contact_ids.sort()).toEqual(contactsOfCompany.sort());
    await c.close();
    await emu.close();
  });
});
