/**
 * The plug-in contract, proved with a third CRM (issue 15): a copy of the sources gets the "acme" wing
 * (test/fixtures/acme: its env rows, connection, one read capability, a doctor check, an emulator, metrics
 * labels) as its own folders plus ONE line in src/crms/registry.ts, is built, and then
 * - the diff against src/ is exactly those folders and that line, and no other file mentions acme;
 * - `--sandbox` starts its emulator beside the others and answers for it through a real MCP client;
 * - configured alone, it lists only the tools its capabilities allow;
 * - `doctor` shows it; `/metrics` labels its requests.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { baseEnv, freePort } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The one line a CRM adds to the registry's list of modules. */
const REGISTRY_LINE = "  (await import('./acme/module.js')).acmeModule,";

let dir: string;
let cli: string;
let emulator: { url: string; token: string; requests: string[]; close(): Promise<void> };

function walk(base: string, sub = '', out: string[] = []): string[] {
  for (const name of readdirSync(join(base, sub))) {
    const rel = join(sub, name);
    if (statSync(join(base, rel)).isDirectory()) walk(base, rel, out);
    else out.push(rel);
  }
  return out;
}

const run = (args: string[], env: Record<string, string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { ...baseEnv(), CRM_MCP_HOME: join(dir, 'home'), ...env }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

async function stdioClient(args: string[], env: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'third-crm', version: '0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [cli, ...args],
      env: { ...baseEnv(), CRM_MCP_HOME: join(dir, 'home'), ...env },
      stderr: 'pipe',
    }),
  );
  return client;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crm-mcp-third-crm-'));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) cpSync(join(ROOT, f), join(dir, f));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // The new CRM: its folders...
  cpSync(join(ROOT, 'test/fixtures/acme/crm'), join(dir, 'src/crms/acme'), { recursive: true });
  cpSync(join(ROOT, 'test/fixtures/acme/sandbox'), join(dir, 'src/sandbox/acme'), { recursive: true });
  // ...and one line in the registry, after the last module.
  const registry = join(dir, 'src/crms/registry.ts');
  const lines = readFileSync(registry, 'utf8').split('\n');
  const entry = /^\s+\(await import\('\.\/[a-z0-9]+\/module\.js'\)\)\.[A-Za-z0-9]+Module,$/;
  let last = -1;
  lines.forEach((l, i) => {
    if (entry.test(l)) last = i;
  });
  expect(last, 'the registry lists its modules one line each').toBeGreaterThan(0);
  lines.splice(last + 1, 0, REGISTRY_LINE);
  writeFileSync(registry, lines.join('\n'));
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json')], { cwd: dir }, (err, stdout) =>
      err ? reject(new Error(`the copy with the acme wing does not build:\n${stdout}`)) : resolve(),
    ),
  );
  cli = join(dir, 'dist/cli.js');
  const { startAcmeEmulator } = (await import(pathToFileURL(join(dir, 'dist/sandbox/acme/index.js')).href)) as {
    startAcmeEmulator(): Promise<typeof emulator>;
  };
  emulator = await startAcmeEmulator();
}, 180_000);

afterAll(async () => {
  await emulator?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a third CRM is its folder and one registry line', () => {
  it('the copy differs from src/ by the two acme folders and one added registry line, and no other file mentions acme', () => {
    const original = new Set(walk(join(ROOT, 'src')));
    const copy = walk(join(dir, 'src'));
    const added = copy.filter((f) => !original.has(f)).sort();
    expect(added).toEqual(['crms/acme/module.ts', 'sandbox/acme/index.ts']);
    const changed = copy.filter((f) => original.has(f) && readFileSync(join(dir, 'src', f), 'utf8') !== readFileSync(join(ROOT, 'src', f), 'utf8'));
    expect(changed).toEqual(['crms/registry.ts']);
    const before = readFileSync(join(ROOT, 'src/crms/registry.ts'), 'utf8').split('\n');
    const after = readFileSync(join(dir, 'src/crms/registry.ts'), 'utf8').split('\n');
    expect(after.filter((l) => !before.includes(l))).toEqual([REGISTRY_LINE]);
    expect(after.length).toBe(before.length + 1);
    // The CRM named as a kind ('acme') or a folder (acme/), not the examples' placeholder accounts (acme.kommo.com).
    const mentions = copy.filter((f) => /['"`]acme['"`]|\/acme\//i.test(readFileSync(join(dir, 'src', f), 'utf8'))).map((f) => relative('', f));
    expect(mentions.sort()).toEqual(['crms/acme/module.ts', 'crms/registry.ts']);
  });

  it('--sandbox starts its emulator beside the others and answers for it through a real MCP client', async () => {
    const client = await stdioClient(['--sandbox'], {});
    try {
      const account = (await client.callTool({ name: 'get_account', arguments: { crm: 'acme' } })) as CallToolResult;
      expect(account.isError).toBeFalsy();
      expect(account.structuredContent).toMatchObject({ provider: 'acme', name: 'Acme Demo' });
      const pipelines = (await client.callTool({ name: 'get_pipelines', arguments: { crm: 'acme' } })) as CallToolResult;
      expect(pipelines.isError).toBeFalsy();
      expect(JSON.stringify(pipelines.structuredContent)).toContain('"name":"Main"');
      // The other CRMs are still there.
      const kommo = (await client.callTool({ name: 'get_pipelines', arguments: { crm: 'kommo' } })) as CallToolResult;
      expect(kommo.isError).toBeFalsy();
    } finally {
      await client.close();
    }
  });

  it('configured alone, it lists only the tools its capabilities allow (pipelines) and those that need none', async () => {
    const env = { ACME_BASE_URL: emulator.url, ACME_TOKEN: emulator.token, CRM_TOOLSETS: 'all', CRM_ALLOW_WRITES: 'true' };
    const client = await stdioClient([], env);
    try {
      const { tools } = await client.listTools();
      // Every toolset on and writes allowed: still only the tools that need no capability (the account, the audit
      // log, the change feed over this server's event log) and the one its `pipelines` capability brings; no lead,
      // contact, note, task, history, import or raw tool.
      expect(tools.map((t) => t.name).sort()).toEqual(['get_account', 'get_audit_log', 'get_pipelines', 'list_changes']);
      const r = (await client.callTool({ name: 'get_pipelines', arguments: {} })) as CallToolResult;
      expect(r.isError).toBeFalsy();
      expect(emulator.requests).toContain('GET /api/pipelines');
    } finally {
      await client.close();
    }
  });

  it('doctor shows it, with its label and its own check', async () => {
    const r = await run(['doctor', '--json'], { ACME_BASE_URL: emulator.url, ACME_TOKEN: emulator.token });
    const report = JSON.parse(r.stdout) as {
      exit_code: number;
      connections: Array<{ provider: string; account: { name: string }; checks: Array<{ check: string; status: string }> }>;
    };
    expect(report.connections).toHaveLength(1);
    expect(report.connections[0]).toMatchObject({ provider: 'acme', account: { name: 'Acme Demo' } });
    expect(report.connections[0]!.checks).toContainEqual(expect.objectContaining({ check: 'account', status: 'ok' }));
    expect(r.stdout).not.toContain(emulator.token);
  });

  it('/metrics labels its requests with its provider and its own endpoint labels', async () => {
    const token = 'third-crm-token-0123456789abcdef';
    const child = spawn(process.execPath, [cli, '--http', '--port', String(await freePort())], {
      env: { ...baseEnv(), CRM_MCP_HOME: join(dir, 'home-http'), ACME_BASE_URL: emulator.url, ACME_TOKEN: emulator.token, CRM_MCP_HTTP_TOKEN: token },
    });
    try {
      // It says where it serves once it listens (on stdout or stderr).
      const mcpUrl = await new Promise<string>((resolve, reject) => {
        let seen = '';
        const look = (d: Buffer) => {
          seen += String(d);
          const m = /serving MCP \(Streamable HTTP\) at (\S+)/.exec(seen);
          if (m) resolve(m[1]!);
        };
        child.stdout.on('data', look);
        child.stderr.on('data', look);
        child.on('exit', (code) => reject(new Error(`exited ${code}: ${seen}`)));
      });
      const url = mcpUrl.replace(/\/mcp$/, '');
      const client = new Client({ name: 'third-crm-http', version: '0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
      expect(((await client.callTool({ name: 'get_pipelines', arguments: {} })) as CallToolResult).isError).toBeFalsy();
      await client.close();
      const metrics = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
      expect(metrics).toMatch(/crm_mcp_crm_requests_total\{[^}]*provider="acme"[^}]*endpoint="\/api\/pipelines"/);
    } finally {
      child.kill();
    }
  });
});
