/**
 * Issue 9 / finding 10: two processes on the default file store. `crm-mcp doctor` (or a second stdio instance
 * sharing the data directory) rotates the Kommo refresh token; the running server must see the rotated pair
 * instead of sending the spent one, and two instances meeting an expired token refresh once between them.
 * Real processes (the built binary, `npm run build` first) against the Kommo emulator with OAuth, whose
 * refresh tokens die as soon as the next pair is issued (strict reading of §2.1), so a spent token cannot pass.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore } from '../../src/store/store.js';
import { CLI, baseEnv, runCli, tempHome } from '../helpers/cli.js';

const OAUTH = { clientId: 'mp-client', clientSecret: 'mp-client-secret-123456', redirectUri: 'https://example.org/oauth' };

let emu: KommoEmulator;
beforeAll(async () => {
  emu = await startKommoEmulator({ rateLimit: false, oauth: OAUTH });
});
afterAll(async () => {
  await emu?.close();
});

function envFor(home: string, refreshToken: string): Record<string, string> {
  return {
    CRM_MCP_HOME: home,
    KOMMO_BASE_URL: emu.url,
    KOMMO_CLIENT_ID: OAUTH.clientId,
    KOMMO_CLIENT_SECRET: OAUTH.clientSecret,
    KOMMO_REDIRECT_URI: OAUTH.redirectUri,
    KOMMO_REFRESH_TOKEN: refreshToken,
    CRM_LOG_LEVEL: 'warn',
  };
}

async function stdioServer(
  env: Record<string, string>,
): Promise<{ call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>; stderr(): string; close(): Promise<void> }> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI], env: { ...baseEnv(), ...env }, stderr: 'pipe' });
  let err = '';
  transport.stderr?.on('data', (d) => (err += String(d)));
  const client = new Client({ name: 'multi-process', version: '0' });
  await client.connect(transport);
  return {
    call: (name, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    stderr: () => err,
    close: () => client.close(),
  };
}

/** The Kommo token record as it is on disk (read by this test process, not by either instance). */
function storedTokens(home: string): { access_token: string; refresh_token: string; generation: number } {
  const entries = (JSON.parse(readFileSync(join(home, 'store.json'), 'utf8')) as { entries: Array<[string, string]> }).entries;
  const raw = entries.find(([k]) => k.includes(`tokens:kommo:${emu.url}:${OAUTH.clientId}`))![1];
  return (JSON.parse(raw) as { value: { access_token: string; refresh_token: string; generation: number } }).value;
}

const lastBearer = () => emu.requests.filter((q) => q.path.startsWith('/api/v4/')).at(-1)?.headers.authorization;
const resultText = (r: CallToolResult) => (r.content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');

describe('two processes on one file store (Kommo OAuth)', () => {
  it('doctor rotates the refresh token; the running stdio server adopts the new pair and sends no refresh with the spent token', async () => {
    const home = tempHome();
    const t0 = await emu.issueOAuthTokens();
    const env = envFor(home, t0.refresh_token);
    const b = await stdioServer(env);
    try {
      const start = { ...emu.stats };
      const first = await b.call('list_leads', { limit: 1 });
      expect(first.isError, resultText(first)).toBeFalsy();
      expect(emu.stats.refreshes - start.refreshes).toBe(1); // the configured refresh token starts the chain

      emu.expireAccessTokens();
      // Process A: doctor meets the 401, refreshes (the refresh token B last saw is now dead) and writes the pair.
      const a = await runCli(['doctor', '--json'], env);
      const report = JSON.parse(a.stdout) as { connections: Array<{ checks: Array<{ check: string; status: string }> }> };
      expect(report.connections[0]!.checks.find((c) => c.check === 'account')?.status, a.stdout).toBe('ok');
      expect(emu.stats.refreshes - start.refreshes).toBe(2);
      const rotated = storedTokens(home);

      // Process B: its access token is dead too; it must pick up A's pair from the file, not refresh again.
      const again = await b.call('list_leads', { limit: 1 });
      expect(again.isError, `${resultText(again)}\n${b.stderr()}`).toBeFalsy();
      expect(emu.stats.refreshes - start.refreshes).toBe(2);
      expect(emu.stats.tokenRequests - start.tokenRequests).toBe(2);
      expect(lastBearer()).toBe(`Bearer ${rotated.access_token}`);
      expect(storedTokens(home).generation).toBe(rotated.generation);
    } finally {
      await b.close();
    }
  });

  it('two stdio servers meeting an expired token refresh exactly once between them, and both keep working', async () => {
    const home = tempHome();
    const t0 = await emu.issueOAuthTokens();
    const env = envFor(home, t0.refresh_token);
    const b1 = await stdioServer(env);
    const b2 = await stdioServer(env);
    try {
      const start = { ...emu.stats };
      expect((await b1.call('list_leads', { limit: 1 })).isError).toBeFalsy();
      expect((await b2.call('list_leads', { limit: 1 })).isError).toBeFalsy();
      expect(emu.stats.refreshes - start.refreshes).toBe(1);
      for (let round = 0; round < 3; round++) {
        emu.expireAccessTokens();
        const before = emu.stats.tokenRequests;
        const [r1, r2] = await Promise.all([b1.call('list_leads', { limit: 1 }), b2.call('list_leads', { limit: 1 })]);
        expect(r1.isError, `${resultText(r1)}\n${b1.stderr()}`).toBeFalsy();
        expect(r2.isError, `${resultText(r2)}\n${b2.stderr()}`).toBeFalsy();
        expect(emu.stats.tokenRequests - before, `round ${round}`).toBe(1);
      }
    } finally {
      await b1.close();
      await b2.close();
    }
  });
});

/** Runs `body` (an async function body using `store`) in a separate Node process against the built store. */
function inChild(file: string, body: string): Promise<{ code: number | null; stderr: string }> {
  const storeModule = pathToFileURL(join(CLI, '..', 'store', 'store.js')).href;
  const src = `import { openStore } from ${JSON.stringify(storeModule)};\nconst store = await openStore(${JSON.stringify(file)});\n${body}\nawait store.close();\n`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('the file store across processes', () => {
  it('withLock excludes another process, and writes from two processes never undo each other', async () => {
    const file = join(tempHome(), 'store.json');
    const N = 25;
    const body = (tag: string) => `
      for (let i = 0; i < ${N}; i++) {
        await store.withLock('counter', 10000, async () => {
          const n = (await store.get('n')) ?? 0;
          await new Promise((r) => setTimeout(r, 1));
          await store.set('n', n + 1);
        });
        await store.set('${tag}-' + i, i);
      }`;
    const [a, b] = await Promise.all([inChild(file, body('a')), inChild(file, body('b'))]);
    expect(a, a.stderr).toMatchObject({ code: 0 });
    expect(b, b.stderr).toMatchObject({ code: 0 });
    const store = await openStore(file);
    try {
      expect(await store.get('n')).toBe(2 * N);
      for (let i = 0; i < N; i++) {
        expect(await store.get(`a-${i}`)).toBe(i);
        expect(await store.get(`b-${i}`)).toBe(i);
      }
    } finally {
      await store.close();
    }
    expect(readdirSync(join(file, '..')).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([]);
  });

  it('a value written by another process is read by a process that opened the store before', async () => {
    const file = join(tempHome(), 'store.json');
    const store = await openStore(file);
    try {
      await store.set('k', 'old');
      // The child opens the store, says so, waits for a line on stdin, then reads.
      const storeModule = pathToFileURL(join(CLI, '..', 'store', 'store.js')).href;
      const src = `import { openStore } from ${JSON.stringify(storeModule)};
        const store = await openStore(${JSON.stringify(file)});
        console.log('before:' + (await store.get('k')));
        process.stdin.once('data', async () => { console.log('after:' + (await store.get('k'))); await store.close(); process.exit(0); });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => (err += String(d)));
      const done = new Promise<void>((r) => child.on('close', () => r()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += String(d);
          if (out.includes('before:')) resolve();
        });
        child.on('close', () => reject(new Error(`child exited early: ${out} ${err}`)));
      });
      await store.set('k', 'new');
      child.stdin.write('go\n');
      await done;
      expect(out, err).toContain('before:old');
      expect(out, err).toContain('after:new');
    } finally {
      await store.close();
    }
  });

  it('a lock left by a process that died is taken over; one held by a live process past its ttl is taken over too', async () => {
    const file = join(tempHome(), 'store.json');
    const store = await openStore(file);
    try {
      // Find the lock file's name by holding the lock once.
      let lockName = '';
      await store.withLock('refresh:x', 60_000, async () => {
        lockName = readdirSync(join(file, '..')).find((f) => f.endsWith('.lock'))!;
      });
      expect(lockName).toBeTruthy();
      const lockPath = join(file, '..', lockName);

      const dead = spawn(process.execPath, ['-e', '0']);
      const deadPid = await new Promise<number>((r) => dead.on('exit', () => r(dead.pid!)));
      writeFileSync(lockPath, JSON.stringify({ pid: deadPid, host: hostname(), token: 'crashed', at: Date.now() }));
      // ttl 60 s: only the dead-pid rule lets this through before the test's 30 s timeout.
      expect(await store.withLock('refresh:x', 60_000, async () => 'ran')).toBe('ran');

      writeFileSync(lockPath, JSON.stringify({ pid: process.ppid, host: hostname(), token: 'slow', at: Date.now() }));
      expect(await store.withLock('refresh:x', 300, async () => 'ran after ttl')).toBe('ran after ttl');
      expect(readdirSync(join(file, '..')).filter((f) => f.endsWith('.lock') || f.endsWith('.stale'))).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
