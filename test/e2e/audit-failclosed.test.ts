/**
 * The audit log fails closed (issue 9, finding 4): with an audit file that cannot be written, an allowed write
 * is refused with code `config` before anything reaches the CRM, and `crm-mcp` with writes on refuses to
 * start. Also size-based rotation, and get_audit_log reading across the rotated files.
 *
 * Tests run as root, where chmod does not stop a write; so "cannot be written" is made with paths that fail
 * for everyone: a directory where the file should be, or a file where its directory should be.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditEntry } from '../../src/audit/audit-log.js';
import { SlidingWindowLimiter } from '../../src/http/limiter.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CREATE_ONLY, errorOf, kommoProvider, linkClient, writesTo } from '../helpers/index.js';
import { start, runCli, tempHome } from '../helpers/cli.js';

let emu: KommoEmulator;
let dir: string;

beforeAll(async () => {
  emu = await startKommoEmulator({ rateLimit: false });
  dir = mkdtempSync(join(tmpdir(), 'crm-mcp-audit-fc-'));
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An SDK client connected in-process to a server whose only connection may create records. */
async function serve(audit: AuditLog) {
  const limiter = new SlidingWindowLimiter(1000, 1000);
  const provider = await kommoProvider(emu, { flags: CREATE_ONLY, maxRetries: 1, backoffBaseMs: 10, limiter });
  return linkClient({ config: { tools: {} }, providers: [provider], audit }, 'audit-fc', '0');
}

const leadNamed = (name: string) => emu.requests.filter((r) => r.method === 'POST' && JSON.stringify(r.body ?? '').includes(name));

describe('an audit log that cannot be written refuses writes before the CRM sees them', () => {
  it.each([
    [
      'a directory where the file should be',
      () => {
        const p = join(dir, 'is-a-directory.log');
        mkdirSync(p);
        return p;
      },
    ],
    [
      'a regular file where its directory should be',
      () => {
        const parent = join(dir, 'plain-file');
        writeFileSync(parent, 'not a directory');
        return join(parent, 'audit.log');
      },
    ],
  ])('%s', async (_what, makePath) => {
    const path = makePath();
    const s = await serve(new AuditLog({ file: path }));
    emu.resetLog();
    const r = await s.call('create_lead', { name: 'Unaudited Lead 4711' });
    const e = errorOf(r);
    expect(e.code).toBe('config');
    expect(e.retryable).toBe(false);
    expect(e.message).toMatch(/CRM_MCP_AUDIT_LOG/);
    // The agent is told which setting to fix, not where the operator keeps the file.
    expect(JSON.stringify(r)).not.toContain(dir);
    expect(r.structuredContent).toBeUndefined();
    expect(writesTo(emu.requests)).toEqual([]);
    // Reads do not need the audit log.
    expect((await s.call('get_pipelines', {})).isError).toBeFalsy();
    await s.close();
  });

  it('writes resume once the file can be written again, and each one leaves its line', async () => {
    const path = join(dir, 'comes-back.log');
    mkdirSync(path);
    const s = await serve(new AuditLog({ file: path }));
    emu.resetLog();
    expect(errorOf(await s.call('create_lead', { name: 'Blocked Lead 0001' })).code).toBe('config');
    expect(writesTo(emu.requests)).toEqual([]);
    rmSync(path, { recursive: true });
    const ok = await s.call('create_lead', { name: 'Allowed Lead 0002' });
    expect(ok.isError).toBeFalsy();
    expect(leadNamed('Allowed Lead 0002')).toHaveLength(1);
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntry);
    // The pending line written before the CRM was called, then the outcome with the same call id.
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ tool: 'create_lead', decision: 'allow', outcome: 'pending', phase: 'pending' });
    expect(lines[1]).toMatchObject({
      tool: 'create_lead',
      decision: 'allow',
      outcome: 'ok',
      phase: 'done',
      call_id: (lines[0] as { call_id?: string }).call_id,
    });
    await s.close();
  });
});

describe('rotation', () => {
  it('rotates past maxBytes, keeps N old files, and get_audit_log reads across them', async () => {
    const path = join(dir, 'rotating', 'audit.log');
    const maxBytes = 2000;
    const s = await serve(new AuditLog({ file: path, maxBytes, keep: 2 }));
    const created: number[] = [];
    for (let i = 0; i < 14; i++) {
      const r = await s.call('create_contact', { first_name: `Rotated${i}`, email: `rotated${i}@example.org` });
      expect(r.isError).toBeFalsy();
      created.push((r.structuredContent as { contact: { id: number } }).contact.id);
    }
    const read = (p: string) =>
      existsSync(p)
        ? readFileSync(p, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as AuditEntry & { phase?: string })
            // Each call's outcome line (its pending line came before it, perhaps in an older file).
            .filter((e) => e.phase === 'done')
        : [];
    const [current, first, second] = [read(path), read(`${path}.1`), read(`${path}.2`)];
    expect(first.length).toBeGreaterThan(0);
    expect(second.length).toBeGreaterThan(0);
    expect(existsSync(`${path}.3`)).toBe(false);
    for (const p of [path, `${path}.1`, `${path}.2`]) {
      expect(statSync(p).size).toBeLessThanOrEqual(maxBytes);
      expect(statSync(p).mode & 0o777).toBe(0o600);
    }
    // Oldest file first: together the files hold the newest calls in order, the oldest ones dropped.
    const kept = [...second, ...first, ...current].map((e) => e.result_ids?.contact_id);
    expect(kept.length).toBeLessThan(created.length);
    expect(kept).toEqual(created.slice(created.length - kept.length));

    const r = await s.call('get_audit_log', { limit: 200 });
    const entries = (r.structuredContent as { entries: AuditEntry[] }).entries;
    expect(entries.map((e) => e.result_ids?.contact_id)).toEqual([...kept].reverse());
    await s.close();
  });
});

describe('crm-mcp start-up', () => {
  it('with writes on and an unwritable audit log it exits non-zero naming CRM_MCP_AUDIT_LOG, before starting', async () => {
    const home = tempHome();
    const blocked = join(home, 'audit-dir');
    mkdirSync(blocked);
    const r = await runCli(['--sandbox'], { CRM_MCP_HOME: home, CRM_ALLOW_WRITES: 'true', CRM_MCP_AUDIT_LOG: blocked });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toMatch(/CRM_MCP_AUDIT_LOG/);
    expect(r.stderr).not.toMatch(/crm-mcp starting/);
  });

  it('the same audit path with writes off starts (nothing to audit but refusals)', async () => {
    const home = tempHome();
    const blocked = join(home, 'audit-dir');
    mkdirSync(blocked);
    const p = start(['--sandbox', '--http', '--port', '0'], { CRM_MCP_HOME: home, CRM_MCP_AUDIT_LOG: blocked });
    await p.waitFor(/serving MCP \(Streamable HTTP\) at (\S+)/);
    p.child.kill('SIGTERM');
    await p.done;
    expect(p.stderr()).not.toMatch(/CRM_MCP_AUDIT_LOG/);
  });
});
