/**
 * `crm-mcp doctor` on the event receivers. Without any: one `events` line each, no problem, and `--deep` asks
 * the CRMs nothing about webhooks. With them: what is configured, and a warning with its fix where the pieces
 * do not fit (offline events bound but CRM_EVENTS_POLL_S=0; a receiver whose events no tool reads; a short
 * KOMMO_WEBHOOK_SECRET). With `--deep`, against the emulators after a real `crm-mcp events bind`: a bound
 * webhook, one Kommo disabled, a token that is not an administrator's, Bitrix24 bindings that went missing;
 * and every time, what the emulators received during doctor was reads only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnose } from '../../src/commands/doctor.js';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { runCli, start, tempHome } from '../helpers/cli.js';

interface Check {
  check: string;
  status: string;
  detail: string;
  fix?: string;
}
interface Report {
  exit_code: number;
  connections: Array<{ name: string; checks: Check[] }>;
  problems: Array<{ connection: string; check: string; severity: string; message: string; fix: string }>;
}

const PUBLIC = 'https://crm-mcp.example.test';
const ADMIN = { CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_ADMIN: 'true' };
const EVENTS_TOOLS = { CRM_TOOLSETS: 'core,activity,events' };
const OAUTH = { clientId: 'local.doctor-events', clientSecret: 'doctor-events-secret-123456' };
/** Bitrix24 methods that read, written out here. */
const BITRIX_READ =
  /^(batch|profile|app\.info|scope|user\.get|event\.get|crm\.settings\.mode\.get|crm\.duplicate\.findbycomm|crm\.[a-z]+(\.[a-z]+)?\.(list|get|fields))$/;

const run = async (env: Record<string, string>, deep = false) => (await diagnose(env, undefined, { deep })) as unknown as Report;
/** The problems doctor found with the receivers (the deep probe's own findings are doctor-deep.test.ts's). */
const eventProblems = (r: Report) => r.problems.filter((p) => p.check.startsWith('events'));
const checksOf = (r: Report, name: string, prefix = 'events') => r.connections.find((c) => c.name === name)!.checks.filter((c) => c.check.startsWith(prefix));
const bitrixMethods = (b: BitrixEmulator) =>
  b.requests.filter((r) => r.path.startsWith('/rest/')).map((r) => r.path.replace(/^.*\//, '').replace(/\.json$/, ''));

describe('doctor without receivers', () => {
  let kommo: KommoEmulator;
  let bitrix: BitrixEmulator;
  beforeAll(async () => {
    [kommo, bitrix] = await Promise.all([startKommoEmulator({ demo: false }), startBitrixEmulator({ demo: false })]);
  });
  afterAll(async () => {
    await Promise.all([kommo?.close(), bitrix?.close()]);
  });

  it('says there is none (optional), finds no problem, and --deep asks nothing about webhooks', async () => {
    const env = {
      CRM_MCP_HOME: tempHome(),
      KOMMO_BASE_URL: kommo.url,
      KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken(),
      BITRIX_WEBHOOK_BASE: bitrix.webhookUrl,
    };
    const r = await run(env, true);
    expect(r.problems).toEqual([]);
    expect(r.exit_code).toBe(0);
    expect(checksOf(r, 'kommo')).toEqual([
      expect.objectContaining({ check: 'events', status: 'ok', detail: expect.stringMatching(/^no webhook receiver \(optional\)/) }),
    ]);
    expect(checksOf(r, 'bitrix24')).toEqual([
      expect.objectContaining({ check: 'events', status: 'ok', detail: expect.stringMatching(/^no receiver \(optional\)/) }),
    ]);
    expect(kommo.requests.filter((q) => q.path === '/api/v4/webhooks')).toEqual([]);
    expect(bitrixMethods(bitrix).filter((m) => m.startsWith('event.'))).toEqual([]);
  }, 60_000);

  it('a KOMMO_WEBHOOK_SECRET shorter than 32 characters is a configuration error with its fix', async () => {
    const r = await run({
      CRM_MCP_HOME: tempHome(),
      KOMMO_BASE_URL: kommo.url,
      KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken(),
      KOMMO_WEBHOOK_SECRET: 'short-secret',
    });
    expect(r.exit_code).toBe(1);
    expect(r.problems).toContainEqual(
      expect.objectContaining({ severity: 'error', message: expect.stringMatching(/KOMMO_WEBHOOK_SECRET: at least 32 random characters/) }),
    );
    expect(JSON.stringify(r)).not.toContain('short-secret');
  });
});

describe('doctor with a Kommo receiver', () => {
  let kommo: KommoEmulator;
  let home: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    // Several doctor runs in a row, each pacing on its own: the emulator's limit would throttle and then block them.
    kommo = await startKommoEmulator({ demo: false, rateLimit: false });
    home = tempHome();
    env = { CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken(), CRM_MCP_AUDIT_LOG: 'off' };
  });
  afterAll(async () => {
    await kommo?.close();
  });

  it('KOMMO_WEBHOOK_SECRET set: configured; a warning while no tool reads the events', async () => {
    const secret = 'S3cr3t-'.repeat(6);
    const off = await run({ ...env, KOMMO_WEBHOOK_SECRET: secret });
    expect(checksOf(off, 'kommo')[0]).toMatchObject({ status: 'ok', detail: expect.stringContaining('KOMMO_WEBHOOK_SECRET is set') });
    expect(off.problems).toEqual([
      expect.objectContaining({ connection: 'kommo', check: 'events', severity: 'warn', fix: expect.stringContaining('CRM_TOOLSETS=core,activity,events') }),
    ]);
    expect(off.exit_code).toBe(3);
    const on = await run({ ...env, KOMMO_WEBHOOK_SECRET: secret, ...EVENTS_TOOLS });
    expect(on.problems).toEqual([]);
    expect(JSON.stringify(on)).not.toContain(secret);
  });

  it('--deep after events bind: the webhook points here; the emulator received reads only', async () => {
    const bind = await runCli(['events', 'bind', '--url', PUBLIC], { ...env, ...ADMIN });
    expect(bind.code, bind.stdout + bind.stderr).toBe(0);
    const secret = /\/hooks\/kommo\/([^/\s]+)/.exec([...kommo.state.webhooks.values()][0]!.destination)![1]!;
    kommo.resetLog();
    const r = await run({ ...env, ...EVENTS_TOOLS }, true);
    expect(eventProblems(r)).toEqual([]);
    // 26 kinds, counted by hand: lead, contact, company × add, update, delete, restore, responsible, note (18);
    // status_lead; add, update, delete, responsible _task (4); add, update, delete _unsorted (3).
    expect(checksOf(r, 'kommo', 'events: account webhooks')).toEqual([
      expect.objectContaining({ status: 'ok', detail: `Kommo sends 26 event kinds to ${PUBLIC}/hooks/kommo/…` }),
    ]);
    expect(kommo.requests.filter((q) => q.path === '/api/v4/webhooks').map((q) => q.method)).toEqual(['GET']);
    expect(kommo.requests.every((q) => q.method === 'GET')).toBe(true);
    expect(JSON.stringify(r)).not.toContain(secret);
  }, 60_000);

  it('--deep: a webhook Kommo disabled is a warning with the fix', async () => {
    const w = [...kommo.state.webhooks.values()][0]!;
    w.disabled = true;
    try {
      kommo.resetLog();
      const r = await run({ ...env, ...EVENTS_TOOLS }, true);
      expect(r.exit_code).toBe(3);
      expect(eventProblems(r)).toEqual([
        expect.objectContaining({
          check: 'events: account webhooks',
          severity: 'warn',
          message: expect.stringMatching(/^Kommo disabled the webhook to https:\/\/crm-mcp\.example\.test\/hooks\/kommo\/… /),
          fix: expect.stringContaining(`crm-mcp events bind --rotate --url ${PUBLIC}`),
        }),
      ]);
      expect(kommo.requests.every((q) => q.method === 'GET')).toBe(true);
    } finally {
      w.disabled = false;
    }
  }, 60_000);

  it("--deep with a token that is not an administrator's: cannot check, said so, and only reads sent", async () => {
    const admin = [...kommo.state.users.values()].find((u) => u.rights.is_admin)!;
    admin.rights.is_admin = false;
    try {
      kommo.resetLog();
      const r = await run({ ...env, ...EVENTS_TOOLS }, true);
      expect(checksOf(r, 'kommo', 'events: account webhooks')).toEqual([
        expect.objectContaining({ status: 'skipped', detail: expect.stringMatching(/^cannot check: needs an administrator's token/) }),
      ]);
      expect(eventProblems(r)).toEqual([]);
      expect(kommo.requests.filter((q) => q.path === '/api/v4/webhooks').map((q) => [q.method, q.status])).toEqual([['GET', 403]]);
      expect(kommo.requests.every((q) => q.method === 'GET')).toBe(true);
    } finally {
      admin.rights.is_admin = true;
    }
  }, 60_000);

  it('--deep: no webhook of the account carries the secret any more', async () => {
    kommo.state.webhooks.clear();
    const r = await run({ ...env, ...EVENTS_TOOLS }, true);
    expect(eventProblems(r)).toEqual([
      expect.objectContaining({ check: 'events: account webhooks', severity: 'warn', message: expect.stringMatching(/^Kommo sends nothing to this server/) }),
    ]);
  }, 60_000);
});

describe('doctor with Bitrix24 offline events', () => {
  let bitrix: BitrixEmulator;
  let env: Record<string, string>;
  beforeAll(async () => {
    bitrix = await startBitrixEmulator({ demo: false, rateLimit: false, oauth: OAUTH });
    const t = await bitrix.issueOAuthTokens();
    env = {
      CRM_MCP_HOME: tempHome(),
      BITRIX_CLIENT_ID: OAUTH.clientId,
      BITRIX_CLIENT_SECRET: OAUTH.clientSecret,
      BITRIX_PORTAL: bitrix.url,
      BITRIX_OAUTH_SERVER: bitrix.url,
      BITRIX_REFRESH_TOKEN: t.refresh_token,
      CRM_MCP_AUDIT_LOG: 'off',
      ...EVENTS_TOOLS,
    };
    const bind = await start(['events', 'bind'], { ...env, ...ADMIN }).done;
    expect(bind.code, bind.stdout + bind.stderr).toBe(0);
  }, 60_000);
  afterAll(async () => {
    await bitrix?.close();
  });

  it('bound, but CRM_EVENTS_POLL_S=0: a warning that nothing pulls them, with the fix', async () => {
    const r = await run({ ...env, CRM_EVENTS_POLL_S: '0' });
    expect(r.problems).toEqual([
      expect.objectContaining({
        connection: 'bitrix24',
        check: 'events',
        severity: 'warn',
        message: expect.stringMatching(/offline events bound on \d{4}-\d\d-\d\d \(15 events\), but CRM_EVENTS_POLL_S=0: nothing pulls them/),
        fix: expect.stringMatching(/^Set CRM_EVENTS_POLL_S/),
      }),
    ]);
    expect(r.exit_code).toBe(3);
  });

  it('bound and pulled: no problem; --deep finds all 15 bindings on the portal through event.get, reads only', async () => {
    bitrix.harness.resetLog();
    const r = await run({ ...env, CRM_EVENTS_POLL_S: '30' }, true);
    expect(eventProblems(r)).toEqual([]);
    expect(checksOf(r, 'bitrix24')).toEqual([
      expect.objectContaining({ check: 'events', status: 'ok', detail: expect.stringMatching(/pulled every 30 s/) }),
      expect.objectContaining({ check: 'events: portal bindings', status: 'ok', detail: 'the portal queues all 15 events for this server' }),
    ]);
    const methods = bitrixMethods(bitrix);
    expect(methods).toContain('event.get');
    expect(methods.filter((m) => !BITRIX_READ.test(m))).toEqual([]);
  }, 60_000);

  it('--deep: bindings removed on the portal are a warning naming them', async () => {
    const gone = bitrix.state.eventBindings.filter((b) => b.offline === 1 && b.event.startsWith('ONCRMDEAL'));
    expect(gone).toHaveLength(3);
    bitrix.state.eventBindings = bitrix.state.eventBindings.filter((b) => !gone.includes(b));
    bitrix.harness.resetLog();
    const r = await run({ ...env, CRM_EVENTS_POLL_S: '30' }, true);
    expect(eventProblems(r)).toEqual([
      expect.objectContaining({
        check: 'events: portal bindings',
        severity: 'warn',
        message: expect.stringMatching(
          /^3 of the 15 offline bindings crm-mcp made are gone from the portal \(ONCRMDEALADD, ONCRMDEALUPDATE, ONCRMDEALDELETE\)/,
        ),
        fix: expect.stringContaining('crm-mcp events bind'),
      }),
    ]);
    expect(bitrixMethods(bitrix).filter((m) => !BITRIX_READ.test(m))).toEqual([]);
  }, 60_000);
});
