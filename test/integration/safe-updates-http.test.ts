/**
 * CRM_SAFE_UPDATES and CRM_CONFIRM_WRITES where a person looks (get_account, doctor), and the
 * `X-CRM-Safe-Updates` narrowing header over Streamable HTTP: it can only remove narrow updates (`none`, or the
 * kinds to keep), never add one the operator did not list, and an unclear value keeps none. A refused call
 * leaves the emulator with zero write requests.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ApprovalDesk } from '../../src/approvals/desk.js';
import { diagnose } from '../../src/commands/doctor.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { openStore } from '../../src/store/store.js';
import { narrowFromHeaders } from '../../src/transports/http/guards.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { CREATE_ONLY, kommoProvider, linkClient, startKommo, structured, writesTo } from '../helpers/index.js';

const TOKEN = 'test-token-0123456789abcdef';
const BOTH: PolicyFlags = { ...CREATE_ONLY, safeUpdates: ['stage', 'task_done'] };

interface Account {
  policy: { mode: string; safe_updates: string[]; confirmations: { on: boolean; via: string | null } };
}

let emu: KommoEmulator;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
});
afterAll(async () => emu.close());

async function serve(flags: PolicyFlags): Promise<RunningHttpServer> {
  const p = await kommoProvider(emu, { flags });
  return startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    makeServer: (scope) => createServer({ config: { tools: {} }, providers: [p], narrow: scope.narrow }),
  });
}

async function session(url: string, extra: Record<string, string> = {}) {
  const client = new Client({ name: 'safe-updates-http', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${TOKEN}`, ...extra } } }));
  const list = (await client.listTools()).tools.map((t) => t.name);
  const account = structured<Account>((await client.callTool({ name: 'get_account', arguments: {} })) as CallToolResult);
  return { client, list, account };
}

/** An open lead and another open stage of its pipeline, from the emulator's own state. */
function aMove(): { id: number; stage_id: number } {
  const lead = [...emu.state.leads.values()].find((l) => {
    const s = emu.state.pipelines.get(l.pipeline_id)?._embedded.statuses.find((x) => x.id === l.status_id);
    return !l.is_deleted && s?.type === 0 && s.id !== 142 && s.id !== 143;
  })!;
  const to = emu.state.pipelines
    .get(lead.pipeline_id)!
    ._embedded.statuses.find((s) => s.type === 0 && s.id !== lead.status_id && s.id !== 142 && s.id !== 143)!;
  return { id: lead.id, stage_id: to.id };
}

describe('X-CRM-Safe-Updates over HTTP', () => {
  it('without the header: both narrow updates listed, and get_account says so (confirmations off)', async () => {
    const http = await serve(BOTH);
    const s = await session(http.url);
    expect(s.list).toEqual(expect.arrayContaining(['move_lead', 'complete_task']));
    expect(s.list).not.toContain('update_lead');
    expect(s.account.policy).toMatchObject({
      mode: 'create-only+stage+task_done',
      safe_updates: ['stage', 'task_done'],
      confirmations: { on: false, via: null },
    });
    await s.client.close();
    await http.close();
  });

  it('"none" removes both: not listed, a call is refused, nothing sent; the same server without it is unchanged', async () => {
    const http = await serve(BOTH);
    const s = await session(http.url, { 'X-CRM-Safe-Updates': 'none' });
    expect(s.list).not.toContain('move_lead');
    expect(s.list).not.toContain('complete_task');
    expect(s.account.policy).toMatchObject({ mode: 'create-only', safe_updates: [] });
    emu.resetLog();
    await expect(s.client.callTool({ name: 'move_lead', arguments: aMove() })).rejects.toThrow(/move_lead not found/);
    expect(writesTo(emu.requests)).toEqual([]);
    await s.client.close();
    const plain = await session(http.url);
    expect(plain.list).toEqual(expect.arrayContaining(['move_lead', 'complete_task']));
    await plain.client.close();
    await http.close();
  });

  it('a subset keeps only those kinds; the kept one still works', async () => {
    const http = await serve(BOTH);
    const s = await session(http.url, { 'X-CRM-Safe-Updates': 'stage' });
    expect(s.list).toContain('move_lead');
    expect(s.list).not.toContain('complete_task');
    expect(s.account.policy.safe_updates).toEqual(['stage']);
    emu.resetLog();
    const move = aMove();
    const r = (await s.client.callTool({ name: 'move_lead', arguments: move })) as CallToolResult;
    expect(r.isError ?? false).toBe(false);
    expect(writesTo(emu.requests).map((q) => [q.method, q.path, JSON.parse(q.body) as unknown])).toEqual([
      ['PATCH', `/api/v4/leads/${move.id}`, { status_id: move.stage_id }],
    ]);
    await s.client.close();
    await http.close();
  });

  it('cannot add a kind the operator did not list', async () => {
    const http = await serve({ ...CREATE_ONLY, safeUpdates: ['stage'] });
    const s = await session(http.url, { 'X-CRM-Safe-Updates': 'stage,task_done' });
    expect(s.list).toContain('move_lead');
    expect(s.list).not.toContain('complete_task');
    expect(s.account.policy.safe_updates).toEqual(['stage']);
    await s.client.close();
    await http.close();
  });

  it('fails closed: an unknown kind, an empty value or a repeated header keeps none', () => {
    const cases: Array<[string, string[]]> = [
      ['unknown kind', ['X-CRM-Safe-Updates', 'stage,everything']],
      ['empty', ['X-CRM-Safe-Updates', '']],
      ['repeated', ['X-CRM-Safe-Updates', 'stage', 'x-crm-safe-updates', 'stage']],
    ];
    for (const [why, raw] of cases) expect(narrowFromHeaders(raw), why).toEqual({ safeUpdates: [] });
    expect(narrowFromHeaders(['X-CRM-Safe-Updates', ' Task_Done , stage '])).toEqual({ safeUpdates: ['stage', 'task_done'] });
    expect(narrowFromHeaders(['X-CRM-Read-Only', 'false'])).toEqual({});
  });
});

describe('confirmations and safe updates where a person looks', () => {
  it('get_account shows CRM_CONFIRM_WRITES on and CRM_CONFIRM_VIA', async () => {
    const p = await kommoProvider(emu, { flags: BOTH });
    const approvals = new ApprovalDesk(await openStore('memory'), { on: true, via: 'operator', ttlMs: 600_000 });
    const c = await linkClient({ config: { tools: {} }, providers: [p], approvals });
    const acc = structured<Account>(await c.call('get_account'));
    expect(acc.policy.confirmations).toEqual({ on: true, via: 'operator' });
    expect(acc.policy.safe_updates).toEqual(['stage', 'task_done']);
    await c.close();
  });

  it('doctor shows the mode, the safe updates and the confirmations of each connection', async () => {
    const home = mkdtempSync(join(tmpdir(), 'crm-safe-doctor-'));
    const base = { CRM_MCP_HOME: home, KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: emu.createLongLivedToken(), CRM_ALLOW_WRITES: 'true' };
    const on = await diagnose({ ...base, CRM_SAFE_UPDATES: 'stage', CRM_CONFIRM_WRITES: 'true', CRM_CONFIRM_VIA: 'operator' }, undefined, {
      trustedOrigins: [emu.url],
    });
    expect(on.connections[0]!.checks.find((c) => c.check === 'safety')?.detail).toBe(
      'mode create-only+stage; safe updates (CRM_SAFE_UPDATES): stage; confirmations (CRM_CONFIRM_WRITES): on, via operator (CRM_CONFIRM_VIA)',
    );
    const off = await diagnose(base, undefined, { trustedOrigins: [emu.url] });
    expect(off.connections[0]!.checks.find((c) => c.check === 'safety')?.detail).toBe(
      'mode create-only; safe updates (CRM_SAFE_UPDATES): none; confirmations (CRM_CONFIRM_WRITES): off',
    );
  });
});
