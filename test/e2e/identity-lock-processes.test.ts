/**
 * Issue 16, "no duplicates when calls race", across processes: two server processes (the built binary, `npm run
 * build` first) on one Redis and on one file store create the same person typed two ways at once, and a lock
 * holder killed mid-create (a child process holding the person's lock, then SIGKILL) delays the next caller
 * only until its lock expires or is taken over. Counted in the emulator's own state.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CLI, baseEnv, tempHome } from '../helpers/cli.js';
import { redisAvailable, testRedisUrl } from '../helpers/redis.js';

const RUN_REDIS = redisAvailable();
const DIST = new URL('../../dist/', import.meta.url);

let redisUrl = '';
let closeRedis: () => Promise<void> = async () => undefined;
beforeAll(async () => {
  if (!RUN_REDIS) return;
  const r = await testRedisUrl(6);
  redisUrl = r.url;
  closeRedis = r.close;
});
afterAll(async () => {
  await closeRedis();
});

let emu: KommoEmulator | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c().catch(() => undefined);
  await emu?.close();
  emu = undefined;
});

interface Server {
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
}

async function server(e: KommoEmulator, home: string, store: string | undefined): Promise<Server> {
  const env = {
    ...baseEnv(),
    CRM_MCP_HOME: home,
    KOMMO_BASE_URL: e.url,
    KOMMO_ACCESS_TOKEN: e.createLongLivedToken(),
    CRM_ALLOW_WRITES: 'true',
    CRM_LOG_LEVEL: 'warn',
    ...(store ? { CRM_MCP_STORE: store } : {}),
  };
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI], env, stderr: 'pipe' });
  const client = new Client({ name: 'identity-lock', version: '0' });
  await client.connect(transport);
  closers.push(() => client.close());
  return { call: (name, args = {}) => client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 }) as Promise<CallToolResult> };
}

function held(e: KommoEmulator, last: string): { contacts: number; leads: number } {
  const contacts = [...e.state.contacts.values()].filter((c) => c.last_name === last).length;
  return { contacts, leads: [...e.state.leads.values()].filter((l) => l.name === `Deal ${last}`).length };
}

const PERSON = (last: string, phone: string) => ({ name: `Deal ${last}`, contact: { first_name: 'Pavel', last_name: last, phone } });

/**
 * A process that takes the person's lock the way a server does (same store, same account scope, same key),
 * says so, and then hangs (a timer keeps it alive) until it is killed.
 */
function holder(store: string, home: string, scope: string, key: string, ttlMs: number) {
  const file = join(tempHome(), 'hold.mjs');
  writeFileSync(
    file,
    `const { openStore } = await import(${JSON.stringify(new URL('store/store.js', DIST).href)});
const { IdentityLocks } = await import(${JSON.stringify(new URL('store/identity-lock.js', DIST).href)});
const store = await openStore(process.argv[2]);
const locks = new IdentityLocks(store, { waitMs: 5000, ttlMs: ${ttlMs} });
await locks.run(process.argv[3], [process.argv[4]], () => { process.stdout.write('locked\\n'); return new Promise(() => setInterval(() => {}, 1000)); });
`,
  );
  const child = spawn(process.execPath, [file, store, scope, key], { env: { ...baseEnv(), CRM_MCP_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] });
  const locked = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d) => String(d).includes('locked') && resolve(Date.now()));
    child.once('exit', (code) => reject(new Error(`lock holder exited ${code}`)));
  });
  return { child, locked };
}

const STORES = [
  ['one Redis', () => redisUrl, RUN_REDIS],
  ['one file store', () => undefined, true],
] as const;

describe.each(STORES)('two server processes on %s', (what, storeOf, run) => {
  it.runIf(run)(
    'race the same person typed "+7 904 222-33-44" and "8 904 222-33-44": one contact, one lead',
    async () => {
      emu = await startKommoEmulator({ rateLimit: false });
      const home = tempHome();
      const [a, b] = await Promise.all([server(emu, home, storeOf()), server(emu, home, storeOf())]);
      const last = `Racer${what.length}${Date.now() % 100000}`;
      // Slow lookups (processed, answered late) keep both processes' lookups in flight together, as on a busy
      // account; a shared rate limiter (Redis) must not be what spaces them out.
      emu.injectFault({ kind: 'slow', ms: 300 }, { times: 100, match: { method: 'GET', path: '/api/v4/contacts' } });
      const rs = await Promise.all([
        a.call('create_lead', PERSON(last, '+7 904 222-33-44')),
        b.call('create_lead', PERSON(last, '8 904 222-33-44')),
        a.call('create_lead', PERSON(last, '8 904 222-33-44')),
        b.call('create_lead', PERSON(last, '+7 904 222-33-44')),
      ]);
      for (const r of rs) expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      expect(held(emu, last)).toEqual({ contacts: 1, leads: 1 });
      expect(rs.filter((r) => (r.structuredContent as { created: boolean }).created)).toHaveLength(1);
    },
    60_000,
  );

  it.runIf(run)(
    'a holder killed while holding the lock: the next caller waits, then proceeds and creates one',
    async () => {
      emu = await startKommoEmulator({ rateLimit: false });
      const home = tempHome();
      const spec = storeOf() ?? join(home, 'store.json');
      const ttlMs = 4000;
      const a = await server(emu, home, storeOf());
      await a.call('get_pipelines'); // warm: the metadata a create reads first is cached
      const h = holder(spec, home, `kommo:${emu.url}`, 'phone:+79042223344', ttlMs);
      closers.push(async () => void h.child.kill('SIGKILL'));
      const lockedAt = await h.locked;
      const last = `Orphan${Date.now() % 100000}`;
      emu.resetLog();
      const pending = a.call('create_lead', PERSON(last, '8 904 222-33-44'));
      // While the holder lives the server waits: nothing reaches the CRM, not even the lookup.
      await new Promise((r) => setTimeout(r, 700));
      expect(emu.requests.filter((r) => r.method !== 'GET' || r.path === '/api/v4/contacts')).toEqual([]);
      h.child.kill('SIGKILL');
      const r = await pending;
      expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
      expect(r.structuredContent).toMatchObject({ created: true, duplicate_check: 'done' });
      expect(held(emu, last)).toEqual({ contacts: 1, leads: 1 });
      // Redis: the dead holder's key lives out its TTL; the file lock is taken over once its pid is gone.
      if (storeOf()) expect(Date.now() - lockedAt).toBeGreaterThanOrEqual(ttlMs - 100);
    },
    60_000,
  );
});
