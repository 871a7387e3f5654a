/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.13, the last release that runs on
 * Node 20; it tests servers over HTTP only) against `crm-mcp --sandbox --http`, with a baseline of the
 * scenarios that need the suite's fixture tools, resources and prompts (test/conformance-baseline.yml).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runCommand, startSandboxHttp, type Running } from '../helpers/cli.js';

const CONFORMANCE = join(ROOT, 'node_modules', '.bin', 'conformance');
const BASELINE = join(ROOT, 'test', 'conformance-baseline.yml');

/** Scenarios that test real behaviour of a server without fixtures: these must pass, not merely be tolerated. */
const MUST_PASS = ['server-initialize', 'ping', 'logging-set-level', 'tools-list', 'dns-rebinding-protection'];

interface Check {
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
  details?: unknown;
  errorMessage?: string;
}

/** checks.json of every scenario in the -o directory (one `server-<scenario>-<timestamp>/` folder each). */
function readResults(dir: string): Map<string, Check[]> {
  const results = new Map<string, Check[]>();
  for (const entry of readdirSync(dir)) {
    const m = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry);
    if (!m) continue;
    results.set(m[1]!, JSON.parse(readFileSync(join(dir, entry, 'checks.json'), 'utf8')) as Check[]);
  }
  return results;
}

describe('MCP conformance suite', () => {
  let server: Running | undefined;
  const out = mkdtempSync(join(tmpdir(), 'crm-mcp-conformance-'));
  afterAll(() => {
    server?.child.kill('SIGTERM');
    rmSync(out, { recursive: true, force: true });
  });

  it('passes with the baseline, and the scenarios a real server must pass do pass', { timeout: 120_000 }, async () => {
    let url: string;
    ({ server, url } = await startSandboxHttp());

    const run = await runCommand(CONFORMANCE, ['server', '--url', url, '--expected-failures', BASELINE, '-o', out]);
    const summary = run.output.slice(run.output.indexOf('=== SUMMARY ==='));
    expect(run.code, summary).toBe(0);
    expect(run.output).toMatch(/Baseline check passed/);

    const results = readResults(out);
    for (const scenario of MUST_PASS) {
      const checks = results.get(scenario);
      expect(checks, `${scenario} did not run`).toBeDefined();
      expect(checks!.length, scenario).toBeGreaterThan(0);
      const bad = checks!.filter((c) => c.status !== 'SUCCESS');
      expect(bad, `${scenario}: ${JSON.stringify(bad)}`).toEqual([]);
    }
  });
});
