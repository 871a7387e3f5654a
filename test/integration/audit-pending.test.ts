/**
 * The audit line comes before the write (issue 14, finding 7). The log used to be written after the call, so
 * on a full disk the first write reached the CRM with no audit line and only the next ones were refused. Now
 * an allowed write appends a pending line (with a call id) before anything is sent, and its outcome line
 * (same call id) after; when the pending append fails the call is refused and the CRM receives nothing.
 * get_audit_log shows one entry per call, and a pending line whose outcome never came as "unknown".
 *
 * A full disk is made at the AuditLog's file layer (`appendLine`): opening the file works, only the write
 * fails, as with ENOSPC or a quota. In-process SDK client against the Kommo emulator; what the emulator
 * received is the measure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { appendRotating } from '../../src/audit/audit-file.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CREATE_ONLY, WRITE, errorOf, kommoProvider, linkClient, startKommo, writesTo } from '../helpers/index.js';

let emu: KommoEmulator;
let dir: string;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  dir = mkdtempSync(join(tmpdir(), 'crm-mcp-audit-pending-'));
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(audit: AuditLog, policy: PolicyFlags = CREATE_ONLY) {
  const provider = await kommoProvider(emu, { flags: policy, maxRetries: 0, backoffBaseMs: 10 });
  return linkClient({ config: { tools: {} }, providers: [provider], audit }, 'audit-pending', '0');
}

const FUTURE = new Date(Date.now() + 7 * 86_400_000).toISOString();
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
type Line = AuditEntry & { call_id?: string; phase?: string };
const fileLines = (path: string): Line[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);

describe('a disk that is full from the first write', () => {
  it('refuses the very first write with code config, and the CRM receives nothing', async () => {
    let attempts = 0;
    const audit = new AuditLog({
      file: join(dir, 'full-from-the-start.log'),
      appendLine: () => {
        attempts += 1;
        return Promise.reject(enospc());
      },
    });
    const s = await serve(audit);
    emu.resetLog();
    const r = await s.call('create_lead', { name: 'First write on a full disk' });
    const e = errorOf(r);
    expect(e.code).toBe('config');
    expect(e.message).toMatch(/ENOSPC/);
    expect(e.message).toMatch(/CRM_MCP_AUDIT_LOG/);
    expect(JSON.stringify(r)).not.toContain(dir);
    expect(emu.requests).toEqual([]);
    // And the next one, the same way.
    expect(errorOf(await s.call('create_contact', { name: 'Second write on a full disk' })).code).toBe('config');
    expect(emu.requests).toEqual([]);
    expect(attempts).toBe(2);
    // Reads do not need the audit log.
    expect((await s.call('get_pipelines', {})).isError).toBeFalsy();
    await s.close();
  });
});

describe('the pending line comes before the CRM request, the outcome after', () => {
  it('a create: pending with nothing sent yet, then the outcome with the same call id once the write was sent', async () => {
    const path = join(dir, 'ordered.log');
    // What the emulator had received when each line was appended.
    const seen: Array<{ phase: string | undefined; outcome: string; call_id: string | undefined; requests: number; writes: number }> = [];
    const audit = new AuditLog({
      file: path,
      appendLine: (file, line, maxBytes, keep) => {
        const l = JSON.parse(line) as Line;
        seen.push({ phase: l.phase, outcome: l.outcome, call_id: l.call_id, requests: emu.requests.length, writes: writesTo(emu.requests).length });
        return appendRotating(file, line, maxBytes, keep);
      },
    });
    const s = await serve(audit);
    emu.resetLog();
    const r = await s.call('add_note', { entity: 'lead', entity_id: 1000001, text: 'Ordered note 0042' });
    expect(r.isError).toBeFalsy();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ phase: 'pending', outcome: 'pending', requests: 0, writes: 0 });
    expect(seen[1]).toMatchObject({ phase: 'done', outcome: 'ok', call_id: seen[0]!.call_id });
    expect(seen[1]!.writes).toBeGreaterThanOrEqual(1);
    expect(seen[0]!.call_id).toMatch(/^[0-9a-f-]{36}$/);
    // The file holds the same two lines; get_audit_log shows one entry for the call.
    const lines = fileLines(path);
    expect(lines.map((l) => [l.phase, l.outcome, l.tool])).toEqual([
      ['pending', 'pending', 'add_note'],
      ['done', 'ok', 'add_note'],
    ]);
    expect(lines[0]!.args).toEqual(lines[1]!.args);
    const entries = (await s.call('get_audit_log', { limit: 10 })).structuredContent as { entries: AuditEntry[] };
    expect(entries.entries).toHaveLength(1);
    expect(entries.entries[0]).toMatchObject({ tool: 'add_note', outcome: 'ok' });
    await s.close();
  });

  it('an update: the pending line comes before even the read of prior values', async () => {
    const at: number[] = [];
    const audit = new AuditLog({
      file: join(dir, 'update.log'),
      appendLine: (file, line, maxBytes, keep) => {
        at.push(emu.requests.length);
        return appendRotating(file, line, maxBytes, keep);
      },
    });
    const s = await serve(audit, WRITE);
    emu.resetLog();
    const r = await s.call('update_lead', { id: 1000001, price: 4242 });
    expect(r.isError).toBeFalsy();
    expect(at[0]).toBe(0);
    expect(at[1]).toBeGreaterThanOrEqual(2); // the prior read and the PATCH
    await s.close();
  });
});

describe('a pending line without its outcome', () => {
  it('the disk fills after the pending line: the call went through, and get_audit_log says its outcome is unknown', async () => {
    let n = 0;
    const path = join(dir, 'fills-in-between.log');
    const audit = new AuditLog({
      file: path,
      // The second append (the first call's outcome) fails; the disk is fine again afterwards.
      appendLine: (file, line, maxBytes, keep) => (++n === 2 ? Promise.reject(enospc()) : appendRotating(file, line, maxBytes, keep)),
    });
    const s = await serve(audit);
    emu.resetLog();
    expect((await s.call('add_note', { entity: 'lead', entity_id: 1000001, text: 'Outcome lost 0001' })).isError).toBeFalsy();
    expect(writesTo(emu.requests).length).toBeGreaterThanOrEqual(1);
    expect((await s.call('create_task', { text: 'Outcome kept 0002', complete_till: FUTURE })).isError).toBeFalsy();
    const { entries } = (await s.call('get_audit_log', { limit: 10 })).structuredContent as { entries: AuditEntry[] };
    expect(entries.map((e) => [e.tool, e.outcome])).toEqual([
      ['create_task', 'ok'],
      ['add_note', 'unknown'],
    ]);
    // Nothing of the pairing leaks into the entries.
    expect(Object.keys(entries[1]!)).not.toContain('call_id');
    await s.close();
  });

  it('a log left by a process that stopped mid-call: one entry per call, the unfinished one "unknown"', async () => {
    const path = join(dir, 'crashed.log');
    const base = {
      time: '2026-01-01T00:00:00.000Z',
      connection: 'kommo',
      provider: 'kommo',
      effect: 'create',
      decision: 'allow',
      target: {},
      args: {},
      crm_request_ids: [],
      duration_ms: 0,
    };
    const line = (o: Record<string, unknown>) => `${JSON.stringify({ ...base, ...o })}\n`;
    await appendRotating(path, line({ call_id: 'a', phase: 'pending', tool: 'create_lead', outcome: 'pending' }), 1 << 20, 1);
    await appendRotating(path, line({ call_id: 'a', phase: 'done', tool: 'create_lead', outcome: 'ok' }), 1 << 20, 1);
    // A line from before pairing existed.
    await appendRotating(path, line({ tool: 'add_note', outcome: 'ok' }), 1 << 20, 1);
    await appendRotating(path, line({ call_id: 'b', phase: 'pending', tool: 'create_contact', outcome: 'pending' }), 1 << 20, 1);
    const entries = await new AuditLog({ file: path }).recent({ limit: 10 });
    expect(entries.map((e) => [e.tool, e.outcome])).toEqual([
      ['create_contact', 'unknown'],
      ['add_note', 'ok'],
      ['create_lead', 'ok'],
    ]);
  });
});
