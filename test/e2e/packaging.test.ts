/**
 * Distribution: the npm tarball installs and runs elsewhere, server.json (MCP registry) agrees with
 * package.json and the README, and the Claude Desktop extension (.mcpb) validates and runs.
 * Run after `npm run build`: `npm pack` here skips the prepare script so it does not rebuild dist/ under
 * test files running in parallel.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ALL_TOOLS } from '../../src/crms/registry.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  mcpName: string;
  description: string;
  bin: Record<string, string>;
  engines: { node: string };
  files: string[];
};
const serverJson = JSON.parse(readFileSync(join(ROOT, 'server.json'), 'utf8')) as {
  $schema: string;
  name: string;
  description: string;
  version: string;
  packages: Array<{
    registryType: string;
    identifier: string;
    version: string;
    transport: { type: string };
    environmentVariables: Array<{ name: string; description: string; isSecret?: boolean; isRequired?: boolean; format?: string }>;
  }>;
};

/** Our environment minus any CRM settings of the developer's shell, and minus npm's lifecycle variables. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k) || /^npm_(lifecycle|package)_/.test(k)) continue;
    env[k] = v;
  }
  return env;
};

function exec(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env: { ...cleanEnv(), npm_config_update_notifier: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Connects a real SDK client over stdio to a crm-mcp binary in sandbox mode and checks one real tool call. */
async function smokeTest(command: string, args: string[]): Promise<{ tools: string[]; version: string | undefined }> {
  const transport = new StdioClientTransport({ command, args: [...args, '--sandbox'], env: cleanEnv(), stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => (stderr += String(d)));
  const client = new Client({ name: 'packaging-test', version: '0' });
  try {
    await client.connect(transport);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    const r = (await client.callTool({ name: 'get_pipelines', arguments: { crm: 'kommo' } })) as CallToolResult;
    expect(r.isError, JSON.stringify(r.content).slice(0, 300)).toBeFalsy();
    const pipelines = (r.structuredContent as { pipelines: Array<{ name: string; stages: unknown[] }> }).pipelines;
    expect(pipelines.length).toBeGreaterThan(0);
    expect(pipelines[0]!.stages.length).toBeGreaterThan(0);
    return { tools, version: client.getServerVersion()?.version };
  } catch (err) {
    throw new Error(`${String(err)}\nserver stderr:\n${stderr}`);
  } finally {
    await client.close();
  }
}

/** Variable names in the README's Configuration table (first column, possibly several per row). */
function readmeEnvVars(): Set<string> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'));
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const firstCell = line.split('|')[1] ?? '';
    for (const m of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]!);
  }
  return names;
}

const tmp = mkdtempSync(join(tmpdir(), 'crm-mcp-packaging-'));
// Two node_modules trees and an unpacked bundle: thousands of files, slow to delete on a busy machine.
afterAll(() => rm(tmp, { recursive: true, force: true }), 120_000);

describe('MCP registry server.json', () => {
  it('matches package.json (name, version, npm identifier) and uses the 2025-12-11 schema', () => {
    expect(serverJson.$schema).toBe('https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json');
    expect(serverJson.name).toBe(pkg.mcpName);
    expect(serverJson.name).toMatch(/^io\.github\.[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/); // GitHub-authenticated namespace
    expect(serverJson.version).toBe(pkg.version);
    expect(serverJson.description.length).toBeGreaterThan(0);
    expect(serverJson.description.length).toBeLessThanOrEqual(100); // the registry's limit
    expect(serverJson.packages).toHaveLength(1);
    const [p] = serverJson.packages;
    expect(p).toMatchObject({ registryType: 'npm', identifier: pkg.name, version: pkg.version, transport: { type: 'stdio' } });
    expect(pkg.files).toContain('server.json');
  });

  it('lists the environment variables, each documented in the README, secrets marked', () => {
    const vars = serverJson.packages[0]!.environmentVariables;
    const names = vars.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        'KOMMO_SUBDOMAIN',
        'KOMMO_BASE_URL',
        'KOMMO_ACCESS_TOKEN',
        'KOMMO_CLIENT_ID',
        'KOMMO_CLIENT_SECRET',
        'KOMMO_REDIRECT_URI',
        'KOMMO_REFRESH_TOKEN',
        'BITRIX_WEBHOOK_BASE',
        'BITRIX_PLAN',
        'CRM_ALLOW_WRITES',
        'CRM_SAFE_MODE',
        'CRM_ALLOW_DELETE',
        'CRM_MCP_STORE',
      ]),
    );
    const documented = readmeEnvVars();
    for (const v of vars) {
      expect(documented, `${v.name} is not in the README's Configuration table`).toContain(v.name);
      expect(v.description, v.name).toBeTruthy();
      expect(v.isRequired ?? false, v.name).toBe(false); // any one CRM is enough, so no single variable is required
    }
    const secrets = vars
      .filter((v) => v.isSecret)
      .map((v) => v.name)
      .sort();
    expect(secrets).toEqual([
      'BITRIX_CLIENT_SECRET',
      'BITRIX_OUTBOUND_TOKEN',
      'BITRIX_REFRESH_TOKEN',
      'BITRIX_WEBHOOK_BASE',
      'KOMMO_ACCESS_TOKEN',
      'KOMMO_CLIENT_SECRET',
      'KOMMO_REFRESH_TOKEN',
      'KOMMO_WEBHOOK_SECRET',
    ]);
  });
});

// The two slow builds (npm install, npm ci + mcpb pack) run side by side.
describe.concurrent('npm package', () => {
  it('packs only what runs, installs elsewhere and serves the sandbox over stdio', { timeout: 180_000 }, async () => {
    const packDir = join(tmp, 'pack');
    mkdirSync(packDir);
    const packed = await exec('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], ROOT);
    expect(packed.code, packed.stderr).toBe(0);
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path);

    for (const needed of [
      'package.json',
      'README.md',
      'server.json',
      pkg.bin['crm-mcp']!,
      'dist/server.js',
      'dist/sandbox/kommo/index.js',
      'dist/sandbox/bitrix24/index.js',
    ]) {
      expect(files, needed).toContain(needed);
    }
    const unwanted = files.filter(
      (f) =>
        /^(test|src|bench|scripts|node_modules|test-results|\.crm-mcp|\.mcpb-staging)\//.test(f) ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
        /(^|\/)\.env/.test(f) ||
        /(^|\/)store\.json$/.test(f) ||
        /\.(map|tgz|mcpb)$/.test(f) ||
        /\.test\.js$/.test(f),
    );
    expect(unwanted).toEqual([]);

    // A fresh project elsewhere, installing the tarball the way a user installs the package.
    const app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'crm-mcp-install-check', version: '0.0.0', private: true }));
    const installed = await exec(
      'npm',
      ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(packDir, info!.filename)],
      app,
    );
    expect(installed.code, installed.stderr).toBe(0);
    const bin = join(app, 'node_modules', '.bin', 'crm-mcp');
    expect(existsSync(bin)).toBe(true);
    // Dev dependencies stay out of a user's install.
    expect(existsSync(join(app, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);

    const { tools, version } = await smokeTest(bin, []); // runs through the shebang, as npx does
    expect(tools).toContain('get_pipelines');
    expect(version).toBe(pkg.version);

    // The README's tarball route: `config claude --package FILE` prints an npx entry that runs the tarball.
    const printed = await exec(
      process.execPath,
      [join(ROOT, 'dist', 'cli.js'), 'config', 'claude', '--sandbox', '--package', join(packDir, info!.filename)],
      ROOT,
    );
    expect(printed.code, printed.stderr).toBe(0);
    const entry = (JSON.parse(printed.stdout) as { mcpServers: { crm: { command: string; args: string[] } } }).mcpServers.crm;
    expect(entry.command).toBe('npx');
    expect(entry.args).toEqual(['-y', `--package=${join(packDir, info!.filename)}`, 'crm-mcp', '--sandbox']);
    // smokeTest adds --sandbox itself.
    const viaNpx = await smokeTest(entry.command, entry.args.slice(0, -1));
    expect(viaNpx.tools).toContain('get_pipelines');
  });

  it("the README's clone route: `node dist/cli.js config claude --sandbox` prints an entry that runs", { timeout: 60_000 }, async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('node dist/cli.js config claude --sandbox');
    const printed = await exec(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'config', 'claude', '--sandbox'], ROOT);
    expect(printed.code, printed.stderr).toBe(0);
    const entry = (JSON.parse(printed.stdout) as { mcpServers: { crm: { command: string; args: string[] } } }).mcpServers.crm;
    expect(entry.command).toBe(process.execPath);
    expect(entry.args.at(-1)).toBe('--sandbox');
    // smokeTest adds --sandbox itself.
    const { tools } = await smokeTest(entry.command, entry.args.slice(0, -1));
    expect(tools).toContain('get_pipelines');
  });
});

describe.concurrent('Claude Desktop extension (.mcpb)', () => {
  const staging = join(tmp, 'mcpb-staging');
  const out = join(tmp, 'crm-mcp.mcpb');

  interface Manifest {
    manifest_version: string;
    name: string;
    version: string;
    server: { type: string; entry_point: string; mcp_config: { command: string; args: string[]; env: Record<string, string> } };
    tools: Array<{ name: string; description: string }>;
    user_config: Record<string, { type: string; sensitive?: boolean; default?: unknown }>;
    compatibility: { runtimes: { node: string } };
  }

  it('builds the bundle: mcpb validate and pack pass, and the bundled server runs', { timeout: 180_000 }, async () => {
    const built = await exec(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--staging', staging, '--out', out], ROOT);
    expect(built.code, `${built.stdout}\n${built.stderr}`).toBe(0);
    expect(built.stdout).toMatch(/Manifest schema validation passes/);
    expect(statSync(out).size).toBeGreaterThan(100_000);

    // Unpack the bundle as Claude Desktop does (mcpb pack drops files by its own ignore list) and run its entry point.
    const unpacked = join(tmp, 'mcpb-unpacked');
    const un = await exec(join(ROOT, 'node_modules', '.bin', 'mcpb'), ['unpack', out, unpacked], ROOT);
    expect(un.code, `${un.stdout}\n${un.stderr}`).toBe(0);
    const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as Manifest;
    const entry = join(unpacked, manifest.server.entry_point);
    expect(existsSync(entry)).toBe(true);
    expect(existsSync(join(unpacked, 'server', 'node_modules', 'typescript'))).toBe(false);
    const { version } = await smokeTest(process.execPath, [entry]);
    expect(version).toBe(pkg.version);
  });

  it('the manifest: passes mcpb validate, generated from the registry, secrets sensitive, read-only by default', { timeout: 60_000 }, async () => {
    const dir = join(tmp, 'manifest-only');
    const made = await exec(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--manifest-only', '--staging', dir], ROOT);
    expect(made.code, made.stderr).toBe(0);
    const validated = await exec(join(ROOT, 'node_modules', '.bin', 'mcpb'), ['validate', join(dir, 'manifest.json')], ROOT);
    expect(validated.code, `${validated.stdout}\n${validated.stderr}`).toBe(0);
    expect(validated.stdout).toMatch(/Manifest schema validation passes/);

    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    expect(manifest.manifest_version).toBe('0.3');
    expect(manifest.name).toBe(pkg.name);
    expect(manifest.version).toBe(pkg.version);
    expect(manifest.server.type).toBe('node');
    expect(manifest.server.mcp_config.args).toEqual([`\${__dirname}/${manifest.server.entry_point}`]);
    expect(manifest.compatibility.runtimes.node).toBe(pkg.engines.node);
    expect(manifest.tools.map((t) => t.name)).toEqual(ALL_TOOLS.map((t) => t.name));
    for (const t of manifest.tools) expect(t.description.length, t.name).toBeGreaterThan(10);

    const uc = manifest.user_config;
    for (const secret of ['kommo_access_token', 'bitrix_webhook_url']) expect(uc[secret]?.sensitive, secret).toBe(true);
    expect(uc.allow_writes).toMatchObject({ type: 'boolean', default: false });
    expect(uc.safe_mode).toMatchObject({ type: 'boolean', default: true });
    expect(uc.allow_delete).toMatchObject({ type: 'boolean', default: false });

    // Every env entry maps a documented variable to a declared user_config field.
    const documented = readmeEnvVars();
    for (const [name, value] of Object.entries(manifest.server.mcp_config.env)) {
      expect(documented, name).toContain(name);
      const key = /^\$\{user_config\.([a-z_]+)\}$/.exec(value)?.[1];
      expect(key && uc[key], `${name}=${value}`).toBeTruthy();
    }
  });
});
