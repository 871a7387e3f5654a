/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance 0.1.13, the last release that runs on
 * Node 20; it tests servers over HTTP only) against `crm-mcp --sandbox --http`, with a baseline of the
 * scenarios that need the suite's fixture tools, resources and prompts (test/conformance-baseline.yml).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');
const CONFORMANCE = join(ROOT, 'node_modules', '.bin', 'conformance');
const BASELINE = join(ROOT, 'test', 'conformance-baseline.yml');

/** Scenarios that test real behaviour of a server without fixtures: these must pass, not merely be tolerated. */
const MUST_PASS = ['server-initialize', 'ping', 'logging-set-level', 'tools-list', 'dns-rebinding-protection'];

const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) env[k] = v;
  return env;
};

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
  let server: ChildProcess | undefined;
  const out = mkdtempSync(join(tmpdir(), 'crm-mcp-conformance-'));
  afterAll(() => {
    server?.kill('SIGTERM');
    rmSync(out, { recursive: true, force: true });
  });

  it('passes with the baseline, and the scenarios a real server must pass do pass', { timeout: 120_000 }, async () => {
    server = spawn(process.execPath, [CLI, '--sandbox', '--http', '--port', '0'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      server!.stdout!.on('data', (d) => {
        stdout += String(d);
        const m = /(http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      server!.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    });

    const run = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const p = spawn(CONFORMANCE, ['server', '--url', url, '--expected-failures', BASELINE, '-o', out], {
        cwd: ROOT,
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      p.stdout.on('data', (d) => (output += String(d)));
      p.stderr.on('data', (d) => (output += String(d)));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, output }));
    });
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
