/** `crm-mcp config claude`: valid JSON in the mcpServers shape; secrets only with --with-secrets. */
import { describe, expect, it } from 'vitest';
import { CLI, runCli, start, tempHome } from '../helpers/cli.js';

type Entry = { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string> }> };

const TOKEN = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzY29wZXMiOlsiY3JtIl19.c2lnbmF0dXJlLXNlY3JldA';
const HOOK_SECRET = 'k3y9secret7xq2';
const env = () => ({
  CRM_MCP_HOME: tempHome(),
  KOMMO_SUBDOMAIN: 'acme',
  KOMMO_ACCESS_TOKEN: TOKEN,
  BITRIX_WEBHOOK_BASE: `https://acme.bitrix24.com/rest/1/${HOOK_SECRET}/`,
  BITRIX_PLAN: 'enterprise',
  CRM_ALLOW_WRITES: 'true',
});

describe('crm-mcp config claude', () => {
  it('prints a valid mcpServers entry with placeholders instead of secrets', async () => {
    const e0 = env();
    const r = await runCli(['config', 'claude'], e0);
    expect(r.code).toBe(0);
    const entry = JSON.parse(r.stdout) as Entry;
    expect(Object.keys(entry)).toEqual(['mcpServers']);
    const crm = entry.mcpServers.crm!;
    expect(crm.command).toBe(process.execPath);
    expect(crm.args).toEqual([CLI]);
    expect(crm.env).toEqual({
      KOMMO_SUBDOMAIN: 'acme',
      KOMMO_ACCESS_TOKEN: '<your KOMMO_ACCESS_TOKEN>',
      BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/<your webhook secret>/',
      BITRIX_PLAN: 'enterprise',
      CRM_ALLOW_WRITES: 'true',
      // The store's location is part of the setup: the server must find the tokens where they are.
      CRM_MCP_HOME: e0.CRM_MCP_HOME,
    });
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    expect(r.stdout + r.stderr).not.toContain(HOOK_SECRET);
    expect(r.stderr).toMatch(/placeholders/);
  });

  it('pastes the secrets only with --with-secrets', async () => {
    const r = await runCli(['config', 'claude', '--with-secrets', '--name', 'my-crm'], env());
    expect(r.code).toBe(0);
    const e = (JSON.parse(r.stdout) as Entry).mcpServers['my-crm']!.env;
    expect(e.KOMMO_ACCESS_TOKEN).toBe(TOKEN);
    expect(e.BITRIX_WEBHOOK_BASE).toBe(`https://acme.bitrix24.com/rest/1/${HOOK_SECRET}/`);
  });

  it('uses npx on request, and the sandbox needs no variables', async () => {
    const r = await runCli(['config', 'claude', '--npx', '--sandbox'], { CRM_MCP_HOME: tempHome() });
    expect(r.code).toBe(0);
    const crm = (JSON.parse(r.stdout) as Entry).mcpServers.crm!;
    expect(crm.command).toBe('npx');
    expect(crm.args).toEqual(['-y', expect.stringMatching(/^crm-mcp@\d+\.\d+\.\d+/), '--sandbox']);
    expect(crm.env).toEqual({});
    // npx from the registry works only once the package is published: the note says so and names the routes that work.
    expect(r.stderr).toMatch(/only once that version is published/);
    expect(r.stderr).toMatch(/--package/);
  });

  it('--package FILE runs a local tarball through npx; a missing file is refused', async () => {
    const dir = tempHome();
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const tgz = join(dir, 'crm-mcp-0.0.0.tgz');
    writeFileSync(tgz, '');
    const r = await runCli(['config', 'claude', '--sandbox', '--package', tgz], { CRM_MCP_HOME: dir });
    expect(r.code, r.stderr).toBe(0);
    const crm = (JSON.parse(r.stdout) as Entry).mcpServers.crm!;
    expect(crm).toMatchObject({ command: 'npx', args: ['-y', `--package=${tgz}`, 'crm-mcp', '--sandbox'] });
    expect(r.stderr).not.toMatch(/only once/);
    const missing = await runCli(['config', 'claude', '--sandbox', '--package', join(dir, 'nope.tgz')], { CRM_MCP_HOME: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--package/);
  });

  it('--sandbox carries the mode asked for: the safety and tool settings, never the credentials', async () => {
    const home = tempHome();
    const r = await runCli(['config', 'claude', '--sandbox'], {
      ...env(),
      CRM_MCP_HOME: home,
      CRM_SAFE_MODE: 'false',
      CRM_ALLOW_DELETE: 'true',
      CRM_TOOLSETS: 'core,activity,metadata',
    });
    expect(r.code, r.stderr).toBe(0);
    const crm = (JSON.parse(r.stdout) as Entry).mcpServers.crm!;
    expect(crm.args).toEqual([CLI, '--sandbox']);
    // The sandbox's connections are its emulators: no CRM variable; its store is in memory: no data directory.
    expect(crm.env).toEqual({ CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_DELETE: 'true', CRM_TOOLSETS: 'core,activity,metadata' });
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
    expect(r.stdout + r.stderr).not.toContain(HOOK_SECRET);
  });

  it('--sandbox refuses a setting the sandbox server would refuse', async () => {
    const r = await runCli(['config', 'claude', '--sandbox'], { CRM_MCP_HOME: tempHome(), CRM_ALLOW_WRITES: 'maybe' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/CRM_ALLOW_WRITES/);
  });

  it.each([
    ['create-only', { CRM_ALLOW_WRITES: 'true' }, /Mode: create-only/],
    ['read-only', {}, /Mode: read-only/],
  ] as Array<[string, Record<string, string>, RegExp]>)(
    'the --sandbox --http banner prints the Claude Desktop entry of the mode it runs in (%s)',
    { timeout: 60_000 },
    async (_mode, safety, modeLine) => {
      const server = start(['--sandbox', '--http', '--port', '0'], { CRM_MCP_HOME: tempHome(), ...safety });
      try {
        await server.waitFor(/Press Ctrl\+C to stop\./);
        const out = server.stdout();
        expect(out).toMatch(modeLine);
        const json = out.slice(out.indexOf('{', out.indexOf('Claude Desktop')), out.lastIndexOf('}') + 1);
        const crm = (JSON.parse(json) as Entry).mcpServers.crm!;
        expect(crm.args.at(-1)).toBe('--sandbox');
        expect(crm.env).toEqual(safety);
      } finally {
        server.child.kill('SIGTERM');
        await server.done;
      }
    },
  );

  it('refuses a setup the server would refuse, printing no JSON', async () => {
    const r = await runCli(['config', 'claude'], { ...env(), CRM_SAFE_MODE: 'sometimes' });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/CRM_SAFE_MODE/);
    expect(r.stderr).not.toContain(TOKEN);
  });
});
