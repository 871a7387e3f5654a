/** `crm-mcp doctor` through the built binary against the emulators: a healthy setup, then one fault at a time. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { freePort, runCli, tempHome } from '../helpers/cli.js';

interface Report {
  ok: boolean;
  exit_code: number;
  store: string | null;
  connections: Array<{
    name: string;
    provider: string;
    address: string;
    policy: string;
    rate_limit: string;
    auth: { type: string; days_left: number | null; expires_at: string | null; scopes: string[] | null };
    checks: Array<{ check: string; status: string }>;
  }>;
  problems: Array<{ connection: string; check: string; severity: string; message: string; fix: string }>;
}

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
let other: KommoEmulator;
let home: string;
beforeAll(async () => {
  [kommo, bitrix, other] = await Promise.all([startKommoEmulator({ demo: false }), startBitrixEmulator({ demo: false }), startKommoEmulator({ demo: false })]);
  home = tempHome();
});
afterAll(async () => {
  await Promise.all([kommo?.close(), bitrix?.close(), other?.close()]);
});

const healthy = () => ({
  CRM_MCP_HOME: home,
  KOMMO_BASE_URL: kommo.url,
  KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken({ expiresInSec: 200 * 86_400 }),
  BITRIX_WEBHOOK_BASE: bitrix.webhookUrl,
});

async function doctor(env: Record<string, string>, args = ['--json']) {
  const r = await runCli(['doctor', ...args], env);
  return { ...r, report: args.includes('--json') ? (JSON.parse(r.stdout) as Report) : undefined };
}

describe('crm-mcp doctor', () => {
  it('reports a healthy setup in JSON and exits 0, without printing any secret', async () => {
    kommo.resetLog();
    bitrix.harness.resetLog();
    const env = healthy();
    const { code, stdout, report } = await doctor(env);
    expect(report!.problems).toEqual([]);
    expect(code).toBe(0);
    expect(report!.ok).toBe(true);
    expect(report!.store).toContain(home);
    const [k, b] = report!.connections;
    expect(k).toMatchObject({ name: 'kommo', provider: 'kommo', address: kommo.url, policy: 'read-only', auth: { type: 'long-lived' } });
    expect(k!.rate_limit).toMatch(/7 requests\/s/);
    expect(k!.auth.days_left).toBeGreaterThanOrEqual(199);
    expect(k!.auth.scopes).toContain('crm');
    expect(b).toMatchObject({ provider: 'bitrix24', policy: 'read-only', auth: { type: 'webhook' } });
    expect(b!.rate_limit).toMatch(/standard: burst 50, 2 requests\/s/);
    expect(b!.auth.scopes).toContain('crm');
    expect(b!.address).not.toContain(bitrix.webhookSecret);
    expect(stdout).not.toContain(env.KOMMO_ACCESS_TOKEN);
    expect(stdout).not.toContain(bitrix.webhookSecret);
    // What the CRMs received: Kommo's account endpoint with the token; Bitrix24's profile and app.info.
    const acc = kommo.requests.filter((r) => r.path === '/api/v4/account');
    expect(acc).toHaveLength(1);
    expect(acc[0]!.headers.authorization).toBe(`Bearer ${env.KOMMO_ACCESS_TOKEN}`);
    const methods = bitrix.requests.map((r) => r.path.replace(/^.*\//, '').replace(/\.json$/, ''));
    expect(methods).toEqual(expect.arrayContaining(['profile', 'app.info']));
  });

  it('prints a human-readable table by default', async () => {
    const env = { ...healthy(), CRM_ALLOW_WRITES: 'true' };
    const r = await doctor(env, []);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^kommo \(Kommo\) http:\/\/127\.0\.0\.1:\d+$/m);
    expect(r.stdout).toMatch(/ok\s+policy\s+create-only/);
    expect(r.stdout).toMatch(/All checks passed\./);
    expect(r.stdout).not.toContain(env.KOMMO_ACCESS_TOKEN);
  });

  type Case = {
    name: string;
    env: () => Promise<Record<string, string>>;
    exit: number;
    connection: string;
    check: string;
    message: RegExp;
    fix: RegExp;
    secret?: () => string;
  };
  const cases: Case[] = [
    {
      name: 'unreachable host',
      env: async () => ({ CRM_MCP_HOME: home, KOMMO_BASE_URL: `http://127.0.0.1:${await freePort()}`, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken() }),
      exit: 1,
      connection: 'kommo',
      check: 'account',
      message: /cannot reach http:\/\/127\.0\.0\.1:\d+/,
      fix: /KOMMO_SUBDOMAIN \/ KOMMO_BASE_URL/,
    },
    {
      name: 'revoked or invalid token (401)',
      // A well-formed, unexpired token this account never issued.
      env: async () => ({ CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: other.createLongLivedToken() }),
      exit: 1,
      connection: 'kommo',
      check: 'account',
      message: /401 from Kommo .*revoked or expired/,
      fix: /long-lived token in Kommo → Settings → Integrations.*crm-mcp auth kommo/,
    },
    {
      name: 'expired JWT',
      env: async () => ({ CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken({ expiresInSec: -86_400 }) }),
      exit: 1,
      connection: 'kommo',
      check: 'token',
      message: /the long-lived token expired on \d{4}-\d\d-\d\d/,
      fix: /Create a new long-lived token/,
    },
    {
      name: 'token expiring in 3 days (warning: exit 3)',
      env: async () => ({ CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken({ expiresInSec: 3 * 86_400 }) }),
      exit: 3,
      connection: 'kommo',
      check: 'token',
      message: /expires on \d{4}-\d\d-\d\d \([23] days left\)/,
      fix: /Before \d{4}-\d\d-\d\d, create a new long-lived token/,
    },
    {
      name: 'Kommo token without the crm scope',
      env: async () => ({
        CRM_MCP_HOME: home,
        KOMMO_BASE_URL: kommo.url,
        KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken({ scopes: ['files', 'notifications'] }),
      }),
      exit: 1,
      connection: 'kommo',
      check: 'scopes',
      message: /files, notifications lack crm/,
      fix: /Tick the CRM scope/,
    },
    {
      name: 'Bitrix24 webhook with a wrong secret',
      env: async () => ({ CRM_MCP_HOME: home, BITRIX_WEBHOOK_BASE: bitrix.webhookUrl.replace(bitrix.webhookSecret, 'wrongsecret12345') }),
      exit: 1,
      connection: 'bitrix24',
      check: 'account',
      message: /401 NO_AUTH_FOUND from Bitrix24: the webhook secret is wrong/,
      fix: /Inbound webhook and set BITRIX_WEBHOOK_BASE/,
      secret: () => 'wrongsecret12345',
    },
    {
      name: 'Bitrix24 webhook without the crm scope',
      env: async () => {
        const e = await startBitrixEmulator({ demo: false, scopes: ['user', 'task'] });
        afterAllClose.push(() => e.close());
        return { CRM_MCP_HOME: home, BITRIX_WEBHOOK_BASE: e.webhookUrl };
      },
      exit: 1,
      connection: 'bitrix24',
      check: 'scopes',
      message: /user, task lack crm/,
      fix: /tick CRM \(crm\)/,
    },
    {
      name: 'malformed flag',
      env: async () => ({ ...healthy(), CRM_ALLOW_WRITES: 'maybe' }),
      exit: 1,
      connection: '(config)',
      check: 'config',
      message: /CRM_ALLOW_WRITES: "maybe" is not a boolean/,
      fix: /Set CRM_ALLOW_WRITES to true or false/,
    },
  ];
  const afterAllClose: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of afterAllClose) await c();
  });

  it.each(cases)('$name → problem, fix and exit code', async (c) => {
    const env = await c.env();
    const { code, stdout, report } = await doctor(env);
    expect(report!.exit_code).toBe(c.exit);
    expect(code).toBe(c.exit);
    expect(report!.ok).toBe(false);
    const p = report!.problems.find((x) => x.check === c.check && x.connection === c.connection);
    expect(p, JSON.stringify(report!.problems)).toBeDefined();
    expect(p!.severity).toBe(c.exit === 3 ? 'warn' : 'error');
    expect(p!.message).toMatch(c.message);
    expect(p!.fix).toMatch(c.fix);
    for (const [k, v] of Object.entries(env)) if (/TOKEN|SECRET/.test(k)) expect(stdout).not.toContain(v);
    if (c.secret) expect(stdout).not.toContain(c.secret());
  });

  it('does not call the account with a token it knows has expired', async () => {
    kommo.resetLog();
    await doctor({ CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken({ expiresInSec: -60 }) });
    expect(kommo.requests.filter((r) => r.path.startsWith('/api/v4/'))).toHaveLength(0);
  });

  it('says which problem and fix in the table too', async () => {
    const r = await doctor({ CRM_MCP_HOME: home, CRM_SAFE_MODE: 'perhaps', KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken() }, []);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}\(config\): CRM_SAFE_MODE: "perhaps" is not a boolean[^\n]*\n\s+fix: Set CRM_SAFE_MODE to true or false/);
  });
});

describe('crm-mcp doctor --sandbox', () => {
  it('what the no-CRM message suggests: the demo accounts, checked and healthy (exit 0)', { timeout: 60_000 }, async () => {
    const bare = await doctor({ CRM_MCP_HOME: tempHome() });
    expect(bare.code).toBe(1);
    expect(bare.report!.problems.map((p) => p.message).join('\n')).toMatch(/--sandbox/);

    const { code, report, stderr } = await doctor({ CRM_MCP_HOME: tempHome(), CRM_ALLOW_WRITES: 'true' }, ['--sandbox', '--json']);
    expect(report!.problems, stderr).toEqual([]);
    expect(code).toBe(0);
    expect(report!.ok).toBe(true);
    // One connection per emulator, each on loopback, in the mode the environment asked for.
    expect(report!.connections.map((c) => [c.name, c.provider])).toEqual([
      ['kommo', 'kommo'],
      ['bitrix24', 'bitrix24'],
    ]);
    for (const c of report!.connections) {
      expect(c.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
      expect(c.policy).toBe('create-only');
      expect(c.checks.every((x) => x.status === 'ok')).toBe(true);
    }
    // Its tokens stay in memory, as under `crm-mcp --sandbox`.
    expect(report!.store).toMatch(/memory/);
  });

  it('prints the table too, and refuses --sandbox with --config', { timeout: 60_000 }, async () => {
    const table = await doctor({ CRM_MCP_HOME: tempHome() }, ['--sandbox']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/All checks passed\./);
    const both = await doctor({ CRM_MCP_HOME: tempHome() }, ['--sandbox', '--config', 'crm.json']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--sandbox and --config/);
  });
});
