/**
 * Contract test: the Bitrix24 emulator's answers against the real examples in
 * test/fixtures/bitrix24/ (a copy of shared/research/fixtures/bitrix24/; INDEX.md lists their sources). Key structure must match recursively
 * (arrays may differ in length, scalars in value); error bodies must match exactly.
 */
import { readFile } from 'node:fs/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { z } from 'zod';
import { BBatch, BCategoryList, BEnvelope, BFields, BRow, BRows, BStatuses, BTaskAdded } from '../../src/crms/bitrix24/schemas.js';

const FIXTURES = new URL('../fixtures/bitrix24/', import.meta.url);

async function fixture<T = unknown>(name: string): Promise<T> {
  return JSON.parse(await readFile(new URL(name, FIXTURES), 'utf8')) as T;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(base: string, method: string, params: Record<string, unknown> = {}): Promise<Answer> {
  const res = await request(`${base}${method}.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

/** The `time` object's composition "may vary by method and environment" (§3): these keys are always there. */
const TIME_REQUIRED = ['start', 'finish', 'duration', 'processing', 'date_start', 'date_finish'];
const TIME_OPTIONAL = ['operating_reset_at', 'operating'];

interface ShapeOptions {
  /** Object paths (e.g. `$.result`) where the emulator may omit keys the fixture has, by key. */
  mayOmit?: Record<string, string[]>;
  /** Object paths where the emulator may add keys the fixture lacks (e.g. user fields in crm.lead.fields). */
  mayAdd?: Record<string, (key: string) => boolean>;
}

const isUf = (k: string) => /^UF_/.test(k);

/**
 * Differences in key structure between `actual` and `expected`. `UF_*` keys are portal-specific names:
 * both sides must have them or not, their names may differ.
 */
function shapeDiff(actual: unknown, expected: unknown, path = '$', o: ShapeOptions = {}): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array, got ${JSON.stringify(actual)?.slice(0, 60)}`];
    if (expected.length === 0) return [];
    const out: string[] = [];
    actual.forEach((el, i) => {
      // Elements may be heterogeneous (the default pipeline lacks originId): each must fit one fixture element.
      const tries = expected.map((ex) => shapeDiff(el, ex, `${path}[${i}]`, o));
      const best = tries.reduce((a, b) => (b.length < a.length ? b : a));
      out.push(...best);
    });
    return out;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual))
      return [`${path}: expected an object, got ${JSON.stringify(actual)?.slice(0, 60)}`];
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const out: string[] = [];
    if (path.endsWith('.time') || /\.result_time\.[^.]+$/.test(path)) {
      for (const k of TIME_REQUIRED) if (!(k in a)) out.push(`${path}.${k}: missing`);
      for (const k of Object.keys(a)) if (!TIME_REQUIRED.includes(k) && !TIME_OPTIONAL.includes(k)) out.push(`${path}.${k}: unexpected`);
      return out;
    }
    const ek = Object.keys(e).filter((k) => !isUf(k));
    const ak = Object.keys(a).filter((k) => !isUf(k));
    if (Object.keys(e).some(isUf) && !Object.keys(a).some(isUf)) out.push(`${path}: the fixture has UF_* fields, the emulator none`);
    const omit = o.mayOmit?.[path] ?? [];
    const add = o.mayAdd?.[path];
    for (const k of ek) if (!(k in a) && !omit.includes(k)) out.push(`${path}.${k}: missing`);
    for (const k of ak) if (!(k in e) && !add?.(k)) out.push(`${path}.${k}: unexpected`);
    for (const k of ek) if (k in a) out.push(...shapeDiff(a[k], e[k], `${path}.${k}`, o));
    return out;
  }
  // Scalars may differ in value (null included) but not turn into structures.
  if (actual !== null && typeof actual === 'object') return [`${path}: expected a scalar, got a structure`];
  return [];
}

let emu: BitrixEmulator;
let hook: string;

beforeAll(async () => {
  emu = await startBitrixEmulator({ rateLimit: false });
  hook = emu.webhookUrl;
});
afterAll(async () => emu.close());

describe('the comparator itself', () => {
  it('notices missing, extra and mistyped keys', () => {
    expect(shapeDiff({ a: 1, b: { c: 2 } }, { a: 5, b: { c: null } })).toEqual([]);
    expect(shapeDiff({ a: 1 }, { a: 1, b: 2 })).toEqual(['$.b: missing']);
    expect(shapeDiff({ a: 1, z: 1 }, { a: 1 })).toEqual(['$.z: unexpected']);
    expect(shapeDiff({ a: [{ x: 1 }] }, { a: [{ x: 1, y: 2 }] })).toEqual(['$.a[0].y: missing']);
    expect(shapeDiff({ a: 'x' }, { a: { b: 1 } })).toHaveLength(1);
  });
});

describe('success shapes match the fixtures', () => {
  it('crm.lead.list (page 1 with next and total)', async () => {
    const fx = await fixture('crm.lead.list.json');
    const r = await call(hook, 'crm.lead.list', { select: ['*', 'UF_*'] });
    expect(r.status).toBe(200);
    expect((r.body.result as unknown[]).length).toBe(50);
    expect(r.body.next).toBe(50);
    expect(shapeDiff(r.body, fx)).toEqual([]);
  });

  it('crm.lead.get with PHONE and IM multi-fields', async () => {
    const fx = await fixture('crm.lead.get.json');
    const add = await call(hook, 'crm.lead.add', {
      fields: {
        TITLE: 'Contract shape',
        PHONE: [{ VALUE: '+15454777777', VALUE_TYPE: 'OTHER' }],
        IM: [{ VALUE: 'imol|livechat|1|67|21', VALUE_TYPE: 'OPENLINE' }],
      },
    });
    const r = await call(hook, 'crm.lead.get', { id: add.body.result });
    expect(r.status).toBe(200);
    expect(shapeDiff(r.body, fx)).toEqual([]);
    expect((r.body.result as Record<string, unknown>).HAS_IMOL).toBe('Y');
  });

  it('crm.lead.add from the documented JSON request', async () => {
    const fx = await fixture('crm.lead.add.json');
    const req = await fixture<Record<string, unknown>>('crm.lead.add.request.json');
    const r = await call(hook, 'crm.lead.add', req);
    expect(r.status).toBe(200);
    expect(typeof r.body.result).toBe('number');
    expect(shapeDiff(r.body, fx)).toEqual([]);
  });

  it('crm.lead.fields: every fixture field with the same descriptor keys (user fields added)', async () => {
    const fx = await fixture<{ result: Record<string, unknown> }>('crm.lead.fields.json');
    const r = await call(hook, 'crm.lead.fields');
    // Allow-list of fixture fields the emulator may omit: none today; add here with a reason if one goes.
    const mayOmit: string[] = [];
    const diff = shapeDiff(r.body, fx, '$', { mayOmit: { '$.result': mayOmit }, mayAdd: { '$.result': isUf } });
    expect(diff).toEqual([]);
    const uf = (r.body.result as Record<string, Record<string, unknown>>)[DEMO.userFields.lead.quality]!;
    expect(uf).toMatchObject({ type: 'enumeration', isDynamic: true, formLabel: 'Lead quality' });
    expect(uf.items).toEqual(expect.arrayContaining([{ ID: DEMO.enums.quality.hot, VALUE: 'Hot' }]));
  });

  it('crm.category.list (entityTypeId 2)', async () => {
    const fx = await fixture('crm.category.list.json');
    const r = await call(hook, 'crm.category.list', { entityTypeId: 2 });
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(3);
    expect(shapeDiff(r.body, fx)).toEqual([]);
  });

  it('crm.status.list (DEAL_STAGE)', async () => {
    const fx = await fixture('crm.status.list.json');
    const r = await call(hook, 'crm.status.list', { filter: { ENTITY_ID: 'DEAL_STAGE' } });
    expect(r.status).toBe(200);
    expect(shapeDiff(r.body, fx)).toEqual([]);
    const rows = r.body.result as Array<{ SEMANTICS: string | null; EXTRA: { SEMANTICS: string } }>;
    expect(rows.some((s) => s.SEMANTICS === 'S' && s.EXTRA.SEMANTICS === 'success')).toBe(true);
    expect(rows.some((s) => s.SEMANTICS === 'F' && s.EXTRA.SEMANTICS === 'failure')).toBe(true);
  });

  it('crm.duplicate.findbycomm: hits, and nothing found as []', async () => {
    const fx = await fixture('crm.duplicate.findbycomm.json');
    const r = await call(hook, 'crm.duplicate.findbycomm', { type: 'PHONE', entity_type: 'CONTACT', values: [DEMO.ivan.phone] });
    expect(r.body.result).toEqual({ CONTACT: [DEMO.ivan.contactId] });
    expect(shapeDiff(r.body, fx)).toEqual([]);
    const empty = await fixture('crm.duplicate.findbycomm.empty.json');
    const none = await call(hook, 'crm.duplicate.findbycomm', { type: 'EMAIL', values: ['nobody@nowhere.example'] });
    expect(none.body.result).toEqual([]);
    // The docs show only `result` for this example (INDEX.md); the emulator adds the usual `time`.
    expect(shapeDiff(none.body, empty, '$', { mayAdd: { $: (k) => k === 'time' } })).toEqual([]);
  });

  it('batch: the documented request with a $result reference', async () => {
    const fx = await fixture('batch.json');
    const req = await fixture<Record<string, unknown>>('batch.request.json');
    const r = await call(hook, 'batch', req);
    expect(r.status).toBe(200);
    expect(shapeDiff(r.body, fx)).toEqual([]);
    const inner = r.body.result as { result: { get_department: Array<{ ID: string }> } };
    expect(inner.result.get_department[0]!.ID).toBe('1');
  });

  it('batch with halt=0 where every command lacks its scope', async () => {
    const fx = await fixture<{ result: { result_error: Record<string, unknown> } }>('batch.error.halt0.json');
    const narrow = await startBitrixEmulator({ rateLimit: false, demo: false, scopes: ['crm'] });
    try {
      const r = await call(narrow.webhookUrl, 'batch', await fixture('batch.request.json'));
      expect(r.status).toBe(200);
      expect(shapeDiff(r.body, fx)).toEqual([]);
      expect((r.body.result as { result_error: unknown }).result_error).toEqual(fx.result.result_error);
    } finally {
      await narrow.close();
    }
  });

  it('oauth token refresh', async () => {
    const fx = await fixture<Record<string, unknown>>('oauth.token.refresh.json');
    const app = await startBitrixEmulator({ rateLimit: false, demo: false, oauth: { clientId: 'local.app', clientSecret: 's3cret' } });
    try {
      const t = await app.issueOAuthTokens();
      expect(shapeDiff(t, fx)).toEqual([]);
      const form = new URLSearchParams({ grant_type: 'refresh_token', client_id: 'local.app', client_secret: 's3cret', refresh_token: t.refresh_token });
      const res = await request(`${app.url}/oauth/token/?${form}`);
      const body = (await res.body.json()) as Record<string, unknown>;
      expect(res.statusCode).toBe(200);
      expect(shapeDiff(body, fx)).toEqual([]);
      for (const [k, v] of Object.entries(fx)) expect(typeof body[k], k).toBe(typeof v);
    } finally {
      await app.close();
    }
  });
});

describe('error bodies equal the fixtures exactly', () => {
  it('CRM not found: HTTP 400 with an empty code', async () => {
    const fx = await fixture('error.crm.lead.get.not_found.json');
    const r = await call(hook, 'crm.lead.get', { id: 987654321 });
    expect(r.status).toBe(400);
    expect(r.body).toEqual(fx);
  });

  it('QUERY_LIMIT_EXCEEDED: HTTP 503', async () => {
    const fx = await fixture('error.QUERY_LIMIT_EXCEEDED.json');
    const limited = await startBitrixEmulator({ demo: false });
    try {
      let last: Answer | undefined;
      for (let i = 0; i < 60 && last?.status !== 503; i++) last = await call(limited.webhookUrl, 'profile');
      expect(last?.status).toBe(503);
      expect(last?.body).toEqual(fx);
    } finally {
      await limited.close();
    }
  });

  it('OPERATION_TIME_LIMIT: HTTP 429 directly, a per-command error inside batch', async () => {
    const fx = await fixture<{ result: { result: unknown; result_error: Record<string, unknown> } }>('error.OPERATION_TIME_LIMIT.batch.json');
    const [key, expected] = Object.entries(fx.result.result_error)[0]!;
    const limited = await startBitrixEmulator({ demo: false });
    try {
      limited.setOperatingCost('crm.deal.list', 500);
      expect((await call(limited.webhookUrl, 'crm.deal.list')).status).toBe(200);
      const direct = await call(limited.webhookUrl, 'crm.deal.list');
      expect(direct.status).toBe(429);
      expect(direct.body).toEqual(expected);
      const b = await call(limited.webhookUrl, 'batch', { halt: 0, cmd: { [key]: 'crm.deal.list' } });
      const inner = b.body.result as { result: unknown; result_error: Record<string, unknown> };
      expect(inner.result).toEqual(fx.result.result);
      expect(inner.result_error).toEqual(fx.result.result_error);
    } finally {
      await limited.close();
    }
  });
});

/**
 * The provider reads Bitrix24 through lenient schemas (src/crms/bitrix24/schemas.ts); an answer that does
 * not parse is an upstream error. The real answers (fixtures) and the emulator's must both parse with them, or
 * the provider would refuse the real portal, or be tested against answers it never gets.
 */
describe('the provider’s payload schemas accept the fixtures and the emulator alike', () => {
  const issues = (schema: z.ZodType, v: unknown): string[] => {
    const r = schema.safeParse(v);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  /** The envelope, then its `result` with the method's schema (as api.ts and its callers read them). */
  const answer =
    (schema: z.ZodType) =>
    (body: unknown): string[] => [...issues(BEnvelope, body), ...issues(schema, (body as { result?: unknown }).result)];
  const cases: Array<[string, string, Record<string, unknown>, z.ZodType]> = [
    ['crm.lead.list.json', 'crm.lead.list', { select: ['*', 'UF_*'] }, BRows],
    ['crm.lead.fields.json', 'crm.lead.fields', {}, BFields],
    ['crm.category.list.json', 'crm.category.list', { entityTypeId: 2 }, BCategoryList],
    ['crm.status.list.json', 'crm.status.list', { filter: { ENTITY_ID: 'DEAL_STAGE' } }, BStatuses],
  ];
  it.each(cases)('%s and the emulator’s %s', async (fixtureName, method, params, schema) => {
    expect(answer(schema)(await fixture(fixtureName)), fixtureName).toEqual([]);
    const r = await call(hook, method, params);
    expect(r.status).toBe(200);
    expect(answer(schema)(r.body), method).toEqual([]);
  });

  it('crm.lead.get (fixture and emulator) as a row', async () => {
    expect(answer(BRow)(await fixture('crm.lead.get.json'))).toEqual([]);
    const add = await call(hook, 'crm.lead.add', { fields: { TITLE: 'Schema shape' } });
    expect(answer(BRow)((await call(hook, 'crm.lead.get', { id: add.body.result })).body)).toEqual([]);
  });

  it('batch (the documented request, and halt=0 with errors) through BBatch', async () => {
    expect(answer(BBatch)(await fixture('batch.json'))).toEqual([]);
    expect(answer(BBatch)(await fixture('batch.error.halt0.json'))).toEqual([]);
    const r = await call(hook, 'batch', await fixture('batch.request.json'));
    expect(answer(BBatch)(r.body)).toEqual([]);
    // Empty maps arrive as [] (PHP, §3) and read as empty.
    const empty = BBatch.parse({ result: [], result_error: [], result_total: [], result_next: [] });
    expect(empty).toMatchObject({ result: {}, result_error: {}, result_total: {}, result_next: {} });
  });

  it('tasks.task.add and the profile as the provider reads them', async () => {
    const profile = await call(hook, 'profile');
    expect(answer(BRow)(profile.body)).toEqual([]);
    const task = await call(hook, 'tasks.task.add', {
      fields: { TITLE: 'Schema task', RESPONSIBLE_ID: DEMO.userId, DEADLINE: new Date(Date.now() + 3_600_000).toISOString() },
    });
    expect(task.status).toBe(200);
    expect(answer(BTaskAdded)(task.body)).toEqual([]);
  });

  it('the schemas are not vacuous: a status without STATUS_ID, a row list of strings, a batch result string', () => {
    expect(issues(BStatuses, [{ ENTITY_ID: 'DEAL_STAGE', NAME: 'x', SORT: 10 }])).not.toEqual([]);
    expect(issues(BRows, ['x'])).not.toEqual([]);
    expect(issues(BBatch, { result: 'oops' })).not.toEqual([]);
  });
});
