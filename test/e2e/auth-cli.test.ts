/**
 * `crm-mcp auth` end to end: the built binary against the emulators, the test playing the browser (GET the
 * consent page, follow its redirect to the CLI's loopback callback), then the server started on the saved store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { kommoTokenKey } from '../../src/crms/kommo/auth.js';
import { bitrixTokenKey } from '../../src/crms/bitrix24/auth.js';
import type { TokenRecord } from '../../src/crms/oauth.js';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore } from '../../src/store/store.js';
import { baseEnv, CLI, freePort, runCli, start, tempHome } from '../helpers/cli.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c().catch(() => undefined);
});

const KOMMO_APP = { clientId: 'integration-7f3a', clientSecret: 'kommo-secret-5b1e9c' };

async function kommoSetup(o: { secret?: string; extraEnv?: Record<string, string> } = {}) {
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const emu = await startKommoEmulator({ oauth: { ...KOMMO_APP, redirectUri } });
  closers.push(() => emu.close());
  const home = tempHome();
  const storeFile = join(home, 'store.json');
  const env = {
    CRM_MCP_HOME: home,
    CRM_MCP_STORE: storeFile,
    KOMMO_CLIENT_ID: KOMMO_APP.clientId,
    KOMMO_CLIENT_SECRET: o.secret ?? KOMMO_APP.clientSecret,
    KOMMO_REDIRECT_URI: redirectUri,
    KOMMO_OAUTH_URL: `${emu.url}/oauth`,
    ...o.extraEnv,
  };
  return { emu, env, storeFile, redirectUri };
}

/** Starts `crm-mcp auth …` and returns the consent URL it printed. */
async function beginAuth(args: string[], env: Record<string, string>) {
  const run = start(['auth', ...args], env);
  closers.push(async () => void run.child.kill());
  const m = await run.waitFor(/^\s+(http:\/\/\S+)$/m);
  return { run, consent: new URL(m[1]!) };
}

/** The browser: GET the consent page, return where it redirects. */
async function consentRedirect(url: URL): Promise<URL> {
  const res = await fetch(url, { redirect: 'manual' });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!);
}

async function storedRecord(file: string, key: string): Promise<TokenRecord | undefined> {
  const store = await openStore(file);
  try {
    return await store.get<TokenRecord>(key);
  } finally {
    await store.close();
  }
}

function tokenRequests(emu: KommoEmulator | BitrixEmulator) {
  return emu.requests.filter((r) => r.path === '/oauth2/access_token' || r.path.startsWith('/oauth/token'));
}

async function stdioClient(env: Record<string, string>) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI], env: { ...baseEnv(), ...env }, stderr: 'pipe' });
  const client = new Client({ name: 'auth-test', version: '0' });
  await client.connect(transport);
  closers.push(() => client.close());
  return client;
}

describe('crm-mcp auth kommo', () => {
  it('signs in without a configured host, saves what the provider reads, and the next start just works', async () => {
    // A stale one-time code left in the environment must not clobber the fresh sign-in at the next start.
    const { emu, env, storeFile } = await kommoSetup({ extraEnv: { KOMMO_AUTH_CODE: 'def50200stale-code-from-last-month' } });
    const { run, consent } = await beginAuth(['kommo'], env);

    expect(consent.origin + consent.pathname).toBe(`${emu.url}/oauth`);
    expect(consent.searchParams.get('client_id')).toBe(KOMMO_APP.clientId);
    expect(consent.searchParams.get('mode')).toBe('post_message');
    const state = consent.searchParams.get('state')!;
    expect(state.length).toBeGreaterThanOrEqual(20);

    const back = await consentRedirect(consent);
    expect(back.searchParams.get('state')).toBe(state);
    expect(back.searchParams.get('referer')).toBe(new URL(emu.url).host);
    const code = back.searchParams.get('code')!;
    const page = await fetch(back);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/Signed in/);

    const r = await run.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Signed in to Kommo account 127\.0\.0\.1:\d+/);
    expect(r.stdout).toContain(`KOMMO_BASE_URL=${emu.url}`);
    expect(r.stdout).not.toContain(KOMMO_APP.clientSecret);

    // What the emulator received: one code exchange with the integration's credentials and redirect URI.
    const exchanges = tokenRequests(emu);
    expect(exchanges).toHaveLength(1);
    expect(exchanges[0]!.status).toBe(200);
    expect(JSON.parse(exchanges[0]!.body)).toEqual({
      client_id: KOMMO_APP.clientId,
      client_secret: KOMMO_APP.clientSecret,
      grant_type: 'authorization_code',
      code,
      redirect_uri: env.KOMMO_REDIRECT_URI,
    });

    const rec = await storedRecord(storeFile, kommoTokenKey(emu.url, KOMMO_APP.clientId));
    expect(rec).toMatchObject({ generation: 1, access_token: expect.stringMatching(/^eyJ/), refresh_token: expect.stringMatching(/^def50200/) });
    expect(rec!.expires_at).toBeGreaterThan(Date.now());

    // `config claude` fills in the account host the sign-in learnt.
    const cfg = await runCli(['config', 'claude'], env);
    expect(cfg.code).toBe(0);
    expect((JSON.parse(cfg.stdout) as { mcpServers: { crm: { env: Record<string, string> } } }).mcpServers.crm.env.KOMMO_BASE_URL).toBe(emu.url);

    // The server, started on the saved store with no address configured, uses the host the sign-in
    // learnt and answers a tool call with the saved access token.
    emu.resetLog();
    const client = await stdioClient(env);
    const res = (await client.callTool({ name: 'get_account', arguments: {} })) as CallToolResult;
    expect(res.isError).toBeFalsy();
    expect((res.structuredContent as { auth: { type: string } }).auth.type).toBe('oauth');
    const calls = emu.requests.filter((q) => q.path === '/api/v4/account');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0]!.headers.authorization).toBe(`Bearer ${rec!.access_token}`);
    expect(tokenRequests(emu)).toHaveLength(0); // the stale KOMMO_AUTH_CODE was not exchanged

    // doctor sees the same OAuth setup as healthy.
    const doc = await runCli(['doctor', '--json'], { ...env, KOMMO_BASE_URL: emu.url });
    const report = JSON.parse(doc.stdout) as { ok: boolean; connections: Array<{ auth: { type: string; scopes: string[] } }> };
    expect(report.connections[0]!.auth.type).toBe('oauth');
    expect(report.connections[0]!.auth.scopes).toContain('crm');
    expect(doc.stdout).not.toContain(rec!.access_token);
    expect(doc.stdout).not.toContain(rec!.refresh_token);
    expect(doc.code).toBe(0);
  });

  type Case = {
    name: string;
    secret?: string;
    /** Plays the browser; returns the callback URL to open. */
    browse(consent: URL, emu: KommoEmulator): Promise<URL>;
    message: RegExp;
    exchanged: number;
  };
  const cases: Case[] = [
    {
      name: 'access denied',
      browse: async (consent) => {
        consent.searchParams.set('decision', 'deny');
        const back = await consentRedirect(consent);
        expect(back.searchParams.get('error')).toBe('access_denied');
        return back;
      },
      message: /declined.*error=access_denied.*choose "Allow"/,
      exchanged: 0,
    },
    {
      name: 'a wrong state',
      browse: async (consent) => {
        const back = await consentRedirect(consent);
        back.searchParams.set('state', 'forged-state-from-another-tab');
        return back;
      },
      message: /different state than this run sent/,
      exchanged: 0,
    },
    {
      name: 'an expired code',
      browse: async (consent, emu) => {
        const back = await consentRedirect(consent);
        emu.expireAuthorizationCodes();
        return back;
      },
      message: /code expired.*20 minutes/,
      exchanged: 1,
    },
    {
      name: 'an already used code',
      browse: async (consent, emu) => {
        const back = await consentRedirect(consent);
        // Someone (an earlier run, a leaked URL) exchanged the code first.
        const first = await fetch(`${emu.url}/oauth2/access_token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            ...{ client_id: KOMMO_APP.clientId, client_secret: KOMMO_APP.clientSecret },
            grant_type: 'authorization_code',
            code: back.searchParams.get('code'),
            redirect_uri: back.origin + back.pathname,
          }),
        });
        expect(first.status).toBe(200);
        return back;
      },
      message: /already used.*single-use/,
      exchanged: 2,
    },
    {
      name: 'a wrong client secret',
      secret: 'not-the-secret-at-all',
      browse: (consent) => consentRedirect(consent),
      message: /rejected the integration's credentials.*KOMMO_CLIENT_SECRET/,
      exchanged: 1,
    },
  ];

  it.each(cases)('$name: exits non-zero with a clear message and saves nothing', async (c) => {
    const { emu, env, storeFile } = await kommoSetup({ secret: c.secret });
    const { run, consent } = await beginAuth(['kommo'], env);
    const back = await c.browse(consent, emu);
    const page = await fetch(back);
    expect(page.status).toBe(400);
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(c.message);
    expect(r.stderr).toMatch(/Nothing was saved/);
    expect(r.stderr + r.stdout).not.toContain(KOMMO_APP.clientSecret);
    expect(tokenRequests(emu)).toHaveLength(c.exchanged);
    expect(await storedRecord(storeFile, kommoTokenKey(emu.url, KOMMO_APP.clientId))).toBeUndefined();
  });

  it('refuses a redirect URI it cannot listen on', async () => {
    const r = await runCli(['auth', 'kommo'], {
      KOMMO_CLIENT_ID: 'x',
      KOMMO_CLIENT_SECRET: 'y-secret',
      KOMMO_REDIRECT_URI: 'https://example.com/oauth/callback',
      CRM_MCP_HOME: tempHome(),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/KOMMO_REDIRECT_URI: "https:\/\/example\.com\/oauth\/callback" must be http:\/\/127\.0\.0\.1:PORT/);
    expect(r.stdout).toBe('');
  });

  it('names the missing variables', async () => {
    const r = await runCli(['auth', 'kommo'], { KOMMO_CLIENT_ID: 'x', CRM_MCP_HOME: tempHome() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI: required/);
  });
});

describe('crm-mcp auth bitrix24', () => {
  const APP = { clientId: 'local.66a1b2c3d4e5f6.12345678', clientSecret: 'bx-app-secret-9f8e7d' };

  async function bitrixSetup(secret = APP.clientSecret) {
    const port = await freePort();
    const redirectUri = `http://localhost:${port}/bitrix/callback`;
    const emu = await startBitrixEmulator({ oauth: { ...APP, redirectUri } });
    closers.push(() => emu.close());
    const home = tempHome();
    const storeFile = join(home, 'store.json');
    const env = {
      CRM_MCP_HOME: home,
      CRM_MCP_STORE: storeFile,
      BITRIX_CLIENT_ID: APP.clientId,
      BITRIX_CLIENT_SECRET: secret,
      BITRIX_PORTAL: emu.url,
      BITRIX_OAUTH_SERVER: emu.url,
      BITRIX_REDIRECT_URI: redirectUri,
    };
    return { emu, env, storeFile };
  }

  it('signs in, saves the tokens with the client endpoint, and the server uses them', async () => {
    const { emu, env, storeFile } = await bitrixSetup();
    const { run, consent } = await beginAuth(['bitrix24'], env);
    expect(consent.origin + consent.pathname).toBe(`${emu.url}/oauth/authorize/`);
    expect(consent.searchParams.get('client_id')).toBe(APP.clientId);
    const back = await consentRedirect(consent);
    expect(back.searchParams.get('domain')).toBe(new URL(emu.url).host);
    expect((await fetch(back)).status).toBe(200);
    const r = await run.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Signed in to Bitrix24 portal/);

    const ex = tokenRequests(emu);
    expect(ex).toHaveLength(1);
    const form = new URLSearchParams(ex[0]!.body);
    expect(ex[0]!.method).toBe('POST');
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'authorization_code',
      client_id: APP.clientId,
      client_secret: APP.clientSecret,
      code: back.searchParams.get('code'),
    });

    const rec = await storedRecord(storeFile, bitrixTokenKey(emu.url, APP.clientId));
    expect(rec).toMatchObject({ generation: 1, extra: { client_endpoint: `${emu.url}/rest/`, scope: expect.stringContaining('crm') } });

    const client = await stdioClient(env);
    const res = (await client.callTool({ name: 'get_pipelines', arguments: {} })) as CallToolResult;
    expect(res.isError).toBeFalsy();
    const rest = emu.requests.filter((q) => q.path.startsWith('/rest/'));
    expect(rest.length).toBeGreaterThan(0);
    expect(new URL(rest[0]!.url, emu.url).searchParams.get('auth')).toBe(rec!.access_token);
  });

  it.each([
    { name: 'access denied', secret: undefined, deny: true, expire: false, message: /declined.*access_denied/, exchanged: 0 },
    { name: 'an expired code', secret: undefined, deny: false, expire: true, message: /expired or was already used.*30 seconds/, exchanged: 1 },
    {
      name: 'a wrong client secret',
      secret: 'wrong-bx-secret',
      deny: false,
      expire: false,
      message: /rejected the app's credentials.*BITRIX_CLIENT_SECRET/,
      exchanged: 1,
    },
  ])('$name: exits non-zero with a clear message and saves nothing', async (c) => {
    const { emu, env, storeFile } = await bitrixSetup(c.secret);
    const { run, consent } = await beginAuth(['bitrix24'], env);
    if (c.deny) consent.searchParams.set('decision', 'deny');
    const back = await consentRedirect(consent);
    if (c.expire) emu.expireAuthorizationCodes();
    expect((await fetch(back)).status).toBe(400);
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(c.message);
    expect(tokenRequests(emu)).toHaveLength(c.exchanged);
    expect(await storedRecord(storeFile, bitrixTokenKey(emu.url, APP.clientId))).toBeUndefined();
  });
});
