/** Behaviour of the Kommo emulator over real sockets: auth, envelopes, filters, search, writes, limits, OAuth, faults. */
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { KLead } from '../../src/sandbox/kommo/types.js';
import { rawRequest, type RawResponse } from '../helpers/raw.js';

type Res = RawResponse;

function call(emu: KommoEmulator, method: string, path: string, o: { token?: string | null; body?: unknown } = {}): Promise<Res> {
  return rawRequest(path.startsWith('http') ? path : `${emu.url}${path}`, method, o);
}

let emu: KommoEmulator;
let token: string;
const get = (path: string) => call(emu, 'GET', path, { token });
const send = (method: string, path: string, body: unknown) => call(emu, method, path, { token, body });
const ids = (r: Res, key = 'leads'): number[] => (r.status === 204 ? [] : (r.json._embedded[key] as Array<{ id: number }>).map((x) => x.id));

beforeAll(async () => {
  emu = await startKommoEmulator({ rateLimit: false, longLivedTokens: ['opaque-long-lived-token'] });
  token = emu.createLongLivedToken();
});
afterAll(async () => emu.close());

describe('demo data', () => {
  it('is large, deterministic and holds the well-known Ivan Petrov records', async () => {
    expect(emu.state.leads.size).toBeGreaterThanOrEqual(220);
    expect(emu.state.contacts.size).toBeGreaterThanOrEqual(150);
    expect(emu.state.companies.size).toBeGreaterThanOrEqual(60);
    expect(emu.state.users.size).toBeGreaterThanOrEqual(4);
    expect(emu.state.pipelines.size).toBe(3);
    const ivan = emu.state.contacts.get(DEMO.ivanContactId)!;
    expect(ivan.name).toBe('Ivan Petrov');
    expect(JSON.stringify(ivan.custom_fields_values)).toContain('"+7 912 345-67-89"');
    const lead = emu.state.leads.get(DEMO.ivanLeadId)!;
    expect(lead).toMatchObject({ name: DEMO.ivanLeadName, pipeline_id: DEMO.mainPipelineId });
    expect(lead._embedded.contacts).toEqual([{ id: DEMO.ivanContactId, is_main: true }]);
    const again = await startKommoEmulator({ rateLimit: false });
    expect([...again.state.leads.values()].map((l) => [l.name, l.price, l.status_id])).toEqual(
      [...emu.state.leads.values()].slice(0, again.state.leads.size).map((l) => [l.name, l.price, l.status_id]),
    );
    await again.close();
  });

  it('stores phones in mixed formats', () => {
    const phones = [...emu.state.contacts.values()].flatMap((c) =>
      (c.custom_fields_values ?? []).filter((f) => f.field_code === 'PHONE').flatMap((f) => f.values.map((v) => String(v.value))),
    );
    for (const re of [/^\+7 \d{3} \d{3}-\d\d-\d\d$/, /^8 \(\d{3}\) \d{3} \d\d \d\d$/, /^7\d{10}$/, /^\+44 20 7946 0\d{3}$/])
      expect(
        phones.some((p) => re.test(p)),
        String(re),
      ).toBe(true);
  });

  it('every pipeline has incoming first, then regular stages, then 142 and 143 with allowed colors (§7)', async () => {
    const r = await get('/api/v4/leads/pipelines');
    expect(r.json._total_items).toBe(3);
    for (const p of r.json._embedded.pipelines) {
      const st = p._embedded.statuses as Array<{ id: number; type: number; color: string; sort: number }>;
      expect(st[0]!.type).toBe(1);
      expect(st.slice(-2).map((s) => [s.id, s.sort])).toEqual([
        [142, 10000],
        [143, 11000],
      ]);
      for (const s of st) expect(s.color).toMatch(/^#[0-9a-f]{6}$/);
    }
  });
});

describe('auth (§2)', () => {
  it('no token, a bad token, an expired token → 401; long-lived JWTs and listed tokens are accepted', async () => {
    for (const t of [null, 'nope', emu.createLongLivedToken({ expiresInSec: -60 }), `${token.slice(0, -2)}xx`]) {
      const r = await call(emu, 'GET', '/api/v4/account', { token: t });
      expect(r.status, String(t)).toBe(401);
      expect(r.headers['content-type']).toBe('application/problem+json');
    }
    expect((await call(emu, 'GET', '/api/v4/account', { token: 'opaque-long-lived-token' })).status).toBe(200);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(Object.keys(claims).sort()).toEqual(['account_id', 'api_domain', 'aud', 'base_domain', 'exp', 'iat', 'jti', 'nbf', 'scopes', 'sub']);
    expect(claims.account_id).toBe(emu.state.account.id);
  });

  it('every response has X-Request-Id and the right content type', async () => {
    const ok = await get('/api/v4/account');
    expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(ok.headers['content-type']).toBe('application/hal+json');
    const none = await get('/api/v4/leads?query=zzz-nothing');
    expect(none.headers['x-request-id']).toBeTruthy();
  });
});

describe('envelopes and empty results (§4)', () => {
  it('an empty result is 204 with no body: no match, past the last page, no tags, a missing lead', async () => {
    for (const p of ['/api/v4/leads?query=zzz-no-such-thing', '/api/v4/leads?page=99&limit=250', '/api/v4/contacts/tags?query=zzz', `/api/v4/leads/999`]) {
      const r = await get(p);
      expect(r.status, p).toBe(204);
      expect(r.text).toBe('');
    }
    expect((await get('/api/v4/leads/pipelines/123')).json.detail).toBe('Pipeline not found');
  });

  it('pagination via _links.next visits every lead exactly once', async () => {
    const seen: number[] = [];
    let next: string | undefined = `${emu.url}/api/v4/leads?limit=100`;
    let pages = 0;
    while (next) {
      const r = await call(emu, 'GET', next, { token });
      expect(r.status).toBe(200);
      expect(r.json._page).toBe(pages + 1);
      seen.push(...ids(r));
      next = r.json._links.next?.href;
      pages += 1;
    }
    expect(pages).toBe(Math.ceil(emu.state.leads.size / 100));
    expect(new Set(seen).size).toBe(emu.state.leads.size);
    expect(seen).toHaveLength(emu.state.leads.size);
  });

  it('limit defaults to 50 and is capped at 250; bad page/limit are 400', async () => {
    expect(ids(await get('/api/v4/leads'))).toHaveLength(50);
    const big = await get('/api/v4/leads?limit=1000');
    expect(ids(big)).toHaveLength(Math.min(250, emu.state.leads.size));
    expect(big.json._links.self.href).toContain('limit=250');
    for (const p of ['/api/v4/leads?limit=abc', '/api/v4/leads?page=0', '/api/v4/leads?limit=0']) expect((await get(p)).status, p).toBe(400);
  });

  it('unknown routes 404, wrong methods 405, unknown parameters 400, known-but-unemulated methods 501', async () => {
    expect((await get('/api/v4/deals')).status).toBe(404);
    expect((await get('/api/v4/leads/abc')).status).toBe(404);
    expect((await send('DELETE', '/api/v4/leads', [{ id: 1 }])).status).toBe(405);
    expect((await send('PUT', `/api/v4/leads/${DEMO.ivanLeadId}`, { name: 'x' })).status).toBe(405);
    for (const p of [
      '/api/v4/leads?foo=1',
      '/api/v4/leads?filter[nope]=1',
      '/api/v4/leads?with=everything',
      '/api/v4/leads?order[name]=asc',
      '/api/v4/leads?order[id]=up',
      '/api/v4/leads?filter[id]=abc',
      '/api/v4/leads?filter[id][x]=1',
      `/api/v4/leads/${DEMO.ivanLeadId}?page=2`,
    ]) {
      const r = await get(p);
      expect(r.status, p).toBe(400);
      expect(r.json['validation-errors']).toBeDefined();
    }
    expect((await send('POST', '/api/v4/leads/pipelines', [{ name: 'x' }])).status).toBe(501);
  });
});

describe('filters, order and query (§4, §5.1, §6)', () => {
  const all = () => [...emu.state.leads.values()];
  const idsOf = (xs: KLead[]) => xs.map((l) => l.id).sort((a, b) => a - b);
  const sorted = (r: Res) => ids(r).sort((a, b) => a - b);

  it('filter[id] in all three PHP array forms', async () => {
    const [a, b] = [DEMO.ivanLeadId, DEMO.ivanLeadId + 5];
    expect(sorted(await get(`/api/v4/leads?filter[id]=${a}`))).toEqual([a]);
    expect(sorted(await get(`/api/v4/leads?filter[id][]=${a}&filter[id][]=${b}`))).toEqual([a, b]);
    expect(sorted(await get(`/api/v4/leads?filter%5Bid%5D%5B0%5D=${a}&filter%5Bid%5D%5B1%5D=${b}`))).toEqual([a, b]);
  });

  it('pipeline, statuses, responsible, price, name and date ranges', async () => {
    const p2 = DEMO.pipelineIds[1];
    expect(sorted(await get(`/api/v4/leads?filter[pipeline_id]=${p2}&limit=250`))).toEqual(idsOf(all().filter((l) => l.pipeline_id === p2)));
    expect(
      sorted(
        await get(
          `/api/v4/leads?filter[statuses][0][pipeline_id]=${p2}&filter[statuses][0][status_id]=142&filter[statuses][1][pipeline_id]=${DEMO.mainPipelineId}&filter[statuses][1][status_id]=${DEMO.mainFirstStatusId}&limit=250`,
        ),
      ),
    ).toEqual(
      idsOf(
        all().filter((l) => (l.pipeline_id === p2 && l.status_id === 142) || (l.pipeline_id === DEMO.mainPipelineId && l.status_id === DEMO.mainFirstStatusId)),
      ),
    );
    const u = DEMO.userIds[2];
    expect(sorted(await get(`/api/v4/leads?filter[responsible_user_id][]=${u}&limit=250`))).toEqual(idsOf(all().filter((l) => l.responsible_user_id === u)));
    expect(sorted(await get('/api/v4/leads?filter[price][from]=100000&filter[price][to]=200000&limit=250'))).toEqual(
      idsOf(all().filter((l) => l.price >= 100000 && l.price <= 200000)),
    );
    expect(sorted(await get(`/api/v4/leads?filter[name]=${encodeURIComponent(DEMO.ivanLeadName)}`))).toEqual([DEMO.ivanLeadId]);
    const mid = all()[100]!.created_at;
    const from = mid - 30 * 86400;
    expect(sorted(await get(`/api/v4/leads?filter[created_at][from]=${from}&filter[created_at][to]=${mid}&limit=250`))).toEqual(
      idsOf(all().filter((l) => l.created_at >= from && l.created_at <= mid)),
    );
    expect(sorted(await get('/api/v4/leads?filter[closed_at][from]=1&limit=250'))).toEqual(idsOf(all().filter((l) => l.closed_at !== null)));
  });

  it('order[created_at]=desc and order[id]=desc', async () => {
    const r = await get('/api/v4/leads?order[created_at]=desc&limit=250');
    const times = (r.json._embedded.leads as KLead[]).map((l) => l.created_at);
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(ids(await get('/api/v4/leads?order[id]=desc&limit=3'))).toEqual(idsOf(all()).reverse().slice(0, 3));
  });

  it('query finds Ivan by national digits, by e-mail in another case, by the stored phone text', async () => {
    for (const q of ['9123456789', 'ivan.petrov@EXAMPLE.com', '+7 912 345-67-89', '79123456789']) {
      const r = await get(`/api/v4/contacts?query=${encodeURIComponent(q)}`);
      expect(ids(r, 'contacts'), q).toContain(DEMO.ivanContactId);
    }
    // Real substring semantics on the stored text: a formatted query does not match a differently formatted value.
    expect(ids(await get(`/api/v4/contacts?query=${encodeURIComponent('8 (912) 345 67 89')}`), 'contacts')).not.toContain(DEMO.ivanContactId);
    expect(ids(await get('/api/v4/leads?query=website%20order'))).toContain(DEMO.ivanLeadId);
  });

  it('with=contacts on leads and with=leads on contacts; with=contacts,leads on companies', async () => {
    const lead = await get(`/api/v4/leads/${DEMO.ivanLeadId}?with=contacts`);
    expect(lead.json._embedded.contacts).toEqual([
      { id: DEMO.ivanContactId, is_main: true, _links: { self: { href: `${emu.url}/api/v4/contacts/${DEMO.ivanContactId}` } } },
    ]);
    expect((await get(`/api/v4/leads/${DEMO.ivanLeadId}`)).json._embedded.contacts).toBeUndefined();
    const c = await get(`/api/v4/contacts/${DEMO.ivanContactId}?with=leads`);
    expect(c.json._embedded.leads.map((x: { id: number }) => x.id)).toContain(DEMO.ivanLeadId);
    const co = await get(`/api/v4/companies/${DEMO.ivanCompanyId}?with=contacts,leads`);
    expect(co.json._embedded.contacts.map((x: { id: number }) => x.id)).toContain(DEMO.ivanContactId);
    expect(co.json._embedded.leads.map((x: { id: number }) => x.id)).toContain(DEMO.ivanLeadId);
  });
});

describe('writes (§5.3–§5.5, §8, §9)', () => {
  it('POST then GET shows the new lead in its default stage; ids keep growing', async () => {
    const before = emu.state.leads.size;
    const r = await send('POST', '/api/v4/leads', [{ name: 'Fresh lead', price: 1234, request_id: 'mine' }, { name: 'Second' }]);
    expect(r.status).toBe(200);
    const [a, b] = r.json._embedded.leads as Array<{ id: number; request_id: string }>;
    expect([a!.request_id, b!.request_id]).toEqual(['mine', '1']);
    expect(b!.id).toBe(a!.id + 1);
    expect(emu.state.leads.size).toBe(before + 2);
    const got = await get(`/api/v4/leads/${a!.id}`);
    expect(got.json).toMatchObject({
      name: 'Fresh lead',
      price: 1234,
      pipeline_id: DEMO.mainPipelineId,
      status_id: DEMO.mainFirstStatusId,
      responsible_user_id: DEMO.adminUserId,
    });
    expect(ids(await get('/api/v4/leads?query=Fresh%20lead'))).toContain(a!.id);
  });

  it('validation errors name the path, are keyed by request_id, and write nothing', async () => {
    const before = emu.state.leads.size;
    const r = await send('POST', '/api/v4/leads', [
      { name: 'ok' },
      { name: 42, price: '12', request_id: 'bad', custom_fields_values: [{ field_id: 424242, values: [{ value: 'x' }] }] },
      { status_id: 142, pipeline_id: 1 },
    ]);
    expect(r.status).toBe(400);
    expect(r.json['validation-errors']).toEqual([
      {
        request_id: 'bad',
        errors: [
          { code: 'InvalidType', path: 'name', detail: 'This value should be of type string.' },
          { code: 'NotSupportedChoice', path: 'custom_fields_values.0.field_id', detail: 'The value you selected is not a valid choice.' },
          { code: 'InvalidType', path: 'price', detail: 'This value should be of type int.' },
        ],
      },
      { request_id: '2', errors: [{ code: 'NotSupportedChoice', path: 'pipeline_id', detail: 'The value you selected is not a valid choice.' }] },
    ]);
    expect(emu.state.leads.size).toBe(before);
    expect((await send('POST', '/api/v4/leads', [{ name: 'x', surprise: 1 }])).status).toBe(400);
    expect((await send('POST', '/api/v4/leads', { name: 'not an array' })).status).toBe(400);
    expect((await send('PATCH', `/api/v4/leads/${DEMO.ivanLeadId}`, {})).json.detail).toBe('Request data can not be empty');
    expect((await send('POST', '/api/v4/leads', '{oops')).status).toBe(400);
  });

  it('custom fields: select by enum_id or label, multitext by enum_code, read shape adds name/type/enum', async () => {
    const c = await send('POST', '/api/v4/contacts', [
      {
        first_name: 'Cf',
        last_name: 'Test',
        custom_fields_values: [
          { field_code: 'PHONE', values: [{ value: '+7 900 000-11-22', enum_code: 'MOB' }] },
          { field_code: 'EMAIL', values: [{ value: 'Cf.Test@Example.org' }] },
        ],
      },
    ]);
    const id = c.json._embedded.contacts[0].id as number;
    const got = (await get(`/api/v4/contacts/${id}`)).json;
    expect(got.name).toBe('Cf Test');
    expect(got.custom_fields_values).toEqual([
      {
        field_id: DEMO.contactFields.phone,
        field_name: 'Phone',
        field_code: 'PHONE',
        field_type: 'multitext',
        values: [{ value: '+7 900 000-11-22', enum_id: expect.any(Number), enum: 'MOB' }],
      },
      {
        field_id: DEMO.contactFields.email,
        field_name: 'Email',
        field_code: 'EMAIL',
        field_type: 'multitext',
        values: [{ value: 'Cf.Test@Example.org', enum_id: expect.any(Number), enum: 'WORK' }],
      },
    ]);
    const src = emu.state.customFields.leads.get(DEMO.leadFields.source)!;
    const l = await send('POST', '/api/v4/leads', [
      {
        name: 'cf',
        custom_fields_values: [
          { field_id: src.id, values: [{ enum_id: src.enums![1]!.id }] },
          { field_id: DEMO.leadFields.discount, values: [{ value: 15 }] },
        ],
      },
    ]);
    const lead = (await get(`/api/v4/leads/${l.json._embedded.leads[0].id}`)).json;
    expect(lead.custom_fields_values[0]).toEqual({
      field_id: src.id,
      field_name: 'Source',
      field_code: null,
      field_type: 'select',
      values: [{ value: src.enums![1]!.value, enum_id: src.enums![1]!.id }],
    });
    const bad = await send('POST', '/api/v4/leads', [
      {
        custom_fields_values: [
          { field_id: src.id, values: [{ enum_id: 1 }] },
          { field_id: DEMO.leadFields.discount, values: [{ value: 'lots' }] },
        ],
      },
    ]);
    expect(bad.json['validation-errors'][0].errors.map((e: { path: string }) => e.path)).toEqual([
      'custom_fields_values.0.values.0.enum_id',
      'custom_fields_values.1.values.0.value',
    ]);
  });

  it('PATCH: tags_to_add / tags_to_delete change incrementally; _embedded.tags replaces; null clears', async () => {
    const id = (await send('POST', '/api/v4/leads', [{ name: 'tags', _embedded: { tags: [{ name: 'keep' }, { name: 'drop' }] } }])).json._embedded.leads[0]
      .id as number;
    const names = () =>
      emu.state.leads
        .get(id)!
        ._embedded.tags.map((t) => t.name)
        .sort();
    expect(names()).toEqual(['drop', 'keep']);
    const r = await send('PATCH', `/api/v4/leads/${id}`, { tags_to_add: [{ name: 'new' }, { id: 40002 }], tags_to_delete: [{ name: 'DROP' }] });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ id, request_id: '0' });
    expect(names()).toEqual(['keep', 'new', 'vip']);
    await send('PATCH', '/api/v4/leads', [{ id, _embedded: { tags: [{ name: 'only' }] } }]);
    expect(names()).toEqual(['only']);
    await send('PATCH', '/api/v4/leads', [{ id, _embedded: { tags: null } }]);
    expect(names()).toEqual([]);
    expect((await get('/api/v4/leads/tags?filter[name]=new')).json._embedded.tags).toHaveLength(1);
    expect((await send('PATCH', `/api/v4/leads/${id}`, { tags_to_add: [{ id: 999 }] })).status).toBe(400);
  });

  it('moving a lead: won sets closed_at; a stage of another pipeline needs its pipeline_id; events are recorded', async () => {
    const id = DEMO.ivanLeadId + 20;
    const other = DEMO.pipelineIds.find((p) => p !== emu.state.leads.get(id)!.pipeline_id)!;
    const otherStage = emu.state.pipelines.get(other)!._embedded.statuses[1]!.id;
    expect((await send('PATCH', `/api/v4/leads/${id}`, { status_id: otherStage })).status).toBe(400);
    expect((await send('PATCH', `/api/v4/leads/${id}`, { status_id: otherStage, pipeline_id: other })).status).toBe(200);
    expect(emu.state.leads.get(id)).toMatchObject({ pipeline_id: other, status_id: otherStage, closed_at: null });
    await send('PATCH', `/api/v4/leads/${id}`, { status_id: 142 });
    expect(emu.state.leads.get(id)!.closed_at).toBeGreaterThan(0);
    const ev = await get(`/api/v4/events?filter[entity]=lead&filter[entity_id]=${id}&filter[type]=lead_status_changed`);
    expect(ev.json._embedded.events[0].value_after).toEqual([{ lead_status: { id: 142, pipeline_id: other } }]);
    expect((await send('PATCH', '/api/v4/leads', [{ price: 1 }])).json['validation-errors'][0].errors[0].path).toBe('id');
  });

  it('/leads/complex creates lead + contact + company linked together, or links existing ones; ≤1 contact', async () => {
    const r = await send('POST', '/api/v4/leads/complex', [
      {
        name: 'Complex new',
        _embedded: {
          contacts: [{ first_name: 'Kate', custom_fields_values: [{ field_code: 'EMAIL', values: [{ value: 'kate@example.org', enum_code: 'WORK' }] }] }],
          companies: [{ name: 'Kate Co' }],
        },
      },
      {
        name: 'Complex existing',
        _embedded: {
          contacts: [{ id: DEMO.ivanContactId }],
          metadata: {
            category: 'forms',
            form_id: 1,
            form_name: 'Site',
            form_page: 'https://example.org',
            form_sent_at: 1,
            ip: '8.8.8.8',
            referer: 'https://example.org',
          },
        },
      },
    ]);
    expect(r.status).toBe(200);
    const [n, e] = r.json as Array<{ id: number; contact_id: number; company_id: number | null; merged: boolean }>;
    expect(emu.state.contacts.get(n!.contact_id)!._embedded.companies).toEqual([{ id: n!.company_id }]);
    expect(emu.state.leads.get(n!.id)!._embedded).toMatchObject({ contacts: [{ id: n!.contact_id, is_main: true }], companies: [{ id: n!.company_id }] });
    expect(e).toMatchObject({ contact_id: DEMO.ivanContactId, company_id: null, merged: false });
    expect(emu.state.leads.get(e!.id)!.status_id).toBe(DEMO.mainIncomingStatusId); // metadata → incoming lead
    const two = await send('POST', '/api/v4/leads/complex', [{ _embedded: { contacts: [{ name: 'a' }, { name: 'b' }] } }]);
    expect(two.json['validation-errors'][0].errors[0].path).toBe('_embedded.contacts');
    expect(
      (
        await send(
          'POST',
          '/api/v4/leads/complex',
          Array.from({ length: 51 }, () => ({ name: 'x' })),
        )
      ).status,
    ).toBe(422);
  });

  it('notes and tasks attach to existing entities; closest_task_at follows open tasks', async () => {
    const lead = (await send('POST', '/api/v4/leads', [{ name: 'with activity' }])).json._embedded.leads[0].id as number;
    const n = await send('POST', '/api/v4/leads/notes', [{ entity_id: lead, note_type: 'common', params: { text: 'hello' } }]);
    expect(n.status).toBe(200);
    const notes = await get(`/api/v4/leads/${lead}/notes`);
    expect(notes.json._embedded.notes).toMatchObject([{ entity_id: lead, note_type: 'common', params: { text: 'hello' } }]);
    expect(
      (await send('POST', '/api/v4/leads/notes', [{ entity_id: 5, note_type: 'common', params: { text: 'x' } }])).json['validation-errors'][0].errors[0].path,
    ).toBe('entity_id');
    expect((await send('POST', '/api/v4/leads/notes', [{ entity_id: lead, note_type: 'smoke_signal', params: {} }])).status).toBe(400);
    const t = await send('POST', '/api/v4/tasks', [
      { text: 'Call', complete_till: 2_000_000_000, responsible_user_id: DEMO.adminUserId, entity_type: 'leads', entity_id: lead },
    ]);
    const taskId = t.json._embedded.tasks[0].id as number;
    expect(emu.state.leads.get(lead)!.closest_task_at).toBe(2_000_000_000);
    await send('PATCH', `/api/v4/tasks/${taskId}`, { is_completed: true, result: { text: 'done' } });
    expect(emu.state.leads.get(lead)!.closest_task_at).toBeNull();
    expect((await get(`/api/v4/tasks?filter[entity_type]=leads&filter[entity_id][]=${lead}`)).json._embedded.tasks[0]).toMatchObject({
      id: taskId,
      is_completed: true,
      result: { text: 'done' },
    });
    expect(
      (await send('POST', '/api/v4/tasks', [{ text: 'no deadline', responsible_user_id: DEMO.adminUserId }])).json['validation-errors'][0].errors[0].path,
    ).toBe('complete_till');
  });

  it('webhooks: subscribe, list by destination, delete by destination', async () => {
    await send('POST', '/api/v4/webhooks', { destination: 'https://hooks.example/kommo', settings: ['add_lead', 'status_lead'] });
    expect((await get('/api/v4/webhooks?filter[destination]=https://hooks.example/kommo')).json._embedded.webhooks[0].settings).toEqual([
      'add_lead',
      'status_lead',
    ]);
    expect((await send('POST', '/api/v4/webhooks', { destination: 'https://hooks.example/x', settings: ['explode_lead'] })).status).toBe(400);
    expect((await send('DELETE', '/api/v4/webhooks', { destination: 'https://hooks.example/kommo' })).status).toBe(204);
    expect((await get('/api/v4/webhooks?filter[destination]=https://hooks.example/kommo')).status).toBe(204);
  });
});

describe('rate limits (§3)', () => {
  it('the 8th request within a second with one token is a 429 with the documented body', async () => {
    const e = await startKommoEmulator({ demo: false });
    const t = e.createLongLivedToken();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await call(e, 'GET', '/api/v4/account', { token: t })).status);
    expect(statuses.slice(0, 7)).toEqual([200, 200, 200, 200, 200, 200, 200]);
    expect(statuses[7]).toBe(429);
    expect(e.stats.rateLimited).toBe(1);
    expect(e.requests.at(-1)!.tag).toBe('rate_limited');
    // Another token still gets through (7/s is per integration); the token endpoint is never limited.
    expect((await call(e, 'GET', '/api/v4/account', { token: e.createLongLivedToken() })).status).toBe(200);
    await e.close();
  });

  it('the account-wide cap applies across tokens', async () => {
    const e = await startKommoEmulator({ demo: false, rateLimit: { perAccountPerSecond: 10 } });
    const tokens = [e.createLongLivedToken(), e.createLongLivedToken(), e.createLongLivedToken()];
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await call(e, 'GET', '/api/v4/account', { token: tokens[i % 3] })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    await e.close();
  });

  it('repeated violations block the account: 403 nginx HTML for every request until unblock()', async () => {
    const oauth = { clientId: 'c', clientSecret: 's', redirectUri: 'https://example.org/cb' };
    const e = await startKommoEmulator({ demo: false, rateLimit: { perTokenPerSecond: 2, blockAfterViolations: 3 }, oauth });
    const t = e.createLongLivedToken();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await call(e, 'GET', '/api/v4/account', { token: t })).status);
    expect(statuses).toEqual([200, 200, 429, 429, 429, 403, 403]);
    expect(e.stats).toMatchObject({ blocked: true, rateLimited: 3 });
    const blocked = await call(e, 'GET', '/api/v4/account', { token: e.createLongLivedToken() });
    expect(blocked.status).toBe(403);
    expect(blocked.headers['content-type']).toBe('text/html');
    expect(blocked.text).toContain('<title>403 Forbidden</title>');
    expect(e.requests.at(-1)!.tag).toBe('blocked');
    e.unblock();
    expect(e.stats.blocked).toBe(false);
    expect((await call(e, 'GET', '/api/v4/account', { token: e.createLongLivedToken() })).status).toBe(200);
    // The OAuth token endpoint is not rate limited.
    for (let i = 0; i < 5; i++) {
      const body = { client_id: 'c', client_secret: 's', grant_type: 'authorization_code', code: e.issueAuthorizationCode(), redirect_uri: oauth.redirectUri };
      expect((await call(e, 'POST', '/oauth2/access_token', { body })).status).toBe(200);
    }
    await e.close();
  });
});

describe('OAuth (§2.1)', () => {
  const oauth = { clientId: 'client-1', clientSecret: 'secret-1', redirectUri: 'https://example.org/cb' };
  let o: KommoEmulator;
  beforeAll(async () => {
    o = await startKommoEmulator({ demo: false, rateLimit: false, oauth });
  });
  afterAll(async () => o.close());
  const token = (body: Record<string, unknown>) =>
    call(o, 'POST', '/oauth2/access_token', { body: { client_id: oauth.clientId, client_secret: oauth.clientSecret, ...body } });
  const exchange = (code: string, extra: Record<string, unknown> = {}) =>
    token({ grant_type: 'authorization_code', code, redirect_uri: oauth.redirectUri, ...extra });
  const refresh = (refresh_token: string) => token({ grant_type: 'refresh_token', refresh_token, redirect_uri: oauth.redirectUri });
  const api = (access: string) => call(o, 'GET', '/api/v4/account', { token: access });

  it('exchanges a code once; a used, unknown, expired code or a wrong client is a 400 with the observed hint', async () => {
    const code = o.issueAuthorizationCode();
    const r = await exchange(code);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      token_type: 'Bearer',
      expires_in: 86400,
      access_token: expect.stringMatching(/^eyJ/),
      refresh_token: expect.any(String),
      server_time: expect.any(Number),
    });
    expect((await api(r.json.access_token)).status).toBe(200);
    expect((await exchange(code)).json.hint).toBe('Authorization code has been revoked');
    expect((await exchange('garbage')).json.hint).toBe('Cannot decrypt the authorization code');
    expect((await exchange(o.issueAuthorizationCode(), { client_id: 'someone-else' })).json.hint).toBe('Check the `client_id` parameter');
    const badSecret = await exchange(o.issueAuthorizationCode(), { client_secret: 'wrong' });
    expect(badSecret.status).toBe(400);
    expect(badSecret.json.type).toBe('https://developers.amocrm.ru/v3/errors/OAuthProblemJson');
    const late = o.issueAuthorizationCode();
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 21 * 60 * 1000);
      expect((await exchange(late)).json.hint).toBe('Authorization code has expired');
    } finally {
      vi.useRealTimers();
    }
  });

  it('refresh rotates the refresh token and the old one dies as the new one is issued (strict reading of §2.1)', async () => {
    const t0 = await o.issueOAuthTokens();
    const before = o.stats.refreshes;
    const r1 = (await refresh(t0.refresh_token)).json;
    expect(r1.refresh_token).not.toBe(t0.refresh_token);
    // No grace: the answer may have been lost, but the old token is already spent.
    const again = await refresh(t0.refresh_token);
    expect(again.status).toBe(400);
    expect(again.json.hint).toBe('Invalid refresh token');
    expect(o.stats.refreshes - before).toBe(1);
    // The old access token keeps working until it expires; the new pair works too.
    expect((await api(t0.access_token)).status).toBe(200);
    expect((await api(r1.access_token)).status).toBe(200);
    const r2 = (await refresh(r1.refresh_token)).json;
    expect((await refresh(r1.refresh_token)).json.hint).toBe('Invalid refresh token');
    expect((await refresh(r2.refresh_token)).status).toBe(200);
  });

  it('loseRefreshResponses: the pair is issued and the old token dies, but the connection is dropped instead of answering', async () => {
    const t0 = await o.issueOAuthTokens();
    const before = { ...o.stats };
    o.loseRefreshResponses(1);
    await expect(refresh(t0.refresh_token)).rejects.toThrow();
    expect(o.stats.refreshes - before.refreshes).toBe(1);
    expect(o.stats.tokenRequests - before.tokenRequests).toBe(1);
    expect((await refresh(t0.refresh_token)).json.hint).toBe('Invalid refresh token');
  });

  it('expireAccessTokens makes every issued access token 401; long-lived tokens are unaffected', async () => {
    const t = await o.issueOAuthTokens();
    const lt = o.createLongLivedToken();
    expect((await api(t.access_token)).status).toBe(200);
    o.expireAccessTokens();
    expect((await api(t.access_token)).status).toBe(401);
    expect((await api(lt)).status).toBe(200);
    const fresh = (await refresh(t.refresh_token)).json;
    expect((await api(fresh.access_token)).status).toBe(200);
    expect(o.stats.tokenRequests).toBeGreaterThan(0);
  });
});

describe('scripted faults reach the client (harness)', () => {
  const path = '/api/v4/account';
  it.each([
    ['status 503', { kind: 'status', status: 503, body: 'down' } as const, (r: Res) => expect([r.status, r.text]).toEqual([503, 'down'])],
    ['malformed', { kind: 'malformed' } as const, (r: Res) => expect(() => JSON.parse(r.text)).toThrow()],
    ['truncated', { kind: 'truncated' } as const, (r: Res) => expect(() => JSON.parse(r.text)).toThrow()],
    ['no-content', { kind: 'no-content' } as const, (r: Res) => expect([r.status, r.text]).toEqual([204, ''])],
    ['slow', { kind: 'slow', ms: 50 } as const, (r: Res) => expect(r.json.id).toBe(emu.state.account.id)],
  ])('%s', async (_n, fault, check) => {
    emu.injectFault(fault, { match: { path } });
    check(await get(path));
    expect(emu.requests.at(-1)!.tag).toBe('fault');
    expect((await get(path)).status).toBe(200); // one-shot
  });

  it('reset-before drops the connection without processing; reset-after drops it after the write happened', async () => {
    emu.injectFault({ kind: 'reset-before' }, { match: { method: 'POST', path: '/api/v4/leads' } });
    await expect(send('POST', '/api/v4/leads', [{ name: 'lost before' }])).rejects.toThrow();
    expect([...emu.state.leads.values()].some((l) => l.name === 'lost before')).toBe(false);
    emu.injectFault({ kind: 'reset-after' }, { match: { method: 'POST', path: '/api/v4/leads' } });
    await expect(send('POST', '/api/v4/leads', [{ name: 'lost after' }])).rejects.toThrow();
    expect([...emu.state.leads.values()].some((l) => l.name === 'lost after')).toBe(true);
  });

  it('timeout: the request is never answered', async () => {
    const agent = new Agent();
    emu.injectFault({ kind: 'timeout' }, { match: { path } });
    await expect(request(`${emu.url}${path}`, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 100, dispatcher: agent })).rejects.toThrow(
      /timeout/i,
    );
    await agent.destroy();
    expect((await get(path)).status).toBe(200);
  });
});
