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
import { runCli, tempHome } from '../helpers/cli.js';
import { startKommo } from '../helpers/index.js';

const PUBLIC = 'https://crm-mcp.example.test';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('crm-mcp events', () => {
  let emu: KommoEmulator;
  let env: Record<string, string>;
  let home: string;
  beforeAll(async () => {
    emu = await startKommo({ demo: false });
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
