/**
 * CRM_CONFIRM_WRITES (issue 17, "A person approves writes"), through real SDK v2 clients against the Kommo
 * emulator: in-process (a 2025-era connection, as stdio serves it) and over the Streamable HTTP service on
 * both eras. A client that declares elicitation is asked and the write runs once when the person accepts,
 * never when they decline or cancel; a client that cannot ask gets `approval_required`, a person approves
 * on the HTTP page (token, same origin only), the repeat runs once and a third is refused. Every forgery
 * sends nothing. What the emulator received is counted from its request log, by hand.
 */
import { Client, StreamableHTTPClientTransport, InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApprovalDesk } from '../../src/approvals/desk.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { buildKommoProvider, type KommoProvider } from '../../src/crms/kommo/provider.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { openStore, type Store } from '../../src/store/store.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { errorOf, startKommo, structured, WRITE, writesTo } from '../helpers/index.js';
import { redisAvailable, testRedisUrl } from '../helpers/redis.js';

const TOKEN = 'approvals-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const MODERN = { mode: { pin: '2026-07-28' } } as const;
/** What one create_lead for a new person sends to Kommo (the emulator's log), written out by hand. */
const ONE_LEAD = ['POST /api/v4/contacts', 'POST /api/v4/leads'];

let emu: KommoEmulator;
let provider: KommoProvider;
let store: Store;
let clock = Date.now();
let desk: ApprovalDesk;
let audit: AuditLog;
let http: RunningHttpServer;
let seq = 0;

/** A create_lead call for a person nobody has yet: Kommo gets the contact's POST, then the lead's (lookups are GETs). */
const newLead = () => {
  seq += 1;
  return { name: `Approval test ${seq}`, contact: { first_name: `Ann${seq}`, email: `approval-${seq}-${Date.now()}@example.org` } };
};
const creates = () => writesTo(emu.requests);

type Answer = 'accept' | 'decline' | 'cancel' | 'accept-unchecked';

/** An SDK v2 client; with `answer`, it declares form elicitation and answers every question that way. */
function client(answer?: Answer, modern = false): { c: Client; asked: unknown[] } {
  const asked: unknown[] = [];
  const c = new Client(
    { name: answer ? 'asking-client' : 'plain-client', version: '1.0' },
    { ...(answer ? { capabilities: { elicitation: { form: {} } } } : {}), ...(modern ? { versionNegotiation: MODERN } : {}) },
  );
  if (answer) {
    c.setRequestHandler('elicitation/create', (req) => {
      asked.push(req.params);
      if (answer === 'accept') return { action: 'accept', content: { approve: true } };
      if (answer === 'accept-unchecked') return { action: 'accept', content: { approve: false } };
      return { action: answer };
    });
  }
  return { c, asked };
}

async function inProcess(
  answer?: Answer,
): Promise<{ call: (n: string, a: Record<string, unknown>) => Promise<CallToolResult>; asked: unknown[]; close: () => Promise<void> }> {
  const server = createServer({ config: { tools: {} }, providers: [provider], approvals: desk, audit });
  const { c, asked } = client(answer);
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(st), c.connect(ct)]);
  return { call: (name, args) => c.callTool({ name, arguments: args }) as Promise<CallToolResult>, asked, close: () => c.close() };
}

async function overHttp(answer: Answer | undefined, modern: boolean) {
  const { c, asked } = client(answer, modern);
  await c.connect(new StreamableHTTPClientTransport(new URL(http.url), { requestInit: { headers: AUTH } }));
  return {
    call: (name: string, args: Record<string, unknown>) => c.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    asked,
    close: () => c.close(),
  };
}

const page = (path: string, init: RequestInit = {}) => fetch(new URL(path, http.url), init);

beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  store = await openStore(join(mkdtempSync(join(tmpdir(), 'crm-approvals-')), 'store.json'));
  provider = buildKommoProvider(
    { name: 'kommo', provider: 'kommo', baseUrl: emu.url, accessToken: emu.createLongLivedToken(), policy: WRITE },
    { store, timeoutMs: 3000, maxRetries: 1, backoffBaseMs: 20 },
  );
  await provider.init();
  desk = new ApprovalDesk(store, { on: true, via: 'auto', ttlMs: 600_000 }, { now: () => clock });
  audit = new AuditLog();
  http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    makeServer: (scope) => createServer({ config: { tools: {} }, providers: [provider], narrow: scope.narrow, approvals: desk, audit }),
    approvals: desk,
  });
});

afterAll(async () => {
  await http.close();
  await emu.close();
  await store.close();
});

beforeEach(() => {
  clock = Date.now();
  emu.resetLog();
});

describe('the schema', () => {
  it('write tools take approval_id only when approvals are on; reads never', async () => {
    const connect = async (approvals?: ApprovalDesk) => {
      const c = new Client({ name: 'schema', version: '0' });
      const [a, b] = InMemoryTransport.createLinkedPair();
      await Promise.all([createServer({ config: { tools: {} }, providers: [provider], approvals }).connect(b), c.connect(a)]);
      return c;
    };
    const props = async (c: Client, name: string) => Object.keys((await c.listTools()).tools.find((t) => t.name === name)!.inputSchema.properties ?? {});
    const on = await connect(desk);
    const off = await connect();
    expect(await props(on, 'create_lead')).toContain('approval_id');
    expect(await props(on, 'update_lead')).toContain('approval_id');
    expect(await props(on, 'get_lead')).not.toContain('approval_id');
    expect(await props(off, 'create_lead')).not.toContain('approval_id');
    await Promise.all([on.close(), off.close()]);
  });
});

describe('asked through the client (elicitation)', () => {
  it.each([
    ['2025 era, in process', async (a: Answer) => inProcess(a)],
    ['2026-07-28 over HTTP', async (a: Answer) => overHttp(a, true)],
  ])('%s: accepted → asked once, the write runs once; the audit names the client', async (_label, open) => {
    const s = await open('accept');
    const r = await s.call('create_lead', newLead());
    expect(structured<{ created: boolean }>(r).created).toBe(true);
    expect(s.asked).toHaveLength(1);
    expect(JSON.stringify(s.asked[0])).toContain('create_lead');
    expect(creates().map((q) => `${q.method} ${q.path}`)).toEqual(ONE_LEAD);
    const line = (await audit.recent({ limit: 5, tool: 'create_lead' })).find((e) => e.outcome === 'ok');
    expect(line?.approval).toMatchObject({ decision: 'approved', via: 'client', by: expect.stringContaining('asking-client') });
    expect(line?.approval?.sent?.[0]).toMatchObject({ method: 'POST' });
    await s.close();
  });

  it.each([
    ['2025 era, in process', 'decline', async (a: Answer) => inProcess(a)],
    ['2025 era, in process', 'cancel', async (a: Answer) => inProcess(a)],
    ['2025 era, in process', 'accept-unchecked', async (a: Answer) => inProcess(a)],
    ['2026-07-28 over HTTP', 'decline', async (a: Answer) => overHttp(a, true)],
    ['2026-07-28 over HTTP', 'cancel', async (a: Answer) => overHttp(a, true)],
  ] as const)('%s: %s → approval_declined, nothing sent', async (_label, answer, open) => {
    const s = await open(answer);
    const r = await s.call('create_lead', newLead());
    expect(errorOf(r).code).toBe('approval_declined');
    expect(s.asked).toHaveLength(1);
    expect(creates()).toEqual([]);
    await s.close();
  });

  it('CRM_CONFIRM_VIA=operator: a client that can ask is not asked; approval_required instead', async () => {
    const opDesk = new ApprovalDesk(store, { on: true, via: 'operator', ttlMs: 600_000 });
    const server = createServer({ config: { tools: {} }, providers: [provider], approvals: opDesk });
    const { c, asked } = client('accept');
    const [ct, st] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(st), c.connect(ct)]);
    const r = (await c.callTool({ name: 'create_lead', arguments: newLead() })) as CallToolResult;
    expect(errorOf(r).code).toBe('approval_required');
    expect(asked).toEqual([]);
    expect(creates()).toEqual([]);
    await c.close();
  });

  it('CRM_CONFIRM_VIA=client: a client that cannot ask is refused (approval_unavailable), nothing sent', async () => {
    const clDesk = new ApprovalDesk(store, { on: true, via: 'client', ttlMs: 600_000 });
    const server = createServer({ config: { tools: {} }, providers: [provider], approvals: clDesk });
    const { c } = client();
    const [ct, st] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(st), c.connect(ct)]);
    const r = (await c.callTool({ name: 'create_lead', arguments: newLead() })) as CallToolResult;
    expect(errorOf(r).code).toBe('approval_unavailable');
    expect(creates()).toEqual([]);
    await c.close();
  });
});

describe('out of band: approval_required, a person approves on the HTTP page, the repeat runs once', () => {
  it.each([
    ['2025 era over HTTP (stateless: the server cannot ask)', 'accept' as Answer, false],
    ['2026-07-28 over HTTP, a client without elicitation', undefined, true],
  ])('%s', async (_label, answer, modern) => {
    const s = await overHttp(answer, modern);
    const args = newLead();
    const first = errorOf(await s.call('create_lead', args));
    expect(first.code).toBe('approval_required');
    expect(s.asked).toEqual([]);
    expect(creates()).toEqual([]);
    const id = /approval_id "(apr_[^"]+)"/.exec(first.message)![1]!;

    // Not yet approved: the repeat waits.
    expect(errorOf(await s.call('create_lead', { ...args, approval_id: id })).code).toBe('approval_pending');
    expect(creates()).toEqual([]);

    // The page: without the token 401, a cross-site POST 403, a GET never approves; with the token it lists and approves.
    expect((await page('/approvals')).status).toBe(401);
    expect((await page(`/approvals/${id}/approve`, { method: 'POST' })).status).toBe(401);
    expect((await page(`/approvals/${id}/approve`, { method: 'POST', headers: { ...AUTH, origin: 'https://evil.example' } })).status).toBe(403);
    expect((await page(`/approvals/${id}/approve`, { headers: AUTH })).status).toBe(405);
    const listed = (await (await page('/approvals', { headers: AUTH })).json()) as { pending: Array<{ id: string; summary: string }> };
    expect(listed.pending.find((p) => p.id === id)?.summary).toContain('create_lead');
    expect(errorOf(await s.call('create_lead', { ...args, approval_id: id })).code).toBe('approval_pending');
    const ok = await page(`/approvals/${id}/approve`, { method: 'POST', headers: AUTH });
    expect(ok.status).toBe(200);

    // Other arguments with this id: refused, nothing sent.
    expect(errorOf(await s.call('create_lead', { ...args, name: 'Something else', approval_id: id })).code).toBe('approval_mismatch');
    expect(creates()).toEqual([]);

    const second = await s.call('create_lead', { ...args, approval_id: id });
    expect(structured<{ created: boolean }>(second).created).toBe(true);
    expect(creates().map((q) => `${q.method} ${q.path}`)).toEqual(ONE_LEAD);
    const third = await s.call('create_lead', { ...args, approval_id: id });
    expect(errorOf(third).code).toBe('approval_used');
    expect(creates()).toHaveLength(ONE_LEAD.length);
    const line = (await audit.recent({ limit: 10, tool: 'create_lead' })).find((e) => e.outcome === 'ok');
    expect(line?.approval).toMatchObject({ decision: 'approved', via: 'http-page', by: expect.stringMatching(/^bearer:[0-9a-f]{16} from /) });
    await s.close();
  });

  it('a page without a configured token is off (403), so no local process can approve', async () => {
    const open = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      makeServer: (scope) => createServer({ config: { tools: {} }, providers: [provider], narrow: scope.narrow, approvals: desk }),
      approvals: desk,
    });
    expect((await fetch(new URL('/approvals', open.url))).status).toBe(403);
    await open.close();
  });
});

describe('nothing the agent can send approves a write', () => {
  /** A genuine id for `args`, pending (approve it with `approve`). */
  async function issued(call: (n: string, a: Record<string, unknown>) => Promise<CallToolResult>, args: Record<string, unknown>): Promise<string> {
    const e = errorOf(await call('create_lead', args));
    expect(e.code).toBe('approval_required');
    return (e as unknown as { details: { approval_id: string } }).details?.approval_id ?? /approval_id "(apr_[^"]+)"/.exec(e.message)![1]!;
  }

  it('forged fields, made-up and altered ids, another call, expiry, a declined id: each refused, nothing sent', async () => {
    const s = await inProcess();
    const args = newLead();
    // An `approved: true` argument (and any field the schema does not list) is a validation error.
    const forged = await s.call('create_lead', { ...args, approved: true });
    expect(forged.isError).toBe(true);
    expect(creates()).toEqual([]);
    // A made-up id.
    expect(errorOf(await s.call('create_lead', { ...args, approval_id: 'apr_AAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB' })).code).toBe('approval_invalid');
    expect(errorOf(await s.call('create_lead', { ...args, approval_id: 'yes' })).code).toBe('approval_invalid');
    // A genuine id, approved, whose MAC is altered.
    const id = await issued(s.call, args);
    await desk.decide(id, true, { by: 'test', via: 'terminal' });
    const last = id.at(-1) === 'A' ? 'B' : 'A';
    expect(errorOf(await s.call('create_lead', { ...args, approval_id: id.slice(0, -1) + last })).code).toBe('approval_invalid');
    // The approved id for other arguments, and on another tool.
    expect(errorOf(await s.call('create_lead', { ...args, name: 'Other', approval_id: id })).code).toBe('approval_mismatch');
    expect(errorOf(await s.call('create_contact', { ...args.contact, approval_id: id })).code).toBe('approval_mismatch');
    // Expired.
    clock += 601_000;
    expect(errorOf(await s.call('create_lead', { ...args, approval_id: id })).code).toBe('approval_expired');
    clock = Date.now();
    // Declined.
    const args2 = newLead();
    const id2 = await issued(s.call, args2);
    await desk.decide(id2, false, { by: 'test', via: 'terminal' });
    expect(errorOf(await s.call('create_lead', { ...args2, approval_id: id2 })).code).toBe('approval_declined');
    expect(creates()).toEqual([]);
    await s.close();
  });

  it('two repeats at once: one runs, the other gets approval_used; one create', async () => {
    const s = await inProcess();
    const args = newLead();
    const id = await issued(s.call, args);
    await desk.decide(id, true, { by: 'test', via: 'terminal' });
    const both = await Promise.all([s.call('create_lead', { ...args, approval_id: id }), s.call('create_lead', { ...args, approval_id: id })]);
    expect(both.map((r) => (r.isError ? errorOf(r).code : 'ok')).sort()).toEqual(['approval_used', 'ok']);
    expect(creates().map((q) => `${q.method} ${q.path}`)).toEqual(ONE_LEAD);
    await s.close();
  });

  it('an update is planned as a dry run (the plan names the record) and sends nothing before approval', async () => {
    const s = await inProcess();
    const made = await (async () => {
      const args = newLead();
      const id = await issued(s.call, args);
      await desk.decide(id, true, { by: 'test', via: 'terminal' });
      return structured<{ lead: { id: number } }>(await s.call('create_lead', { ...args, approval_id: id })).lead;
    })();
    emu.resetLog();
    const e = errorOf(await s.call('update_lead', { id: made.id, price: 1234 }));
    expect(e.code).toBe('approval_required');
    expect(e.message).toContain(`PATCH`);
    expect(e.message).toContain(`id ${made.id}`);
    expect(creates()).toEqual([]);
    await s.close();
  });
});

describe.runIf(redisAvailable())('with Redis, the records are shared by every instance', () => {
  it('an id issued by one instance is approved on another and used once across both', async () => {
    const redis = await testRedisUrl(11);
    const [a, b] = [await openStore(redis.url), await openStore(redis.url)];
    try {
      const settings = { on: true, via: 'auto' as const, ttlMs: 600_000 };
      const [one, two] = [new ApprovalDesk(a, settings), new ApprovalDesk(b, settings)];
      const rec = await one.create({
        principal: 'stdio',
        digest: 'd1',
        tool: 'create_lead',
        connection: 'kommo',
        effect: 'create',
        target: {},
        summary: 's',
        requests: [],
        channel: 'operator',
      });
      expect((await two.pending()).map((r) => r.id)).toContain(rec.id);
      await two.decide(rec.id, true, { by: 'test', via: 'terminal' });
      const uses = await Promise.allSettled([one.consume(rec.id, 'stdio', 'd1'), two.consume(rec.id, 'stdio', 'd1')]);
      expect(uses.map((u) => (u.status === 'fulfilled' ? 'ok' : (u.reason as { code: string }).code)).sort()).toEqual(['approval_used', 'ok']);
    } finally {
      await a.close();
      await b.close();
      await redis.close();
    }
  });
});
