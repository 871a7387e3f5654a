/**
 * Start-up never hangs in silence (issue 16): a path that does not answer (`/proc/x/…`, where Node's recursive
 * mkdir never completes, as on a hung mount) or a FIFO nobody reads makes the binary exit non-zero with a
 * message naming the variable that chose the path. No timing assertion beyond the tests' own timeouts.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, tempHome } from '../helpers/cli.js';

const linux = process.platform === 'linux';

describe.skipIf(!linux)('bounded start-up checks', () => {
  it('CRM_MCP_AUDIT_LOG under /proc with writes on: exits 2 naming the variable, serves nothing', { timeout: 60_000 }, async () => {
    const r = await runCli(['--sandbox'], { CRM_MCP_HOME: tempHome(), CRM_ALLOW_WRITES: 'true', CRM_MCP_AUDIT_LOG: '/proc/x/audit.log' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_MCP_AUDIT_LOG: the audit log \/proc\/x\/audit\.log did not answer/);
    expect(r.stdout).toBe('');
  });

  it('CRM_MCP_AUDIT_LOG on a FIFO: refused before it is opened, naming the variable', { timeout: 60_000 }, async () => {
    const fifo = join(tempHome(), 'audit.fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await runCli(['--sandbox'], { CRM_MCP_HOME: tempHome(), CRM_ALLOW_WRITES: 'true', CRM_MCP_AUDIT_LOG: fifo });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_MCP_AUDIT_LOG: .* is not a regular file/);
    expect(r.stdout).toBe('');
  });

  it('CRM_MCP_HOME under /proc (the default store lives there): exits 2 naming the variable', { timeout: 60_000 }, async () => {
    const r = await runCli([], { CRM_MCP_HOME: '/proc/x', KOMMO_SUBDOMAIN: 'acme', KOMMO_ACCESS_TOKEN: 'a.b.c' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_MCP_HOME: the store's directory \/proc\/x did not answer/);
  });

  it('CRM_MCP_STORE under /proc: doctor reports it as a store problem instead of hanging', { timeout: 60_000 }, async () => {
    const r = await runCli(['doctor', '--json'], {
      CRM_MCP_HOME: tempHome(),
      CRM_MCP_STORE: '/proc/x/store.json',
      KOMMO_SUBDOMAIN: 'acme',
      KOMMO_ACCESS_TOKEN: 'a.b.c',
    });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { problems: Array<{ check: string; message: string }> };
    expect(report.problems.find((p) => p.check === 'store')?.message).toMatch(/CRM_MCP_STORE: the store's directory \/proc\/x did not answer/);
  });
});
