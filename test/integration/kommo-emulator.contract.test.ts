/**
 * Contract test: the Kommo emulator's answers have the same structure as the real responses collected in
 * `test/fixtures/kommo/` (a copy of shared/research/fixtures/kommo/; same keys at every level, same JSON types where both sides have a value;
 * arrays may differ in length, scalars in value), and the static error bodies are byte-for-byte the same.
 */
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { z } from 'zod';
import { rawRequest, type RawResponse } from '../helpers/raw.js';
import { createdId, KAccount, KComplexCreated, KContact, KCustomField, KHalPage, KLead, KPipeline, KTag, KUser } from '../../src/crms/kommo/schemas.js';

const FIXTURES = new URL('../fixtures/kommo/', import.meta.url);
const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));

const oauth = { clientId: 'contract-client', clientSecret: 'contract-secret', redirectUri: 'https://example.org/cb' };
let emu: KommoEmulator;
let token: string;

beforeAll(async () => {
  emu = await startKommoEmulator({ rateLimit: false, oauth });
  token = emu.createLongLivedToken();
});
afterAll(async () => emu.close());

function call(method: string, path: string, body?: unknown, auth: string | null = token): Promise<RawResponse> {
  return rawRequest(`${emu.url}${path}`, method, { token: auth, body });
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * Differences in structure between a fixture and an actual body. `allow` lists paths (`a.b[].c`) whose key
 * may be missing on one side. `null` on either side matches any type (Kommo's nullable fields).
 */
function shapeDiff(expected: unknown, actual: unknown, allow: ReadonlySet<string> = new Set(), path = '', out: string[] = []): string[] {
  if (expected === null || actual === null) return out;
  if (kind(expected) !== kind(actual)) {
    out.push(`${path || '(root)'}: ${kind(expected)} expected, got ${kind(actual)}`);
    return out;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    if (expected.length && actual.length) for (const a of actual) shapeDiff(expected[0], a, allow, `${path}[]`, out);
    return out;
  }
  if (typeof expected === 'object' && typeof actual === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const k of new Set([...Object.keys(e), ...Object.keys(a)])) {
      const p = path ? `${path}.${k}` : k;
      if (!(k in a)) {
        if (!allow.has(p)) out.push(`${p}: missing in the emulator`);
      } else if (!(k in e)) {
        if (!allow.has(p)) out.push(`${p}: not in the fixture`);
      } else shapeDiff(e[k], a[k], allow, p, out);
    }
  }
  return out;
}

/** Every `href` must be absolute on the emulator's origin (§4). */
function hrefs(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => hrefs(x, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'href' && typeof x === 'string') out.push(x);
      else hrefs(x, out);
    }
  }
  return out;
}

function expectShape(fixtureName: string, actual: unknown, allow: string[] = []): void {
  expect(shapeDiff(fixture(fixtureName), actual, new Set(allow))).toEqual([]);
  for (const h of hrefs(actual)) expect(h.startsWith(`${emu.url}/`)).toBe(true);
}

/** The fixtures show only a multitext PHONE field; other field types carry no enum, so only PHONE is compared. */
function phoneOnly(v: unknown): unknown {
  const o = v as { custom_fields_values: Array<{ field_code: string | null }> | null };
  return { ...o, custom_fields_values: o.custom_fields_values?.filter((f) => f.field_code === 'PHONE') ?? null };
}

// Documented differences, each with its reason.
const TAG_COLOR = ['_embedded.tags[].color']; // §9: entity tags are `{id, name, color?}`; the emulator always sends color (null when unset)
const ACCOUNT_EXTRA = [
  // §1 lists these among the fields GET /account returns without `with`; the K-HTTP example omits them.
  'customers_mode',
  'is_unsorted_on',
  'is_loss_reason_enabled',
  'is_helpbot_enabled',
  'is_technical_account',
  'contact_name_display_order',
];

describe('lists and entities have the fixtures’ shape', () => {
  it('GET /leads (page 2 with first/prev/next links)', async () => {
    const r = await call('GET', '/api/v4/leads?limit=2&page=2');
    expect(r.status).toBe(200);
    expect(r.type).toBe('application/hal+json');
    expectShape('GET_leads.json', r.json, ['_embedded.leads[]._embedded.tags[].color']);
  });

  it('GET /leads/{id} and with=contacts', async () => {
    const r = await call('GET', `/api/v4/leads/${DEMO.ivanLeadId}?with=contacts,loss_reason,catalog_elements,is_price_modified_by_robot`);
    expect(r.status).toBe(200);
    // The emulated account has no catalogs or loss reasons: those lists are empty, their items unchecked.
    expectShape('GET_leads_id.json', r.json, TAG_COLOR);
    expectShape('GET_leads_id.with.json', r.json, TAG_COLOR);
    expect((r.json as { _embedded: { contacts: unknown[] } })._embedded.contacts).toHaveLength(1);
  });

  it('GET /contacts and /contacts/{id}', async () => {
    const list = await call('GET', '/api/v4/contacts?limit=2&page=1');
    expectShape('GET_contacts.json', list.json, ['_embedded.contacts[]._embedded.tags[].color']);
    const one = await call('GET', `/api/v4/contacts/${DEMO.ivanContactId}?with=leads,customers,catalog_elements`);
    expectShape('GET_contacts_id.json', phoneOnly(one.json), TAG_COLOR);
    expect(phoneOnly(one.json)).toMatchObject({ custom_fields_values: [{ field_code: 'PHONE', values: [{ value: DEMO.ivanPhone, enum: 'MOB' }] }] });
  });

  it('GET /companies and /companies/{id}', async () => {
    const list = await call('GET', '/api/v4/companies?limit=2&page=1');
    expectShape('GET_companies.json', list.json, ['_embedded.companies[]._embedded.tags[].color']);
    const one = await call('GET', `/api/v4/companies/${DEMO.ivanCompanyId}`);
    expectShape('GET_companies_id.json', phoneOnly(one.json), TAG_COLOR);
    expect((phoneOnly(one.json) as { custom_fields_values: unknown[] }).custom_fields_values).toHaveLength(1);
  });

  it('GET /leads/pipelines and /leads/pipelines/{id}', async () => {
    expectShape('GET_leads_pipelines.json', (await call('GET', '/api/v4/leads/pipelines')).json);
    expectShape('GET_leads_pipelines_id.json', (await call('GET', `/api/v4/leads/pipelines/${DEMO.mainPipelineId}`)).json);
  });

  it('GET /tasks (the fixture’s own filter) and /tasks/{id}', async () => {
    const r = await call('GET', '/api/v4/tasks?filter[task_type][]=2&filter[is_completed][]=1&limit=2&page=1');
    expect(r.status).toBe(200);
    // Completed tasks carry `result` (fixture GET_tasks_id.json); the list fixture's tasks have none.
    expectShape('GET_tasks.json', r.json, ['_embedded.tasks[].result']);
    const first = (r.json as { _embedded: { tasks: Array<{ id: number }> } })._embedded.tasks[0]!;
    expectShape('GET_tasks_id.json', (await call('GET', `/api/v4/tasks/${first.id}`)).json);
  });

  it('GET /account, plain and with `with`', async () => {
    expectShape('GET_account.json', (await call('GET', '/api/v4/account')).json, ACCOUNT_EXTRA);
    const w = await call('GET', '/api/v4/account?with=amojo_id,amojo_rights,users_groups,task_types,version,entity_names,datetime_settings');
    expectShape('GET_account.with.json', w.json, [
      'uuid', // present in the OGI sample without being requested; no documented `with` yields it
      '_embedded.entity_names.leads.ru', // the emulated account has English entity names only
      '_embedded.entity_names.leads.es',
      'currency',
      'currency_symbol', // §1 fields the (older) sample lacks
    ]);
  });

  it('GET /leads/custom_fields/{id} has the field model of POST_leads_custom_fields.response.json', async () => {
    expectShape('POST_leads_custom_fields.response.json', (await call('GET', `/api/v4/leads/custom_fields/${DEMO.leadFields.source}`)).json);
  });
});

describe('write responses have the fixtures’ shape', () => {
  it('POST /leads, POST /contacts', async () => {
    const leads = await call('POST', '/api/v4/leads', [{ name: 'Contract A' }, { name: 'Contract B', price: 10 }]);
    expect(leads.status).toBe(200);
    expectShape('POST_leads.response.json', leads.json);
    const contacts = await call('POST', '/api/v4/contacts', [{ first_name: 'Con' }, { name: 'Tract' }]);
    expectShape('POST_contacts.response.json', contacts.json);
  });

  it('PATCH /leads (bulk) and PATCH /leads/{id}', async () => {
    const bulk = await call('PATCH', '/api/v4/leads', [
      { id: DEMO.ivanLeadId, price: 48500 },
      { id: DEMO.ivanLeadId + 1, name: 'Renamed' },
    ]);
    expect(bulk.status).toBe(200);
    expectShape('PATCH_leads.response.json', bulk.json);
    expectShape('PATCH_leads_id.response.json', (await call('PATCH', `/api/v4/leads/${DEMO.ivanLeadId + 2}`, { price: 5 })).json);
  });

  it('PATCH with the documented tag request (fixture PATCH_leads.tags.request.json, ids swapped for ours)', async () => {
    const body = (fixture('PATCH_leads.tags.request.json') as Array<{ id: number; _embedded: { tags: Array<{ id: number }> | null } }>).map((x, i) => ({
      ...x,
      id: DEMO.ivanLeadId + 10 + i,
      _embedded: { tags: x._embedded.tags ? [{ id: 40002 }] : null },
    }));
    const r = await call('PATCH', '/api/v4/leads', body);
    expect(r.status).toBe(200);
    expect(emu.state.leads.get(DEMO.ivanLeadId + 10)!._embedded.tags.map((t) => t.id)).toEqual([40002]);
    expect(emu.state.leads.get(DEMO.ivanLeadId + 11)!._embedded.tags).toEqual([]);
  });

  it('POST /leads/complex (plain array answer)', async () => {
    const r = await call('POST', '/api/v4/leads/complex', [
      { name: 'Complex', _embedded: { contacts: [{ first_name: 'Ekaterina' }], companies: [{ name: 'Horns & Hooves Ltd' }] }, request_id: '1' },
    ]);
    expect(r.status).toBe(200);
    expectShape('POST_leads_complex.response.json', r.json);
    expect((r.json as Array<{ request_id: string[] }>)[0]!.request_id).toEqual(['1']);
  });

  it('POST /leads/complex with the documented request: unknown field ids are reported like POST_leads_complex.400.json', async () => {
    const r = await call('POST', '/api/v4/leads/complex', fixture('POST_leads_complex.request.json'));
    expect(r.status).toBe(400);
    expect(r.type).toBe('application/problem+json');
    expectShape('POST_leads_complex.400.json', r.json);
    const groups = (r.json as { 'validation-errors': Array<{ request_id: string; errors: Array<{ path: string; code: string }> }> })['validation-errors'];
    expect(groups.map((g) => g.request_id)).toEqual(['qweasd', 'uns_qweasd']);
    expect(groups[0]!.errors).toContainEqual(expect.objectContaining({ code: 'NotSupportedChoice', path: 'custom_fields_values.0.field_id' }));
    expect(groups[0]!.errors).toContainEqual(
      expect.objectContaining({ code: 'NotSupportedChoice', path: '_embedded.contacts.0.custom_fields_values.0.field_id' }),
    );
  });

  it('POST /tasks', async () => {
    const r = await call('POST', '/api/v4/tasks', [
      { text: 'Call', complete_till: 2_000_000_000, responsible_user_id: DEMO.adminUserId, request_id: 'example' },
    ]);
    expectShape('POST_tasks.response.json', r.json);
  });

  it('POST /webhooks with the documented request returns the webhook', async () => {
    const r = await call('POST', '/api/v4/webhooks', fixture('POST_webhooks.request.json'));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ destination: 'https://example.test', settings: ['add_lead'], sort: 10 });
  });

  it('POST /oauth2/access_token (documented request shape)', async () => {
    const req = {
      ...(fixture('POST_oauth2_access_token.request.json') as object),
      client_id: oauth.clientId,
      client_secret: oauth.clientSecret,
      redirect_uri: oauth.redirectUri,
      code: emu.issueAuthorizationCode(),
    };
    const r = await call('POST', '/oauth2/access_token', req, null);
    expect(r.status).toBe(200);
    expectShape('POST_oauth2_access_token.response.json', r.json, ['server_time']); // §2.1: the newer reference adds server_time
    const refresh = {
      ...(fixture('POST_oauth2_access_token.refresh.request.json') as object),
      client_id: oauth.clientId,
      client_secret: oauth.clientSecret,
      refresh_token: (r.json as { refresh_token: string }).refresh_token,
    };
    expectShape('POST_oauth2_access_token.response.json', (await call('POST', '/oauth2/access_token', refresh, null)).json, ['server_time']);
  });

  it('GET /oauth2/account/current/subdomain with X-Refresh-Token', async () => {
    const t = await emu.issueOAuthTokens();
    const res = await request(`${emu.url}/oauth2/account/current/subdomain`, { headers: { 'x-refresh-token': t.refresh_token } });
    expect(res.statusCode).toBe(200);
    expect(shapeDiff(fixture('GET_oauth2_account_current_subdomain.json'), await res.body.json())).toEqual([]);
  });
});

describe('error bodies equal the fixtures', () => {
  it('401', async () => {
    const r = await call('GET', '/api/v4/leads', undefined, null);
    expect(r.status).toBe(401);
    expect(r.type).toBe('application/problem+json');
    expect(r.json).toEqual(fixture('ERROR_401.json'));
  });

  it('400 validation (the fixture’s first error; its second is a docs example the emulator has no trigger for)', async () => {
    const r = await call('POST', '/api/v4/leads', [{ name: 'x', custom_fields_values: [{ field_id: 1, values: [{ value: 'x' }] }] }]);
    const f = fixture('ERROR_400_validation.json') as { 'validation-errors': Array<{ errors: unknown[] }> };
    const expected = { ...f, 'validation-errors': [{ ...f['validation-errors'][0]!, errors: f['validation-errors'][0]!.errors.slice(0, 1) }] };
    expect(r.status).toBe(400);
    expect(r.json).toEqual(expected);
  });

  it('400 empty body', async () => {
    const r = await call('POST', '/api/v4/leads', '');
    expect(r.status).toBe(400);
    expect(r.json).toEqual(fixture('ERROR_400_empty_body.json'));
  });

  it('404 unknown route (the URL is the emulator’s)', async () => {
    const r = await call('GET', '/example');
    const f = fixture('ERROR_404_route.json') as { detail: string };
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ ...f, detail: f.detail.replace('https://subdomain.kommo.com', emu.url) });
  });

  it('405 wrong method', async () => {
    const r = await call('DELETE', `/api/v4/leads/${DEMO.ivanLeadId}`);
    expect(r.status).toBe(405);
    expect(r.json).toEqual(fixture('ERROR_405.json'));
  });

  it('422 more than 250 entities', async () => {
    const r = await call(
      'POST',
      '/api/v4/leads',
      Array.from({ length: 251 }, (_, i) => ({ name: `bulk ${i}` })),
    );
    expect(r.status).toBe(422);
    expect(r.json).toEqual(fixture('ERROR_422_limit.json'));
  });

  it('404 pipeline and custom field (the issues’ exact requests)', async () => {
    const p = await call('GET', '/api/v4/leads/pipelines/0/statuses');
    expect(p.status).toBe(404);
    expect(p.json).toEqual(fixture('GET_leads_pipelines_id_statuses.404.json'));
    const f = await call('GET', '/api/v4/leads/custom_fields/1');
    expect(f.json).toEqual(fixture('GET_leads_custom_fields_id.404.json'));
  });

  it('OAuth 400 and the 403 of the shared oauth2 endpoint', async () => {
    const r = await call(
      'POST',
      '/oauth2/access_token',
      { client_id: oauth.clientId, client_secret: oauth.clientSecret, grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: oauth.redirectUri },
      null,
    );
    expect(r.status).toBe(400);
    expect(r.json).toEqual(fixture('POST_oauth2_access_token.400.json'));
    const d = await call('GET', '/oauth2/account/current/subdomain', undefined, null);
    expect(d.status).toBe(403);
    expect(d.json).toEqual(fixture('ERROR_403_access_denied.json'));
  });

  it('429', async () => {
    const limited = await startKommoEmulator({ demo: false, rateLimit: { perTokenPerSecond: 1 } });
    const t = limited.createLongLivedToken();
    const get = () => request(`${limited.url}/api/v4/account`, { headers: { authorization: `Bearer ${t}` } });
    await (await get()).body.text();
    const res = await get();
    expect(res.statusCode).toBe(429);
    expect(await res.body.json()).toEqual(fixture('ERROR_429.json'));
    await limited.close();
  });
});

/**
 * The provider reads Kommo through lenient schemas (src/crms/kommo/schemas.ts); an answer that does not
 * parse is an upstream error. The real answers (fixtures) and the emulator's must both parse with them, or the
 * provider would refuse the real CRM, or be tested against answers it never gets.
 */
describe('the provider’s payload schemas accept the fixtures and the emulator alike', () => {
  const parses = (schema: z.ZodType, v: unknown): string[] => {
    const r = schema.safeParse(v);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  /** A HAL page as api.ts reads it: the envelope, then `_embedded[key]` with the item schema. */
  const page =
    (schema: z.ZodType, key: string) =>
    (v: unknown): string[] => {
      const env = KHalPage.safeParse(v);
      if (!env.success) return parses(KHalPage, v);
      const items = env.data._embedded?.[key];
      expect(Array.isArray(items) && items.length > 0, `${key}: a non-empty list`).toBe(true);
      return parses(z.array(schema), items);
    };
  const cases: Array<[string, string | null, string, (v: unknown) => string[]]> = [
    ['leads page', 'GET_leads.json', '/api/v4/leads?limit=2&with=contacts', page(KLead, 'leads')],
    ['one lead', 'GET_leads_id.json', `/api/v4/leads/${DEMO.ivanLeadId}?with=contacts`, (v) => parses(KLead, v)],
    ['one lead with `with`', 'GET_leads_id.with.json', `/api/v4/leads/${DEMO.ivanLeadId}?with=contacts,loss_reason`, (v) => parses(KLead, v)],
    ['contacts page', 'GET_contacts.json', '/api/v4/contacts?limit=2&with=leads', page(KContact, 'contacts')],
    ['one contact', 'GET_contacts_id.json', `/api/v4/contacts/${DEMO.ivanContactId}?with=leads`, (v) => parses(KContact, v)],
    ['companies page', 'GET_companies.json', '/api/v4/companies?limit=2&with=contacts,leads', page(KContact, 'companies')],
    ['one company', 'GET_companies_id.json', `/api/v4/companies/${DEMO.ivanCompanyId}?with=contacts,leads`, (v) => parses(KContact, v)],
    ['pipelines', 'GET_leads_pipelines.json', '/api/v4/leads/pipelines', page(KPipeline, 'pipelines')],
    ['one pipeline', 'GET_leads_pipelines_id.json', `/api/v4/leads/pipelines/${DEMO.mainPipelineId}`, (v) => parses(KPipeline, v)],
    ['account', 'GET_account.json', '/api/v4/account', (v) => parses(KAccount, v)],
    // No fixture of these lists: the emulator's answers are checked alone.
    ['users', null, '/api/v4/users?limit=250', page(KUser, 'users')],
    ['lead custom fields', null, '/api/v4/leads/custom_fields?limit=250', page(KCustomField, 'custom_fields')],
    ['lead tags', null, '/api/v4/leads/tags?limit=250', page(KTag, 'tags')],
  ];
  it.each(cases)('%s', async (_name, fixtureName, path, check) => {
    if (fixtureName) expect(check(fixture(fixtureName)), fixtureName).toEqual([]);
    const r = await call('GET', path);
    expect(r.status).toBe(200);
    expect(check(r.json), path).toEqual([]);
  });

  it('create answers: POST /leads/complex (plain and merged), POST /contacts, POST /tasks', async () => {
    expect(parses(KComplexCreated, fixture('POST_leads_complex.response.json'))).toEqual([]);
    expect(parses(KComplexCreated, fixture('POST_leads_complex.response.merged.json'))).toEqual([]);
    expect(createdId(fixture('POST_contacts.response.json'), 'contacts')).toBe(40401635);
    expect(createdId(fixture('POST_tasks.response.json'), 'tasks')).toEqual(expect.any(Number));
    const complex = await call('POST', '/api/v4/leads/complex', [{ name: 'Schema check', _embedded: { contacts: [{ first_name: 'Schema' }] } }]);
    expect(parses(KComplexCreated, complex.json)).toEqual([]);
    const contact = await call('POST', '/api/v4/contacts', [{ name: 'Schema contact' }]);
    expect(createdId(contact.json, 'contacts')).toEqual(expect.any(Number));
    const task = await call('POST', '/api/v4/tasks', [
      { text: 'Schema task', responsible_user_id: DEMO.adminUserId, complete_till: Math.floor(Date.now() / 1000) + 3600 },
    ]);
    expect(createdId(task.json, 'tasks')).toEqual(expect.any(Number));
  });

  it('the schemas are not vacuous: a lead without an id, or with a string price, does not parse', () => {
    expect(parses(KLead, { name: 'no id' })).not.toEqual([]);
    expect(parses(KLead, { id: 1, price: '100' })).not.toEqual([]);
    expect(createdId({ _embedded: { contacts: [{ id: 'x' }] } }, 'contacts')).toBeUndefined();
  });
});
