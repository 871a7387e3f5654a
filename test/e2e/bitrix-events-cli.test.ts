/**
 * `crm-mcp events bind|status` on a Bitrix24 OAuth app connection, through the built binary: without the admin
 * settings it is refused and the portal receives nothing at all; with them, every record event is bound offline
 * (15 bindings, counted by hand: lead, deal, contact, company × add, update, delete, and task add, update, delete).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { start, tempHome } from '../helpers/cli.js';

const OAUTH = { clientId: 'local.cli-events', clientSecret: 'cli-events-secret-123456' };

describe('crm-mcp events on Bitrix24', () => {
  let emu: BitrixEmulator;
  let env: Record<string, string>;

  beforeAll(async () => {
    emu = await startBitrixEmulator({ rateLimit: false, oauth: OAUTH });
    const t = await emu.issueOAuthTokens();
    env = {
      CRM_MCP_HOME: tempHome(),
      BITRIX_CLIENT_ID: OAUTH.clientId,
      BITRIX_CLIENT_SECRET: OAUTH.clientSecret,
      BITRIX_PORTAL: emu.url,
      BITRIX_OAUTH_SERVER: emu.url,
      BITRIX_REFRESH_TOKEN: t.refresh_token,
      CRM_MCP_AUDIT_LOG: 'off',
    };
  });
  afterAll(async () => {
    await emu.close();
  });

  it('bind without the admin settings is refused before anything reaches the portal', async () => {
    const r = await start(['events', 'bind'], { ...env, CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false' }).done;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/events bind refused/);
    expect(emu.requests).toEqual([]);
    expect(emu.state.eventBindings).toEqual([]);
  });

  it('bind with them registers the offline events; status reads them back', async () => {
    const admin = { ...env, CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_ADMIN: 'true' };
    const r = await start(['events', 'bind'], admin).done;
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/offline events bound for 15 events/);
    expect(
      emu.state.eventBindings
        .filter((b) => b.offline === 1)
        .map((b) => b.event)
        .sort(),
    ).toEqual(
      [
        ...['LEAD', 'DEAL', 'CONTACT', 'COMPANY'].flatMap((e) => [`ONCRM${e}ADD`, `ONCRM${e}UPDATE`, `ONCRM${e}DELETE`]),
        'ONTASKADD',
        'ONTASKUPDATE',
        'ONTASKDELETE',
      ].sort(),
    );
    const s = await start(['events', 'status'], env).done;
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/15 offline binding\(s\) \(pulled/);
  });

  it('the served server pulls them (CRM_EVENTS_POLL_S) into the event log beside the store', async () => {
    const lead = await fetch(`${emu.webhookUrl}crm.lead.add.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fields: { TITLE: 'Pulled by the server' } }),
    });
    const id = ((await lead.json()) as { result: number }).result;
    expect(emu.state.offlineEvents.map((e) => e.EVENT_NAME)).toEqual(['ONCRMLEADADD']);
    const server = start(['--http', '--port', '0'], { ...env, CRM_EVENTS_POLL_S: '1' });
    try {
      const file = join(env.CRM_MCP_HOME!, 'events.jsonl');
      const end = Date.now() + 15_000;
      while (Date.now() < end && !(existsSync(file) && readFileSync(file, 'utf8').includes(`"entity_id":"${id}"`)))
        await new Promise((r) => setTimeout(r, 100));
      const lines = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.filter((e) => e.entity_id === String(id)).map((e) => [e.entity, e.action, e.source])).toEqual([['lead', 'added', 'offline']]);
      // The event is stored before the queue is cleared (a crash between the two loses nothing): wait for the clear.
      while (Date.now() < end && emu.state.offlineEvents.length > 0) await new Promise((r) => setTimeout(r, 50));
      expect(emu.state.offlineEvents).toEqual([]);
    } finally {
      server.child.kill('SIGTERM');
      await server.done;
    }
  });
});
