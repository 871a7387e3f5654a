/**
 * Issue 9 / finding 7: a Bitrix24 "portal moved" redirect must not carry the webhook secret or the OAuth
 * access token to a host the user did not configure, and must not move the connection for good.
 *
 * Cloud host names (old.bitrix24.ru, bitrix24.ru.evil.com, …) are resolved by a test dispatcher to local
 * servers, so the domain rule itself is what protects the "attacker" (a plain node:http server, not an
 * emulator, that records what it receives). Loopback moves are allowed only between two emulators the caller
 * started and named when it built the provider (`trustedOrigins`); the attacker on 127.0.0.1 is not one of them.
 */
import type { CallToolResult } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnose } from '../../src/commands/doctor.js';
import type { BitrixConnection } from '../../src/crms/bitrix24/connection.js';
import { buildBitrixProvider, type BitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { decidePortalMove, portalMoveKey, type PortalMove } from '../../src/crms/bitrix24/relocation.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { openStore, type Store } from '../../src/store/store.js';
import { READ_ONLY, errorOf, linkClient, logLines, startBitrix, structured, text } from '../helpers/index.js';

interface Attacker {
  url: string;
  port: number;
  received: Array<{ method: string; url: string; host: string | undefined; body: string }>;
  close(): Promise<void>;
}

/** Stands in for whoever a forged Location points at: records everything, answers like a portal would. */
async function startAttacker(): Promise<Attacker> {
  const received: Attacker['received'] = [];
  const server: Server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += String(c)));
    req.on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', host: req.headers.host, body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":[],"total":0}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, received, close: () => new Promise((r) => server.close(() => r())) };
}

/** An undici dispatcher that resolves the named hosts to local ports (plain TCP, even for https URLs). */
function fakeDns(hosts: Record<string, number>): Agent {
  return new Agent({
    connect: (opts, cb) => {
      const port = hosts[String(opts.hostname)];
      if (port === undefined) {
        cb(new Error(`test DNS: unknown host ${String(opts.hostname)}`), null);
        return;
      }
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => cb(null, s));
      s.once('error', (e) => cb(e, null));
    },
  });
}

interface Conn {
  provider: BitrixProvider;
  store: Store;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

async function connect(conn: Partial<BitrixConnection>, o: { dispatcher?: Agent; store?: Store } = {}): Promise<Conn> {
  const full: BitrixConnection = { name: 'bitrix24', provider: 'bitrix24', plan: 'standard', policy: READ_ONLY, ...conn } as BitrixConnection;
  const store = o.store ?? (await openStore('memory'));
  const provider = buildBitrixProvider(full, { store, timeoutMs: 3000, maxRetries: 1, backoffBaseMs: 10, dispatcher: o.dispatcher });
  await provider.init();
  return { ...(await linkClient({ config: { tools: {} }, providers: [provider] })), provider, store };
}

const listDeals = { method: 'crm.deal.list', params: { select: ['ID'], filter: { '>ID': 2 } } };

let attacker: Attacker;
let portal: BitrixEmulator;
let newPortal: BitrixEmulator;
const SECRET = 'webhooksecretabc123';

beforeAll(async () => {
  attacker = await startAttacker();
  [portal, newPortal] = await Promise.all([startBitrix({ rateLimit: false, webhookSecret: SECRET }), startBitrix({ rateLimit: false, webhookSecret: SECRET })]);
});
afterAll(async () => {
  await Promise.all([attacker?.close(), portal?.close(), newPortal?.close()]);
});

function expectNoSecret(r: CallToolResult, ...secrets: string[]): void {
  const all = JSON.stringify(r);
  for (const s of secrets) expect(all).not.toContain(s);
  expect(all).not.toContain('/rest/1/');
}

describe('portal-moved redirects that must not be followed', () => {
  const cases: Array<[string, (a: Attacker) => { location: string; hosts: Record<string, number> }]> = [
    ['another domain', (a) => ({ location: 'https://portal.example.com', hosts: { 'portal.example.com': a.port } })],
    [
      'a look-alike with the cloud name as a prefix (bitrix24.ru.evil.com)',
      (a) => ({ location: 'https://bitrix24.ru.evil.com', hosts: { 'bitrix24.ru.evil.com': a.port } }),
    ],
    [
      'a look-alike portal (acme.bitrix24.ru.evil.com)',
      (a) => ({ location: 'https://acme.bitrix24.ru.evil.com', hosts: { 'acme.bitrix24.ru.evil.com': a.port } }),
    ],
    ['a look-alike registrable domain (evilbitrix24.ru)', (a) => ({ location: 'https://evilbitrix24.ru', hosts: { 'evilbitrix24.ru': a.port } })],
    ['a look-alike sub-domain (acme.evilbitrix24.ru)', (a) => ({ location: 'https://acme.evilbitrix24.ru', hosts: { 'acme.evilbitrix24.ru': a.port } })],
    ['a cloud portal over plain http', (a) => ({ location: 'http://new.bitrix24.ru', hosts: { 'new.bitrix24.ru': a.port } })],
    ['a cloud portal on another port', (a) => ({ location: 'https://new.bitrix24.ru:8443', hosts: { 'new.bitrix24.ru': a.port } })],
  ];

  it.each(cases)('webhook on old.bitrix24.ru: a redirect to %s is refused and nothing reaches the target', async (_name, make) => {
    const { location, hosts } = make(attacker);
    const dispatcher = fakeDns({ 'old.bitrix24.ru': portalPort(portal), ...hosts });
    const c = await connect({ webhookUrl: `https://old.bitrix24.ru/rest/1/${SECRET}/` }, { dispatcher });
    attacker.received.length = 0;
    portal.harness.resetLog();
    portal.setMovedTo(location);
    try {
      const r = await c.call('bitrix_call', listDeals);
      const e = errorOf(r);
      expect(e.code).toBe('config');
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/not followed/);
      expect(e.message).toMatch(/BITRIX_WEBHOOK_BASE/);
      expectNoSecret(r, SECRET);
      expect(attacker.received, 'the forged target received nothing').toEqual([]);
      // The configured portal was asked (and answered 302); the move was not recorded as pending.
      expect(portal.requests.filter((q) => q.tag === 'moved').length).toBeGreaterThan(0);
      expect(c.provider.pendingMove).toBeUndefined();
      expect(await c.store.get(portalMoveKey('https://old.bitrix24.ru'))).toBeUndefined();
      expect(logLines.join('\n')).not.toContain(SECRET);
    } finally {
      portal.setMovedTo(null);
      await c.close();
      await dispatcher.close();
    }
  });

  it('a redirect to loopback (a server this process did not start as an emulator) is refused: webhook', async () => {
    attacker.received.length = 0;
    const c = await connect({ webhookUrl: portal.webhookUrl });
    portal.setMovedTo(attacker.url);
    try {
      const r = await c.call('bitrix_call', listDeals);
      expect(errorOf(r).code).toBe('config');
      expect(errorOf(r).message).toMatch(/local address/);
      expectNoSecret(r, SECRET);
      expect(attacker.received).toEqual([]);
      expect(c.provider.http.origin).toBe(portal.url);
    } finally {
      portal.setMovedTo(null);
      await c.close();
    }
  });

  it('a redirect to loopback is refused: OAuth (the access token in auth= does not follow)', async () => {
    const e2 = await startBitrix({ rateLimit: false, oauth: { clientId: 'app.move', clientSecret: 'app-move-secret-123456' } });
    const t = await e2.issueOAuthTokens();
    const c = await connect({
      oauth: { clientId: 'app.move', clientSecret: 'app-move-secret-123456', refreshToken: t.refresh_token, portal: e2.url, oauthServer: e2.url },
    });
    try {
      expect((await c.call('bitrix_call', listDeals)).isError).toBeFalsy();
      const access = (await c.provider.auth.tokens!.current()).access_token;
      attacker.received.length = 0;
      e2.setMovedTo(attacker.url);
      const r = await c.call('bitrix_call', listDeals);
      expect(errorOf(r).code).toBe('config');
      expect(errorOf(r).message).toMatch(/BITRIX_PORTAL/);
      expectNoSecret(r, access, t.refresh_token);
      expect(attacker.received).toEqual([]);
      // The redirect did carry the token in its Location (same query): the refusal is what kept it home.
      expect(e2.requests.some((q) => q.tag === 'moved' && q.url.includes(access))).toBe(true);
    } finally {
      await c.close();
      await e2.close();
    }
  });

  it('a second redirect from the new address is not followed and its Location is not in the error', async () => {
    const dispatcher = fakeDns({ 'old.bitrix24.ru': portalPort(portal), 'new.bitrix24.com': portalPort(newPortal), 'acme.bitrix24.de': attacker.port });
    const c = await connect({ webhookUrl: `https://old.bitrix24.ru/rest/1/${SECRET}/` }, { dispatcher });
    attacker.received.length = 0;
    portal.setMovedTo('https://new.bitrix24.com');
    newPortal.setMovedTo('https://acme.bitrix24.de');
    try {
      const r = await c.call('bitrix_call', listDeals);
      expect(errorOf(r).message).toMatch(/redirected again/);
      expectNoSecret(r, SECRET);
      expect(attacker.received).toEqual([]);
    } finally {
      portal.setMovedTo(null);
      newPortal.setMovedTo(null);
      await c.close();
      await dispatcher.close();
    }
  });
});

describe('a portal move within Bitrix24 cloud', () => {
  it('old.bitrix24.ru → new.bitrix24.com is followed for the request only, recorded, and the next request starts at the configured address', async () => {
    const dispatcher = fakeDns({ 'old.bitrix24.ru': portalPort(portal), 'new.bitrix24.com': portalPort(newPortal) });
    const c = await connect({ webhookUrl: `https://old.bitrix24.ru/rest/1/${SECRET}/` }, { dispatcher });
    portal.harness.resetLog();
    newPortal.harness.resetLog();
    portal.setMovedTo('https://new.bitrix24.com');
    try {
      const r = structured<{ result: Array<{ ID: string }> }>(await c.call('bitrix_call', listDeals));
      expect(r.result.length).toBeGreaterThan(0);
      const seen = newPortal.requests.filter((q) => q.path.endsWith('crm.deal.list.json'));
      expect(seen).toHaveLength(1);
      expect(seen[0]!.headers.host).toBe('new.bitrix24.com');
      expect(seen[0]!.body).toContain('>ID');
      expect(c.provider.http.origin).toBe('https://old.bitrix24.ru');
      expect(c.provider.pendingMove).toMatchObject({ from: 'https://old.bitrix24.ru', to: 'https://new.bitrix24.com' });
      expect(await c.store.get<PortalMove>(portalMoveKey('https://old.bitrix24.ru'))).toMatchObject({ to: 'https://new.bitrix24.com' });
      // The next call goes to the configured address first (not adopted silently).
      const before = portal.requests.length;
      expect((await c.call('bitrix_call', listDeals)).isError).toBeFalsy();
      expect(portal.requests.length).toBe(before + 1);
      expect(portal.requests.at(-1)!.headers.host).toBe('old.bitrix24.ru');
      // Once the configured address answers again (the user moved back, or the redirect stopped) nothing goes to the new one.
      portal.setMovedTo(null);
      const onNew = newPortal.requests.length;
      expect((await c.call('bitrix_call', listDeals)).isError).toBeFalsy();
      expect(newPortal.requests.length).toBe(onNew);
    } finally {
      portal.setMovedTo(null);
      await c.close();
      await dispatcher.close();
    }
  });

  it('crm-mcp doctor reports the pending move with the instruction to update the configured address, without the secret', async () => {
    // Two emulators of this process: the test-mode loopback allowance covers exactly these.
    portal.setMovedTo(newPortal.url);
    const home = mkdtempSync(join(tmpdir(), 'crm-mcp-move-'));
    try {
      const report = await diagnose({ CRM_MCP_HOME: home, CRM_MCP_STORE: join(home, 'store.json'), BITRIX_WEBHOOK_BASE: portal.webhookUrl }, undefined, {
        trustedOrigins: [portal.url, newPortal.url],
      });
      const conn = report.connections.find((x) => x.provider === 'bitrix24')!;
      expect(conn.checks.find((x) => x.check === 'account')?.status).toBe('ok');
      const move = report.problems.find((p) => p.check === 'address');
      expect(move, JSON.stringify(report.problems)).toBeDefined();
      expect(move!.severity).toBe('warn');
      expect(move!.message).toContain(new URL(newPortal.url).host);
      expect(move!.fix).toMatch(/BITRIX_WEBHOOK_BASE/);
      expect(move!.fix).toContain(`${newPortal.url}/rest/1/***/`);
      expect(JSON.stringify(report)).not.toContain(SECRET);
      expect(report.exit_code).toBe(3);
    } finally {
      portal.setMovedTo(null);
    }
  });
});

describe('decidePortalMove (the rule on its own)', () => {
  const hook = '/rest/1/abc123secret/';
  it.each([
    ['https://old.bitrix24.ru', 'https://new.bitrix24.ru/rest/1/abc123secret/x.json', true],
    ['https://old.bitrix24.ru', 'https://new.bitrix24.kz/rest/1/abc123secret/x.json', true],
    ['https://b24-x1.bitrix24.by', 'https://acme.bitrix24.de/rest/1/abc123secret/x.json', true],
    ['https://old.bitrix24.ru', 'https://bitrix24.ru/rest/1/abc123secret/x.json', false],
    ['https://old.bitrix24.ru', 'https://a.b.bitrix24.ru/rest/1/abc123secret/x.json', false],
    ['https://old.bitrix24.ru', 'https://new.bitrix24.xyz/rest/1/abc123secret/x.json', false],
    ['https://old.bitrix24.ru', 'https://new.bitrix24.ru/rest/2/other/x.json', false],
    ['https://old.bitrix24.ru', 'https://u:p@new.bitrix24.ru/rest/1/abc123secret/x.json', false],
    ['https://old.bitrix24.ru', 'https://localhost/rest/1/abc123secret/x.json', false],
    ['https://old.bitrix24.ru', 'https://127.0.0.2/rest/1/abc123secret/x.json', false],
    ['http://crm.acme.local', 'https://crm.acme.local/rest/1/abc123secret/x.json', true],
    ['https://crm.acme.local', 'http://crm.acme.local/rest/1/abc123secret/x.json', false],
    ['https://crm.acme.local', 'https://crm2.acme.local/rest/1/abc123secret/x.json', false],
    ['https://crm.acme.local', 'https://new.bitrix24.ru/rest/1/abc123secret/x.json', false],
  ])('%s → %s: follow=%s', (from, to, follow) => {
    const d = decidePortalMove(from, to, hook);
    expect(d.follow).toBe(follow);
    if (!d.follow) expect(d.reason).not.toContain('abc123secret');
  });
});

function portalPort(e: BitrixEmulator): number {
  return Number(new URL(e.url).port);
}

// Keep `text` referenced for debugging failed cases.
void text;
