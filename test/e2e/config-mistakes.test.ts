/**
 * Configuration mistakes that used to pass silently (issue 9, findings 5 and 11): unknown tool names, flags
 * that do nothing, store addresses with a scheme we do not speak, an open bind without a token, an unwritable
 * data directory; and /healthz telling anonymous callers nothing but ready or not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configWarnings } from '../../src/config/checks.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { openStore, storeSpecProblem } from '../../src/store/store.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { baseEnv, CLI, runCli, start, tempHome } from '../helpers/cli.js';

const base = { KOMMO_SUBDOMAIN: 'acme', KOMMO_ACCESS_TOKEN: 'tok_1234567890' };

function problems(env: Record<string, string>, configPath?: string): string[] {
  try {
    loadConfig({ env, configPath });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'crm-mcp-cfg-mistakes-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('unknown tool names are configuration errors', () => {
  it('CRM_TOOLS with a name that does not exist names it and lists the real ones', () => {
    const p = problems({ ...base, CRM_TOOLS: 'get_lead,nonexistent_tool' }).join('\n');
    expect(p).toMatch(/^CRM_TOOLS: .*"nonexistent_tool"/);
    expect(p).not.toMatch(/"get_lead"/);
    for (const real of ['get_lead', 'list_leads', 'create_contact', 'kommo_request', 'bitrix_call', 'delete_contact']) expect(p).toContain(real);
  });

  it('CRM_EXCLUDE_TOOLS=bogus is refused too', () => {
    expect(problems({ ...base, CRM_EXCLUDE_TOOLS: 'bogus' }).join('\n')).toMatch(/^CRM_EXCLUDE_TOOLS: .*"bogus"/);
  });

  it('known names still work', () => {
    expect(loadConfig({ env: { ...base, CRM_TOOLS: 'get_lead, list_leads', CRM_EXCLUDE_TOOLS: 'kommo_request' } }).tools).toEqual({
      include: ['get_lead', 'list_leads'],
      exclude: ['kommo_request'],
      toolsets: ['core', 'activity'],
    });
  });

  it('a config file with an unknown tool is refused, naming the file key', () => {
    const file = join(dir, 'tools.json');
    writeFileSync(file, JSON.stringify({ connections: { eu: { provider: 'kommo', subdomain: 'eu', access_token: 'abcdefgh' } }, exclude_tools: ['get_leed'] }));
    const p = problems({}, file).join('\n');
    expect(p).toContain(`${file}: exclude_tools`);
    expect(p).toContain('"get_leed"');
  });

  it('the binary exits 2 naming CRM_TOOLS before serving', async () => {
    const r = await runCli([], { ...base, CRM_MCP_HOME: tempHome(), CRM_TOOLS: 'get_lead,nonexistent_tool' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_TOOLS: .*nonexistent_tool/);
    expect(r.stderr).not.toMatch(/crm-mcp starting/);
  });
});

describe('flags that do nothing are warned about', () => {
  it.each([
    [{ CRM_ALLOW_DELETE: 'true' }, /^CRM_ALLOW_DELETE=true has no effect without CRM_ALLOW_WRITES=true/],
    [{ CRM_ALLOW_WRITES: 'true', CRM_ALLOW_DELETE: 'true' }, /^CRM_ALLOW_DELETE=true has no effect while safe mode is on/],
    [{ CRM_SAFE_MODE: 'false' }, /^CRM_SAFE_MODE=false has no effect without CRM_ALLOW_WRITES=true/],
    [{ CRM_ALLOW_ADMIN: 'true' }, /^CRM_ALLOW_ADMIN=true has no effect/],
    [{ CRM_ALLOW_WRITES: 'true', CRM_ALLOW_ADMIN: 'true' }, /^CRM_ALLOW_ADMIN=true has no effect/],
  ])('%o', (flags, warning) => {
    const w = configWarnings(loadConfig({ env: { ...base, ...flags } }));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(warning);
    expect(w[0]).toMatch(/connection kommo\)$/);
  });

  it('no warning for the defaults or for flags that take effect', () => {
    expect(configWarnings(loadConfig({ env: base }))).toEqual([]);
    expect(
      configWarnings(loadConfig({ env: { ...base, CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_DELETE: 'true', CRM_ALLOW_ADMIN: 'true' } })),
    ).toEqual([]);
  });

  it('serve logs the warning on stderr at start', async () => {
    const p = start(['--sandbox', '--http', '--port', '0'], { CRM_MCP_HOME: tempHome(), CRM_ALLOW_DELETE: 'true' });
    await p.waitFor(/serving MCP/);
    p.child.kill('SIGTERM');
    const { stderr } = await p.done;
    const warn = stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .find((l) => /CRM_ALLOW_DELETE/.test(l.msg));
    expect(warn?.level).toBe(40); // pino's warn
    expect(warn?.msg).toMatch(/no effect without CRM_ALLOW_WRITES=true/);
  });

  describe('doctor', () => {
    let kommo: KommoEmulator;
    beforeAll(async () => {
      kommo = await startKommoEmulator({ demo: false });
    });
    afterAll(async () => {
      await kommo?.close();
    });

    it('reports CRM_SAFE_MODE=false without writes as a warning (exit 3) after reaching the account', async () => {
      kommo.resetLog();
      const env = {
        CRM_MCP_HOME: tempHome(),
        KOMMO_BASE_URL: kommo.url,
        KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken({ expiresInSec: 200 * 86_400 }),
        CRM_SAFE_MODE: 'false',
      };
      const r = await runCli(['doctor', '--json'], env);
      const report = JSON.parse(r.stdout) as { exit_code: number; problems: Array<{ severity: string; check: string; message: string; fix: string }> };
      expect(report.problems).toHaveLength(1);
      expect(report.problems[0]).toMatchObject({ severity: 'warn', check: 'config' });
      expect(report.problems[0]!.message).toMatch(/^CRM_SAFE_MODE=false has no effect/);
      expect(report.problems[0]!.fix).toMatch(/CRM_SAFE_MODE/);
      expect(r.code).toBe(3);
      // A warning, not a stop: the account was still checked.
      expect(kommo.requests.filter((q) => q.path === '/api/v4/account')).toHaveLength(1);
    });
  });
});

describe('CRM_MCP_STORE schemes', () => {
  it.each(['ftp://x', 'http://cache.local/store', 'redis:/localhost', 's3://bucket/key', 'ftp://user:hunter2pass@x'])(
    '%s is refused naming CRM_MCP_STORE and the accepted forms',
    (spec) => {
      const p = problems({ ...base, CRM_MCP_STORE: spec }).join('\n');
      expect(p).toMatch(/^CRM_MCP_STORE: /);
      expect(p).toMatch(/redis:\/\//);
      expect(p).toMatch(/file path/);
      expect(p).not.toContain('hunter2pass');
    },
  );

  it.each([
    'memory',
    'store.json',
    './data/store.json',
    '/var/lib/crm/store.json',
    'file:/tmp/s.json',
    'file:///tmp/s.json',
    'redis://127.0.0.1:6379/0',
    'rediss://cache:6380',
    'C:\\crm\\store.json',
    'D:/crm/store.json',
  ])('%s is accepted', (spec) => {
    expect(storeSpecProblem(spec)).toBeUndefined();
  });

  it('a config file store key with a bad scheme names the file key', () => {
    const file = join(dir, 'store.json');
    writeFileSync(file, JSON.stringify({ connections: { eu: { provider: 'kommo', subdomain: 'eu', access_token: 'abcdefgh' } }, store: 'ftp://x' }));
    expect(problems({}, file).join('\n')).toContain(`${file}: store: "ftp://x" is not a store address`);
  });

  it('the binary refuses ftp://x without creating a folder "ftp:"', async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI], {
        cwd,
        env: { ...baseEnv(), ...base, CRM_MCP_HOME: join(cwd, 'home'), CRM_MCP_STORE: 'ftp://x' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += String(d)));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_MCP_STORE/);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('openStore refuses it too (callers that skip the config loader)', async () => {
    await expect(openStore('ftp://x')).rejects.toThrow(/CRM_MCP_STORE/);
    expect(existsSync('ftp:')).toBe(false);
  });
});

describe('an unwritable data directory names the variable', () => {
  it('CRM_MCP_HOME under a regular file (fails even for root)', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const r = await runCli([], { ...base, CRM_MCP_HOME: join(file, 'home') });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toMatch(/CRM_MCP_HOME/);
    expect(r.stderr).toMatch(/CRM_MCP_STORE/);
    expect(r.stderr).not.toMatch(/^crm-mcp: E[A-Z]+:/m);
  });

  it('CRM_MCP_STORE under a regular file', async () => {
    const file = join(dir, 'not-a-dir-2');
    writeFileSync(file, 'x');
    const r = await runCli([], { ...base, CRM_MCP_HOME: tempHome(), CRM_MCP_STORE: join(file, 'store.json') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CRM_MCP_STORE points at/);
  });
});

describe('--host 0.0.0.0 without a token', () => {
  it('is refused before anything is logged as starting', async () => {
    const r = await runCli(['--sandbox', '--http', '--host', '0.0.0.0', '--port', '0'], { CRM_MCP_HOME: tempHome() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/CRM_MCP_HTTP_TOKEN/);
    expect(r.stderr).not.toMatch(/starting/);
    expect(r.stdout).not.toMatch(/serving/);
  });
});

describe('/healthz', () => {
  it('tells a caller without the token only ready or not; the token holder gets the details', async () => {
    const token = 'healthz-token-0123456789abcdef';
    const p = start(['--sandbox', '--http', '--port', '0'], { CRM_MCP_HOME: tempHome(), CRM_MCP_HTTP_TOKEN: token });
    const url = (await p.waitFor(/serving MCP \(Streamable HTTP\) at (\S+)/))[1]!.replace(/\/mcp$/, '/healthz');
    try {
      const anon = await fetch(url);
      expect(anon.status).toBe(200);
      expect(await anon.json()).toEqual({ status: 'ok' });
      const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-token-at-all-0000' } });
      expect(wrong.status).toBe(200);
      expect(await wrong.json()).toEqual({ status: 'ok' });
      const authed = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      const body = (await authed.json()) as { status: string; connections: Array<{ name: string }> };
      expect(body.status).toBe('ok');
      expect(body.connections.map((c) => c.name).sort()).toEqual(['bitrix24', 'kommo']);
    } finally {
      p.child.kill('SIGTERM');
      await p.done;
    }
  });

  it('without a token configured (loopback) it gives no details to anyone', async () => {
    const p = start(['--sandbox', '--http', '--port', '0'], { CRM_MCP_HOME: tempHome() });
    const url = (await p.waitFor(/serving MCP \(Streamable HTTP\) at (\S+)/))[1]!.replace(/\/mcp$/, '/healthz');
    try {
      const text = await (await fetch(url)).text();
      expect(JSON.parse(text)).toEqual({ status: 'ok' });
      expect(text).not.toMatch(/kommo|bitrix/);
    } finally {
      p.child.kill('SIGTERM');
      await p.done;
    }
  });
});

describe('toolsets (CRM_TOOLSETS)', () => {
  const base = { KOMMO_SUBDOMAIN: 'acme', KOMMO_ACCESS_TOKEN: 'abcdefgh12345678' };
  it('unset: the default toolsets; `all` and lists are read; unknown names are refused with the valid ones', () => {
    expect(loadConfig({ env: base }).tools.toolsets).toEqual(['core', 'activity']);
    expect(loadConfig({ env: { ...base, CRM_TOOLSETS: 'all' } }).tools.toolsets).toEqual([
      'core',
      'activity',
      'followup',
      'metadata',
      'audit',
      'companies',
      'calls',
      'incoming',
      'import',
      'events',
      'raw',
    ]);
    expect(loadConfig({ env: { ...base, CRM_TOOLSETS: 'core, raw' } }).tools.toolsets).toEqual(['core', 'raw']);
    expect(() => loadConfig({ env: { ...base, CRM_TOOLSETS: 'core,rawr' } })).toThrow(
      /CRM_TOOLSETS: unknown toolset "rawr".*core, activity, followup, metadata, audit, companies, calls, incoming, import, events, raw/,
    );
  });
});
