/**
 * `crm-mcp events bind|status|unbind` (the built binary) against the Kommo emulator: refused before anything is
 * sent without the admin settings; with them the account holds the webhook and the store only the secret's
 * hash; --rotate replaces the webhook and keeps the old hash for the grace period; unbind removes it.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { runCli, start, tempHome } from '../helpers/cli.js';
import { startKommo } from '../helpers/index.js';

const PUBLIC = 'https://crm-mcp.example.test';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('crm-mcp events', () => {
  let emu: KommoEmulator;
  let env: Record<string, string>;
  let home: string;
  beforeAll(async () => {
    // Without the rate limit: each test runs several CLI processes back to back, each with its own client-side
    // limiter, so together they can exceed Kommo's 7 requests per second (the limits are tested elsewhere).
    emu = await startKommo({ demo: false, rateLimit: false });
    home = tempHome();
    env = { CRM_MCP_HOME: home, KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: emu.createLongLivedToken(), CRM_LOG_LEVEL: 'error' };
  });
  afterAll(async () => {
    await emu.close();
  });
  const hooks = () => emu.requests.filter((r) => r.path === '/api/v4/webhooks');
  const store = () => readFileSync(join(home, 'store.json'), 'utf8');

  it.each([
    ['read-only', {}, /CRM_ALLOW_WRITES=true and CRM_SAFE_MODE=false and CRM_ALLOW_ADMIN=true/],
    ['writes without admin', { CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false' }, /needs CRM_ALLOW_ADMIN=true/],
    ['admin with safe mode on', { CRM_ALLOW_WRITES: 'true', CRM_ALLOW_ADMIN: 'true' }, /needs CRM_SAFE_MODE=false/],
  ])('bind is refused %s, and nothing reaches Kommo', async (_what, flags, missing) => {
    emu.resetLog();
    const r = await runCli(['events', 'bind', '--url', PUBLIC], { ...env, ...flags });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/events bind refused: /);
    expect(r.stdout).toMatch(missing);
    expect(emu.requests).toEqual([]);
    expect(emu.state.webhooks.size).toBe(0);
  });

  it('bind with the admin settings registers the webhook once; the store keeps only its hash', async () => {
    emu.resetLog();
    const admin = { ...env, CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_ADMIN: 'true' };
    const r = await runCli(['events', 'bind', '--url', PUBLIC], admin);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const [w] = [...emu.state.webhooks.values()];
    expect(emu.state.webhooks.size).toBe(1);
    const m = new RegExp(`^${PUBLIC}/hooks/kommo/([A-Za-z0-9_-]{32,})$`).exec(w!.destination);
    expect(m).not.toBeNull();
    const secret = m![1]!;
    expect(w!.settings).toEqual(
      expect.arrayContaining(['add_lead', 'status_lead', 'responsible_lead', 'note_lead', 'add_task', 'add_unsorted', 'delete_company']),
    );
    expect(r.stdout).toContain(w!.destination);
    expect(hooks().map((q) => q.method)).toEqual(['POST']);
    expect(store()).toContain(sha(secret));
    expect(store()).not.toContain(secret);
    expect(r.stderr).not.toContain(secret);

    // A second bind without --rotate cannot resend the secret (only its hash is kept): refused, nothing sent.
    emu.resetLog();
    const again = await runCli(['events', 'bind', '--url', PUBLIC], admin);
    expect(again.code).toBe(1);
    expect(hooks()).toEqual([]);

    // status is a read and names the webhook without its secret.
    const st = await runCli(['events', 'status'], env);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(`${PUBLIC}/hooks/kommo/…`);
    expect(st.stdout).not.toContain(secret);

    // --rotate: a new webhook, the old one removed from Kommo, the old hash kept for the grace period.
    emu.resetLog();
    const rot = await runCli(['events', 'bind', '--rotate', '--url', PUBLIC], admin);
    expect(rot.code, rot.stdout + rot.stderr).toBe(0);
    expect(hooks().map((q) => q.method)).toEqual(['POST', 'GET', 'DELETE']);
    const [w2] = [...emu.state.webhooks.values()];
    expect(emu.state.webhooks.size).toBe(1);
    expect(w2!.destination).not.toBe(w!.destination);
    const secret2 = /\/hooks\/kommo\/([^/]+)$/.exec(w2!.destination)![1]!;
    expect(store()).toContain(sha(secret));
    expect(store()).toContain(sha(secret2));
    expect(store()).not.toContain(secret2);

    // unbind: the webhook goes (by destination, §10.1) and so does the stored hash.
    emu.resetLog();
    const un = await runCli(['events', 'unbind'], admin);
    expect(un.code, un.stdout + un.stderr).toBe(0);
    expect(emu.state.webhooks.size).toBe(0);
    const del = hooks().filter((q) => q.method === 'DELETE');
    expect(del.map((q) => JSON.parse(q.body) as unknown)).toEqual([{ destination: w2!.destination }]);
    expect(store()).not.toContain(sha(secret));
  }, 60_000);

  it('bind and unbind leave audit lines: pending, then the outcome, one call id, and no secret', async () => {
    const admin = { ...env, CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_ADMIN: 'true' };
    const audit = () =>
      readFileSync(join(home, 'audit.log'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => String(l.tool).startsWith('events_'));
    const before = audit().length;
    emu.resetLog();
    const bind = await runCli(['events', 'bind', '--url', PUBLIC], admin);
    expect(bind.code, bind.stdout + bind.stderr).toBe(0);
    const secret = /\/hooks\/kommo\/([^/\s]+)/.exec([...emu.state.webhooks.values()][0]!.destination)![1]!;
    // A second bind without --rotate is refused by the wing after its pending line: the outcome says why.
    const again = await runCli(['events', 'bind', '--url', PUBLIC], admin);
    expect(again.code).toBe(1);
    const un = await runCli(['events', 'unbind'], admin);
    expect(un.code, un.stdout + un.stderr).toBe(0);
    // status is a read: no line.
    expect((await runCli(['events', 'status'], env)).code).toBe(0);

    const lines = audit().slice(before);
    const shape = lines.map((l) => [l.tool, l.phase, l.outcome, l.effect, l.decision]);
    expect(shape).toEqual([
      ['events_bind', 'pending', 'pending', 'admin', 'allow'],
      ['events_bind', 'done', 'ok', 'admin', 'allow'],
      ['events_bind', 'pending', 'pending', 'admin', 'allow'],
      ['events_bind', 'done', 'validation', 'admin', 'allow'],
      ['events_unbind', 'pending', 'pending', 'admin', 'allow'],
      ['events_unbind', 'done', 'ok', 'admin', 'allow'],
    ]);
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]!.call_id).toBeTruthy();
      expect(lines[i + 1]!.call_id).toBe(lines[i]!.call_id);
    }
    expect(new Set(lines.map((l) => l.call_id)).size).toBe(3);
    expect(lines[0]).toMatchObject({ connection: 'kommo', provider: 'kommo', target: { hook: 'kommo', url: PUBLIC } });
    expect(lines[4]).toMatchObject({ target: { hook: 'kommo' } });
    const file = readFileSync(join(home, 'audit.log'), 'utf8');
    expect(file).not.toContain(secret);
    expect(file).not.toContain(sha(secret));
  }, 60_000);

  it('the served receiver counts its deliveries in /metrics, by hook and status, without the secret', async () => {
    const secret = 'Srv-metrics-'.repeat(4);
    const server = start(['--http', '--port', '0'], { ...env, KOMMO_WEBHOOK_SECRET: secret });
    try {
      const base = (await server.waitFor(/serving MCP \(Streamable HTTP\) at (\S+)/))[1]!.replace(/\/mcp$/, '');
      const k = (x: string) => encodeURIComponent(x);
      const body = [`${k('leads[add][0][id]')}=77`, `${k('account[id]')}=${emu.state.account.id}`, `${k('account[subdomain]')}=sandbox`].join('&');
      const send = (path: string) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      expect((await send(`/hooks/kommo/${secret}`)).status).toBe(200);
      expect((await send(`/hooks/kommo/${secret}`)).status).toBe(200);
      expect((await send(`/hooks/kommo/${'n'.repeat(40)}`)).status).toBe(403);
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(text).toMatch(/^crm_mcp_hook_deliveries_total\{hook="kommo",status="200"\} 2$/m);
      expect(text).toMatch(/^crm_mcp_hook_deliveries_total\{hook="kommo",status="403"\} 1$/m);
      expect(text).toMatch(/^crm_mcp_hook_events_stored_total\{hook="kommo"\} 1$/m);
      expect(text).toMatch(/^crm_mcp_hook_events_duplicates_total\{hook="kommo"\} 1$/m);
      expect(text).not.toContain(secret);
    } finally {
      server.child.kill('SIGTERM');
      await server.done;
    }
  }, 60_000);

  it('status says so when Kommo refuses the admin-only read', async () => {
    const admin = [...emu.state.users.values()].find((u) => u.rights.is_admin)!;
    admin.rights.is_admin = false;
    try {
      const st = await runCli(['events', 'status'], env);
      expect(st.stdout).toContain('needs an administrator token');
    } finally {
      admin.rights.is_admin = true;
    }
  });
});
