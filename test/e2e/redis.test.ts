/**
 * Scale-out on Redis: the token store, refresh locks and rate limiters shared by several instances.
 * Real redis-server (started by .ci/run, or privately here), real emulators, real server processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { SharedBucketLimiter, SharedSlidingWindowLimiter } from '../../src/http/shared-limiter.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore, type Store } from '../../src/store/store.js';
import type { TokenRecord } from '../../src/crms/oauth.js';
import { connectKommo, errorOf, startKommo, text } from '../helpers/index.js';
import { recovers, redisAvailable, startPrivateRedis, testRedisUrl } from '../helpers/redis.js';

const RUN = redisAvailable();
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const OAUTH = { clientId: 'integration-1', clientSecret: 'integration-secret-123456', redirectUri: 'https://example.org/oauth' };

/** Most requests the emulator accepted in any sliding second (API paths only). */
function peakPerSecond(emu: KommoEmulator): number {
  const at = emu.requests
    .filter((r) => r.path.startsWith('/api/v4/') && r.tag !== 'rate_limited')
    .map((r) => r.at)
    .sort((a, b) => a - b);
  let peak = 0;
  for (let i = 0, j = 0; i < at.length; i++) {
    while (at[i]! - at[j]! >= 1000) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak;
}

let redisUrl = '';
let closeRedis: () => Promise<void> = async () => undefined;
const stores: Store[] = [];
async function store(): Promise<Store> {
  const s = await openStore(redisUrl);
  stores.push(s);
  return s;
}

beforeAll(async () => {
  if (!RUN) return;
  const r = await testRedisUrl(5);
  redisUrl = r.url;
  closeRedis = r.close;
  const s = await openStore(redisUrl);
  await s.redis!.flushDb();
  await s.close();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await closeRedis();
});

describe.runIf(RUN)('the Redis store', () => {
  it('keeps values across connections and reports itself without the password', async () => {
    const a = await store();
    await a.set('k', { v: 1 });
    const b = await store();
    expect(await b.get('k')).toEqual({ v: 1 });
    expect(b.description).toMatch(/^redis redis:\/\/127\.0\.0\.1:\d+\/\d+$/);
    const withPassword = redisUrl.replace('redis://', 'redis://:hunter2secret@');
    // A wrong password is a clear start-up error that does not echo the password.
    const err = await openStore(withPassword).then(
      (s) => (stores.push(s), undefined),
      (e: Error) => e,
    );
    if (err) expect(err.message).not.toContain('hunter2secret');
  });

  it('a lock admits one holder at a time across connections', async () => {
    const [a, b] = [await store(), await store()];
    let inside = 0;
    let most = 0;
    const work = (s: Store) =>
      s.withLock('critical', 2000, async () => {
        inside += 1;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 15));
        inside -= 1;
      });
    await Promise.all([work(a), work(b), work(a), work(b), work(b)]);
    expect(most).toBe(1);
  });
});

describe.runIf(RUN)('shared rate limiters', () => {
  it('two instances on one Kommo account stay within 7 requests in every sliding second', async () => {
    const emu = await startKommo({});
    const token = emu.createLongLivedToken();
    const key = `crm-mcp:limit:kommo:test-${Date.now()}`;
    const mk = async () =>
      connectKommo(emu, {
        connection: { accessToken: token },
        store: await store(),
        limiter: new SharedSlidingWindowLimiter((await store()).redis!, key, 7, 1010, 5000),
      });
    const [a, b] = [await mk(), await mk()];
    emu.resetLog();
    const calls = Array.from({ length: 30 }, (_, i) =>
      (i % 2 ? a : b).call('kommo_request', { method: 'GET', path: '/api/v4/leads', query: { page: (i % 5) + 1, limit: 5 } }),
    );
    for (const r of await Promise.all(calls)) expect(r.isError, text(r)).toBeFalsy();
    expect(emu.stats.rateLimited).toBe(0);
    expect(emu.stats.blocked).toBe(false);
    expect(peakPerSecond(emu)).toBeLessThanOrEqual(7);
    await a.close();
    await b.close();
    await emu.close();
  });

  it('the Bitrix24 bucket is shared: what one instance spends, the other cannot', async () => {
    const key = `bitrix:test-${Date.now()}`;
    const a = new SharedBucketLimiter((await store()).redis!, key, { capacity: 50, drainPerSecond: 2 });
    const b = new SharedBucketLimiter((await store()).redis!, key, { capacity: 50, drainPerSecond: 2 });
    // 24 per 12 s windows: at most 48 requests can meet at a window boundary, under the 50 burst.
    for (let i = 0; i < 24; i++) (await (i % 2 ? a : b).acquire())();
    let admitted = false;
    const ctl = new AbortController();
    const next = b.acquire(ctl.signal).then((release) => ((admitted = true), release));
    await new Promise((r) => setTimeout(r, 300));
    expect(admitted).toBe(false);
    expect(b.waiting).toBe(1);
    ctl.abort();
    await expect(next).rejects.toBeTruthy();
  });
});

describe.runIf(RUN)('OAuth across instances', () => {
  it('N instances meeting an expired token make exactly one refresh and all keep working', async () => {
    const emu = await startKommo({ rateLimit: false, oauth: OAUTH });
    const t = await emu.issueOAuthTokens();
    const prefix = `inst-${Date.now()}`;
    const conn = { name: prefix, accessToken: undefined, oauth: { ...OAUTH, refreshToken: t.refresh_token } };
    const instances = [];
    for (let i = 0; i < 3; i++) instances.push(await connectKommo(emu, { connection: conn, store: await store() }));
    for (const c of instances) expect((await c.call('get_account')).isError).toBeFalsy();
    const before = emu.stats.refreshes;
    emu.expireAccessTokens();
    const results = await Promise.all(
      instances.flatMap((c) => Array.from({ length: 5 }, () => c.call('kommo_request', { method: 'GET', path: '/api/v4/account' }))),
    );
    for (const r of results) expect(r.isError, text(r)).toBeFalsy();
    expect(emu.stats.refreshes - before).toBe(1);
    // A restarted instance reads the rotated pair from Redis: no refresh, no spent token.
    await instances[0]!.close();
    const restarted = await connectKommo(emu, { connection: conn, store: await store() });
    expect((await restarted.call('kommo_request', { method: 'GET', path: '/api/v4/account' })).isError).toBeFalsy();
    expect(emu.stats.refreshes - before).toBe(1);
    for (const c of [restarted, ...instances.slice(1)]) await c.close();
    await emu.close();
  });

  it('the rotated pair is in the store before the new access token is first used', async () => {
    const emu = await startKommo({ rateLimit: false, oauth: OAUTH });
    const t = await emu.issueOAuthTokens();
    const s = await store();
    const writes: Array<{ at: number; access: string }> = [];
    const spy: Store = Object.create(s, {
      set: {
        value: async (key: string, value: unknown, ttl?: number) => {
          await s.set(key, value, ttl);
          if (key.startsWith('tokens:')) writes.push({ at: Date.now(), access: (value as TokenRecord).access_token });
        },
      },
    });
    const c = await connectKommo(emu, {
      connection: { name: `order-${Date.now()}`, accessToken: undefined, oauth: { ...OAUTH, refreshToken: t.refresh_token } },
      store: spy,
    });
    expect((await c.call('get_account')).isError).toBeFalsy();
    const fresh = writes.find((w) => w.access);
    expect(fresh).toBeTruthy();
    const firstUse = emu.requests.find((r) => r.headers.authorization === `Bearer ${fresh!.access}`);
    expect(firstUse).toBeTruthy();
    expect(fresh!.at).toBeLessThanOrEqual(firstUse!.at);
    await c.close();
    await emu.close();
  });

  it('a crash right after a refresh loses nothing: the next process continues the chain', async () => {
    const emu = await startKommo({ rateLimit: false, oauth: OAUTH });
    const t = await emu.issueOAuthTokens();
    const conn = { name: `crash-${Date.now()}`, accessToken: undefined, oauth: { ...OAUTH, refreshToken: t.refresh_token } };
    const a = await connectKommo(emu, { connection: conn, store: await store() });
    // Refresh, then "crash" before any API request used the new token.
    await a.provider.auth.tokens!.refresh(0, true);
    const refreshes = emu.stats.refreshes;
    await a.close();
    const b = await connectKommo(emu, { connection: conn, store: await store() });
    const r = await b.call('kommo_request', { method: 'GET', path: '/api/v4/account' });
    expect(r.isError, text(r)).toBeFalsy();
    expect(emu.stats.refreshes).toBe(refreshes);
    await b.close();
    await emu.close();
  });
});

describe.runIf(RUN)('Redis going away', () => {
  it('gives a clear error while it is down and recovers when it returns', async () => {
    const r = await startPrivateRedis();
    const emu = await startKommo({ rateLimit: false });
    const s = await openStore(r.url);
    const c = await connectKommo(emu, { store: s, limiter: new SharedSlidingWindowLimiter(s.redis!, 'crm-mcp:limit:down', 7, 1010, 5000) });
    const call = () => c.call('kommo_request', { method: 'GET', path: '/api/v4/account' });
    expect((await call()).isError).toBeFalsy();
    await r.stop();
    emu.resetLog();
    const e = errorOf(await call());
    expect(e.code).toBe('network');
    expect(e.retryable).toBe(true);
    expect(e.message).toMatch(/Redis/);
    expect(emu.requests).toHaveLength(0);
    await r.start();
    expect(await recovers(async () => !(await call()).isError)).toBe(true);
    await c.close();
    await s.close();
    await r.stop();
    await emu.close();
  });
});

describe.runIf(RUN)('Redis going away during a token refresh', () => {
  it('a clear, retryable error while it is down; the chain is intact when it returns', async () => {
    const r = await startPrivateRedis();
    const emu = await startKommo({ rateLimit: false, oauth: OAUTH });
    const t = await emu.issueOAuthTokens();
    const s = await openStore(r.url);
    const c = await connectKommo(emu, {
      store: s,
      connection: { name: `down-${Date.now()}`, accessToken: undefined, oauth: { ...OAUTH, refreshToken: t.refresh_token } },
    });
    const call = () => c.call('kommo_request', { method: 'GET', path: '/api/v4/account' });
    expect((await call()).isError).toBeFalsy();
    const refreshes = emu.stats.refreshes;
    await r.stop();
    emu.expireAccessTokens(); // the next call must refresh, which needs the store
    const e = errorOf(await call());
    expect(e).toMatchObject({ code: 'network', retryable: true });
    expect(e.message).toMatch(/Redis/);
    expect(e.message).not.toMatch(/Unexpected/);
    expect(emu.stats.refreshes, 'no refresh token was spent while the store was down').toBe(refreshes);
    await r.start();
    expect(await recovers(async () => !(await call()).isError)).toBe(true);
    expect(emu.stats.refreshes).toBe(refreshes + 1);
    await c.close();
    await s.close();
    await r.stop();
    await emu.close();
  });
});

describe.runIf(RUN)('two server processes on one Redis', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  async function spawnServer(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) clean[k] = v;
    const child = spawn(process.execPath, [CLI, '--http', '--port', '0'], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += String(d)));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d) => {
        out += String(d);
        const m = /(http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err.slice(-800)}`)));
    });
    return { url, child };
  }

  async function connect(url: string): Promise<Client> {
    const c = new Client({ name: 'multi', version: '0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(url)));
    return c;
  }

  it('share the rate limit, refresh once, and keep the token across a restart', async () => {
    const emu = await startKommo({ oauth: OAUTH });
    const t = await emu.issueOAuthTokens();
    const env = {
      KOMMO_BASE_URL: emu.url,
      KOMMO_CLIENT_ID: OAUTH.clientId,
      KOMMO_CLIENT_SECRET: OAUTH.clientSecret,
      KOMMO_REDIRECT_URI: OAUTH.redirectUri,
      KOMMO_REFRESH_TOKEN: t.refresh_token,
      CRM_MCP_STORE: redisUrl,
      CRM_LOG_LEVEL: 'warn',
      CRM_TOOLSETS: 'core,raw',
    };
    const [p1, p2] = [await spawnServer(env), await spawnServer(env)];
    const [c1, c2] = [await connect(p1.url), await connect(p2.url)];
    const raw = (c: Client, page: number) =>
      c.callTool({ name: 'kommo_request', arguments: { method: 'GET', path: '/api/v4/leads', query: { page, limit: 5 } } }) as Promise<CallToolResult>;
    // Warm up (the first call refreshes the seeded chain once), then a burst from both processes.
    expect((await raw(c1, 1)).isError).toBeFalsy();
    emu.resetLog();
    const burst = await Promise.all(Array.from({ length: 24 }, (_, i) => raw(i % 2 ? c1 : c2, (i % 4) + 1)));
    for (const r of burst) expect(r.isError, text(r)).toBeFalsy();
    expect(emu.stats.rateLimited).toBe(0);
    expect(peakPerSecond(emu)).toBeLessThanOrEqual(7);

    const before = emu.stats.refreshes;
    emu.expireAccessTokens();
    const after = await Promise.all(Array.from({ length: 6 }, (_, i) => raw(i % 2 ? c1 : c2, 1)));
    for (const r of after) expect(r.isError, text(r)).toBeFalsy();
    expect(emu.stats.refreshes - before).toBe(1);

    await c1.close();
    p1.child.kill('SIGTERM');
    const p3 = await spawnServer(env);
    const c3 = await connect(p3.url);
    expect((await raw(c3, 2)).isError).toBeFalsy();
    expect((await raw(c2, 3)).isError).toBeFalsy();
    expect(emu.stats.refreshes - before).toBe(1);
    await c2.close();
    await c3.close();
    await emu.close();
  });
});
