/**
 * The newest MCP conformance suite (0.1.16) and Inspector (2.x) need Node >= 22, so they run only in the Node 24
 * pass of .ci/run, which installs them outside the project and names them in CRM_TEST_CONFORMANCE_LATEST and
 * CRM_TEST_INSPECTOR_LATEST. Each protocol era the tool supports is tested: the conformance suite knows the
 * 2025-06-18 and 2025-11-25 revisions; the Inspector negotiates the legacy (initialize) era and the modern
 * (2026-07-28, server/discover) one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, runCommand, startSandboxHttp, type Running } from '../helpers/cli.js';

const CONFORMANCE = process.env.CRM_TEST_CONFORMANCE_LATEST;
const INSPECTOR = process.env.CRM_TEST_INSPECTOR_LATEST;

const run = runCommand;

describe.skipIf(!CONFORMANCE)('MCP conformance suite 0.1.16 (Node 24 pass)', () => {
  let server: Running | undefined;
  let url = '';
  const out = mkdtempSync(join(tmpdir(), 'crm-mcp-conformance-latest-'));
  beforeAll(async () => {
    ({ server, url } = await startSandboxHttp());
  });
  afterAll(() => {
    server?.child.kill('SIGTERM');
    rmSync(out, { recursive: true, force: true });
  });

  it.each(['2025-06-18', '2025-11-25'])('spec %s: passes with its baseline; the real-server scenarios pass', { timeout: 120_000 }, async (version) => {
    const baseline = join(ROOT, 'test', `conformance-baseline-0.1.16-${version}.yml`);
    const r = await run(CONFORMANCE!, ['server', '--url', url, '--spec-version', version, '--expected-failures', baseline, '-o', join(out, version)]);
    expect(r.code, r.output.slice(r.output.indexOf('=== SUMMARY ==='))).toBe(0);
    expect(r.output).toMatch(/Baseline check passed/);
    for (const scenario of ['server-initialize', 'ping', 'logging-set-level', 'tools-list']) {
      expect(r.output, scenario).toMatch(new RegExp(`✓ ${scenario}: [1-9]\\d* passed, 0 failed`));
    }
  });
});

describe.skipIf(!INSPECTOR)('MCP Inspector 2.x CLI over stdio (Node 24 pass)', () => {
  const inspect = async (era: string, args: string[]) => {
    const r = await run(INSPECTOR!, ['--cli', '--protocol-era', era, process.execPath, CLI, '--sandbox', ...args]);
    const json = r.stdout.slice(r.stdout.indexOf('{'));
    return { code: r.code, output: r.output, json: JSON.parse(json) as Record<string, unknown> };
  };

  it.each(['legacy', 'modern'])('%s era: lists the tools and calls one', { timeout: 60_000 }, async (era) => {
    const list = await inspect(era, ['--method', 'tools/list']);
    expect(list.code, list.output).toBe(0);
    const names = (list.json.tools as Array<{ name: string }>).map((t) => t.name);
    expect(names).toContain('get_pipelines');
    expect(names).toContain('search_lead_by_contact');
    const call = await inspect(era, ['--method', 'tools/call', '--tool-name', 'get_pipelines', '--tool-arg', 'crm="kommo"']);
    // 2.x exits 5 when the tool returns isError.
    expect(call.code, call.output).toBe(0);
    expect(call.json.isError ?? false).toBe(false);
    expect(JSON.stringify(call.json.structuredContent)).toMatch(/stages/);
  });
});
