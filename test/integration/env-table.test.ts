/**
 * Issue 11: one declarative environment table (src/config/env-table.ts) from which the parser, the README
 * table, server.json, `config claude`, the secret list and doctor's hints are generated or checked.
 * Expectations here are written out by hand (names, masks, parsed connections), not derived from the table.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';

// Counts reads per path, passing every call through, so "the config file is read once" is observed, not assumed.
const reads = vi.hoisted(() => new Map<string, number>());
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((...args: Parameters<typeof fs.readFileSync>) => {
    const p = String(args[0]);
    reads.set(p, (reads.get(p) ?? 0) + 1);
    return fs.readFileSync(...args);
  }) as typeof fs.readFileSync;
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
});

import { DEFAULT_AUDIT_KEEP, DEFAULT_AUDIT_MAX_BYTES } from '../../src/audit/audit-log.js';
import { buildEntry } from '../../src/commands/config-claude.js';
import { SECRET_VARS } from '../../src/commands/common.js';
import { diagnose } from '../../src/commands/doctor.js';
import { loadConfig, parseConfig, type ConfigError } from '../../src/config/config.js';
import { configTable, CONFIG_BEGIN, CONFIG_END, manifestEnvProblems, registryEnvVars, renderConfigReadme } from '../../src/config/env-docs.js';
import { ENV_TABLE, envVar, namesOf, V } from '../../src/config/env-table.js';
import { GENERIC_FIX } from '../../src/config/hints.js';
import { BITRIX24_ENV } from '../../src/crms/bitrix24/env.js';
import { DEFAULT_FLAGS } from '../../src/policy/policy.js';
import { startBitrix } from '../helpers/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const serverJson = JSON.parse(readFileSync(join(ROOT, 'server.json'), 'utf8')) as {
  packages: Array<{ environmentVariables: Array<{ name: string; isSecret?: boolean }> }>;
};

const ALL_NAMES = new Set(ENV_TABLE.flatMap(namesOf));
const USER_NAMES = ENV_TABLE.filter((v) => !v.internal).flatMap(namesOf);

function files(dir: string, ext = '.ts'): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}

/** Constants such as KOMMO_RPS or BITRIX_PLANS look like variable names but are declared in code. */
function declaredIdentifiers(texts: string[]): Set<string> {
  const out = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(/\b(?:const|let|var|function|class|enum|type|interface)\s+([A-Z][A-Z0-9_]+)\b/g)) out.add(m[1]!);
  return out;
}

/**
 * The environment variable names a source text uses: every `env.X` / `env['X']` read (any name), and every
 * crm-mcp-looking name (CRM_, KOMMO_, AMOCRM_, BITRIX_, BITRIX24_) in code, strings or messages, unless declared
 * as a constant. `prefixed: false` skips the second part (the emulators' CRM_DEAL & co. are CRM data, not variables).
 */
/** CRM API parameter names that look like our variables (Bitrix24 telephony.externalCall.register, calls fact sheet 3.3). */
const API_NAMES = new Set(['CRM_CREATE', 'CRM_ENTITY_TYPE', 'CRM_ENTITY_ID']);

function envNamesIn(text: string, declared: Set<string>, prefixed = true): Set<string> {
  const out = new Set<string>();
  declared = new Set([...declared, ...API_NAMES]);
  for (const m of text.matchAll(/\benv\??\.([A-Z_][A-Z0-9_]*)\b/g)) out.add(m[1]!);
  for (const m of text.matchAll(/\benv\[\s*['"`]([A-Z_][A-Z0-9_]*)['"`]\s*\]/g)) out.add(m[1]!);
  if (prefixed) for (const m of text.matchAll(/\b(?:CRM|KOMMO|AMOCRM|BITRIX24|BITRIX)_[A-Z0-9_]+\b/g)) if (!declared.has(m[0])) out.add(m[0]);
  return out;
}

describe('every variable is in the table', () => {
  const srcFiles = files(join(ROOT, 'src'));
  const texts = new Map(srcFiles.map((f) => [f, readFileSync(f, 'utf8')]));
  const declared = declaredIdentifiers([...texts.values()]);

  it('the scanner finds env reads, names in strings and aliases, and skips declared constants', () => {
    const sample =
      "const a = env.CRM_NEW_THING; pickEnv(env, 'KOMMO_OTHER'); process.env['BITRIX_X']; msg(`set HOME_DIR`, env.HOME_DIR); export const KOMMO_RPS = 7; use(KOMMO_RPS);";
    const found = envNamesIn(sample, declaredIdentifiers([sample]));
    expect([...found].sort()).toEqual(['BITRIX_X', 'CRM_NEW_THING', 'HOME_DIR', 'KOMMO_OTHER']);
    expect([...found].filter((n) => !ALL_NAMES.has(n)).sort()).toEqual(['BITRIX_X', 'CRM_NEW_THING', 'HOME_DIR', 'KOMMO_OTHER']);
  });

  it('no file in src/ reads or names a variable the table does not have', () => {
    const missing: string[] = [];
    for (const [f, t] of texts) {
      const sandbox = f.includes(`${join('src', 'sandbox')}`);
      for (const n of envNamesIn(t, declared, !sandbox)) if (!ALL_NAMES.has(n)) missing.push(`${f.slice(ROOT.length)}: ${n}`);
    }
    expect(missing).toEqual([]);
  });

  it('the variables the tests read are in the table, marked internal and kept out of the docs', () => {
    const testNames = new Set<string>();
    for (const f of files(join(ROOT, 'test')))
      for (const m of readFileSync(f, 'utf8').matchAll(/process\.env\.((?:CRM|KOMMO|AMOCRM|BITRIX)[A-Z0-9_]*)/g)) testNames.add(m[1]!);
    expect([...testNames]).toContain('CRM_TEST_REDIS_URL');
    for (const n of testNames) expect(ALL_NAMES, n).toContain(n);
    expect(V.CRM_TEST_REDIS_URL.internal).toBe(true);
    expect(readme).not.toContain('CRM_TEST_REDIS_URL');
  });

  it('the config parser and doctor hints name variables only through the table', () => {
    for (const f of ['src/config/config.ts', 'src/config/hints.ts', 'src/commands/common.ts']) {
      const code = readFileSync(join(ROOT, f), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/^\s*\/\/.*$/gm, '');
      const bare = [...code.matchAll(/(?<!V\.)\b(?:CRM|KOMMO|AMOCRM|BITRIX24|BITRIX)_[A-Z0-9_]+\b/g)].map((m) => m[0]).filter((n) => ALL_NAMES.has(n));
      expect(bare, f).toEqual([]);
    }
    const claude = readFileSync(join(ROOT, 'src/commands/config-claude.ts'), 'utf8');
    expect(claude.match(/['"](?:CRM|KOMMO|AMOCRM|BITRIX24|BITRIX)_[A-Z0-9_]+['"]/g) ?? []).toEqual([]);
  });
});

describe('the table', () => {
  it('has each name once (canonical names and aliases together)', () => {
    const all = ENV_TABLE.flatMap(namesOf);
    expect(new Set(all).size).toBe(all.length);
  });

  it('marks exactly the credentials secret, and the secret list comes from it', () => {
    expect([...SECRET_VARS].sort()).toEqual(
      [
        'AMOCRM_AUTH_CODE',
        'AMOCRM_CLIENT_SECRET',
        'AMOCRM_REFRESH_TOKEN',
        'BITRIX24_WEBHOOK_URL',
        'BITRIX_CLIENT_SECRET',
        'BITRIX_OUTBOUND_TOKEN',
        'BITRIX_REFRESH_TOKEN',
        'BITRIX_WEBHOOK_BASE',
        'CRM_MCP_HTTP_TOKEN',
        'KOMMO_ACCESS_TOKEN',
        'KOMMO_AUTH_CODE',
        'KOMMO_CLIENT_SECRET',
        'KOMMO_JWT_TOKEN',
        'KOMMO_LONG_LIVED_TOKEN',
        'KOMMO_REFRESH_TOKEN',
        'KOMMO_WEBHOOK_SECRET',
      ].sort(),
    );
  });

  it('its defaults are the ones the code applies', () => {
    expect({
      allowWrites: V.CRM_ALLOW_WRITES.default,
      safeMode: V.CRM_SAFE_MODE.default,
      allowDelete: V.CRM_ALLOW_DELETE.default,
      allowAdmin: V.CRM_ALLOW_ADMIN.default,
    }).toEqual(DEFAULT_FLAGS);
    expect(V.CRM_MCP_AUDIT_MAX_BYTES.default).toBe(DEFAULT_AUDIT_MAX_BYTES);
    expect(V.CRM_MCP_AUDIT_KEEP.default).toBe(DEFAULT_AUDIT_KEEP);
    const c = parseConfig({ env: { BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/abcdef123/' } });
    expect(c.http).toEqual({ timeoutMs: 30_000, maxRetries: 3 });
    expect(c.logLevel).toBe('info');
    expect(c.tools).toEqual({ toolsets: ['core', 'activity'] });
    // The two settings whose parsing moved onto the table with this change: the HTTP rate limit and the toolsets.
    const set = parseConfig({
      env: { BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/abcdef123/', CRM_MCP_HTTP_RATE_LIMIT: '120/min,burst=5', CRM_TOOLSETS: 'core,raw' },
    });
    expect(set.service.rateLimit).toEqual({ perMinute: 120, burst: 5 });
    expect(set.tools.toolsets).toEqual(['core', 'raw']);
    expect(c.connections[0]).toMatchObject({ plan: 'standard', policy: { allowWrites: false, safeMode: true, allowDelete: false, allowAdmin: false } });
  });

  it('gives every connection setting a --config key (AMOCRM_DOMAIN: base_url covers it)', () => {
    const keyless = ENV_TABLE.filter((v) => v.scope === 'connection' && v.readBy === 'server' && !v.fileKey).map((v) => v.name);
    expect(keyless).toEqual(['AMOCRM_DOMAIN']);
    expect(BITRIX24_ENV.BITRIX_OAUTH_SERVER.fileKey).toBe('oauth_server');
  });
});

describe('generated docs', () => {
  it('the README Configuration table is generated from the table and up to date', () => {
    expect(readme).toContain(CONFIG_BEGIN);
    expect(renderConfigReadme(readme), 'README.md is stale: run `npm run docs`').toBe(readme);
    const block = readme.slice(readme.indexOf(CONFIG_BEGIN), readme.indexOf(CONFIG_END));
    expect(block).toContain(configTable());
    // The drifts of issue 11, by hand: the audit log, the Bitrix24 OAuth server and its file key are documented.
    expect(block).toMatch(/\| `CRM_MCP_AUDIT_LOG` \|/);
    expect(block).toMatch(/\| `BITRIX_OAUTH_SERVER` \|.*\| `oauth_server` \|/);
    expect(block).toMatch(/\| `KOMMO_ACCESS_TOKEN` \(or `KOMMO_LONG_LIVED_TOKEN`, `KOMMO_JWT_TOKEN`\) \|.*\| yes \|$/m);
    for (const n of USER_NAMES) expect(block, n).toContain(`\`${n}\``);
  });

  it("server.json's environment variables are the table's (stdio: no --http settings, no one-time codes)", () => {
    const vars = serverJson.packages[0]!.environmentVariables;
    expect(vars).toEqual(registryEnvVars());
    const names = vars.map((v) => v.name);
    for (const n of ['CRM_MCP_AUDIT_LOG', 'BITRIX_OAUTH_SERVER', 'CRM_ALLOW_ADMIN', 'KOMMO_SUBDOMAIN', 'CRM_MCP_STORE']) expect(names).toContain(n);
    for (const n of ['CRM_MCP_HTTP_TOKEN', 'CRM_MCP_METRICS', 'KOMMO_AUTH_CODE', 'CRM_TEST_REDIS_URL', 'KOMMO_OAUTH_URL']) expect(names).not.toContain(n);
    expect(
      vars
        .filter((v) => v.isSecret)
        .map((v) => v.name)
        .sort(),
    ).toEqual(
      [
        'BITRIX_CLIENT_SECRET',
        'BITRIX_OUTBOUND_TOKEN',
        'BITRIX_REFRESH_TOKEN',
        'BITRIX_WEBHOOK_BASE',
        'KOMMO_ACCESS_TOKEN',
        'KOMMO_CLIENT_SECRET',
        'KOMMO_REFRESH_TOKEN',
        'KOMMO_WEBHOOK_SECRET',
      ].sort(),
    );
  });

  it('the .mcpb manifest check catches a field that disagrees with the table', () => {
    const ok = {
      server: { mcp_config: { env: { KOMMO_ACCESS_TOKEN: '${user_config.token}', CRM_SAFE_MODE: '${user_config.safe}' } } },
      user_config: { token: { type: 'string', sensitive: true }, safe: { type: 'boolean', default: true } },
    };
    expect(manifestEnvProblems(ok)).toEqual([]);
    const bad = {
      server: {
        mcp_config: {
          env: {
            KOMMO_ACCESS_TOKEN: '${user_config.token}',
            CRM_SAFE_MODE: '${user_config.safe}',
            KOMMO_LONG_LIVED_TOKEN: '${user_config.token}',
            CRM_NOPE: '${user_config.safe}',
          },
        },
      },
      user_config: { token: { type: 'string' }, safe: { type: 'boolean', default: false } },
    };
    expect(manifestEnvProblems(bad)).toEqual([
      'KOMMO_ACCESS_TOKEN: user_config.token.sensitive must be true',
      'CRM_SAFE_MODE: user_config.safe.default must be true',
      'KOMMO_LONG_LIVED_TOKEN: use the canonical name KOMMO_ACCESS_TOKEN',
      'KOMMO_LONG_LIVED_TOKEN: user_config.token.sensitive must be true',
      'CRM_NOPE: not a variable the server reads (src/config/env-table.ts)',
    ]);
  });
});

describe('the --config file', () => {
  // Every file key of the table, written out by hand.
  const every = {
    connections: {
      k1: {
        provider: 'kommo',
        subdomain: 'acme',
        access_token: 'file-kommo-token-1',
        client_id: 'kommo-client-1',
        client_secret: 'file-kommo-secret-1',
        redirect_uri: 'https://app.example/cb',
        refresh_token: 'file-kommo-refresh-1',
        auth_code: 'file-kommo-code-1',
        webhook_secret: 'file-kommo-hook-secret-0000000000000001',
        allow_writes: true,
        safe_mode: false,
        allow_delete: true,
        allow_admin: true,
        safe_updates: ['stage', 'task_done'],
      },
      k2: { provider: 'kommo', base_url: 'https://acme.amocrm.ru', access_token: 'file-kommo-token-2' },
      b24: {
        provider: 'bitrix24',
        webhook_url: 'https://acme.bitrix24.com/rest/1/filehooksecret/',
        client_id: 'app.file',
        client_secret: 'file-bitrix-secret-1',
        portal: 'acme.bitrix24.com',
        refresh_token: 'file-bitrix-refresh-1',
        oauth_server: 'https://oauth.example.com',
        plan: 'enterprise',
        outbound_token: 'file-outbound-token-1',
      },
    },
    tools: ['get_account', 'list_leads'],
    toolsets: ['core', 'raw'],
    exclude_tools: ['list_leads'],
    http: { timeout_ms: 5000, max_retries: 1 },
    events: { poll_s: 10, retention: 5000 },
    log_level: 'warn',
    store: 'memory',
  };

  it('covers every file key of the table (a new key needs a case here)', () => {
    const used = new Set<string>();
    for (const c of Object.values(every.connections)) for (const k of Object.keys(c)) if (k !== 'provider') used.add(k);
    for (const [k, v] of Object.entries(every)) {
      if (k === 'connections') continue;
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const inner of Object.keys(v)) used.add(`${k}.${inner}`);
      else used.add(k);
    }
    expect([...used].sort()).toEqual([...new Set(ENV_TABLE.filter((v) => v.fileKey && !v.internal).map((v) => v.fileKey!))].sort());
  });

  it('sets every connection variable that has a file key, Bitrix24 oauth_server included, from JSON already parsed', () => {
    const c = parseConfig({
      env: { KOMMO_SUBDOMAIN: 'ignored-with-a-file', CRM_HTTP_TIMEOUT_MS: '9000', CRM_ALLOW_WRITES: 'true' },
      file: { path: 'in-memory.json', data: every },
    });
    expect(c.connections).toEqual([
      {
        name: 'k1',
        provider: 'kommo',
        baseUrl: 'https://acme.kommo.com',
        accessToken: 'file-kommo-token-1',
        oauth: {
          clientId: 'kommo-client-1',
          clientSecret: 'file-kommo-secret-1',
          redirectUri: 'https://app.example/cb',
          refreshToken: 'file-kommo-refresh-1',
          authCode: 'file-kommo-code-1',
        },
        policy: { allowWrites: true, safeMode: false, allowDelete: true, allowAdmin: true, safeUpdates: ['stage', 'task_done'] },
        webhookSecret: 'file-kommo-hook-secret-0000000000000001',
      },
      // The environment's CRM_ALLOW_WRITES=true is the default of the connections that do not set allow_writes.
      {
        name: 'k2',
        provider: 'kommo',
        baseUrl: 'https://acme.amocrm.ru',
        accessToken: 'file-kommo-token-2',
        policy: { allowWrites: true, safeMode: true, allowDelete: false, allowAdmin: false },
      },
      {
        name: 'b24',
        provider: 'bitrix24',
        webhookUrl: 'https://acme.bitrix24.com/rest/1/filehooksecret/',
        oauth: {
          clientId: 'app.file',
          clientSecret: 'file-bitrix-secret-1',
          refreshToken: 'file-bitrix-refresh-1',
          portal: 'https://acme.bitrix24.com',
          oauthServer: 'https://oauth.example.com',
        },
        plan: 'enterprise',
        outboundToken: 'file-outbound-token-1',
        policy: { allowWrites: true, safeMode: true, allowDelete: false, allowAdmin: false },
      },
    ]);
    // Top-level keys win over the environment (http.timeout_ms over CRM_HTTP_TIMEOUT_MS=9000).
    expect(c.http).toEqual({ timeoutMs: 5000, maxRetries: 1 });
    expect(c.tools).toEqual({ include: ['get_account', 'list_leads'], exclude: ['list_leads'], toolsets: ['core', 'raw'] });
    expect(c.logLevel).toBe('warn');
    expect(c.store).toBe('memory');
  });

  it("problems name the file's keys, and oauth_server gets the same https rule as BITRIX_OAUTH_SERVER", () => {
    const data = {
      connections: {
        k: { provider: 'kommo', subdomain: 'acme' },
        b: {
          provider: 'bitrix24',
          client_id: 'app.x',
          client_secret: 'bitrix-secret-xyz',
          portal: 'acme.bitrix24.com',
          oauth_server: 'http://oauth.example.com',
        },
      },
      tools: ['no_such_tool'],
    };
    let problems: string[] = [];
    try {
      parseConfig({ env: {}, file: { path: 'c.json', data } });
    } catch (e) {
      problems = (e as ConfigError).problems;
    }
    expect(problems).toContain(
      'c.json: connections.k: access_token: required (a long-lived token from Settings → Integrations), or configure OAuth with client_id/client_secret/redirect_uri',
    );
    expect(problems).toContain('c.json: connections.b: oauth_server: must use https:// (plain http is accepted only for 127.0.0.1/localhost)');
    expect(problems.find((p) => p.startsWith('c.json: tools: unknown tool name "no_such_tool"'))).toBeTruthy();
    const env = (() => {
      try {
        parseConfig({
          env: {
            BITRIX_CLIENT_ID: 'app.x',
            BITRIX_CLIENT_SECRET: 'bitrix-secret-xyz',
            BITRIX_PORTAL: 'acme.bitrix24.com',
            BITRIX_OAUTH_SERVER: 'http://oauth.example.com',
          },
        });
      } catch (e) {
        return (e as ConfigError).problems;
      }
      return [];
    })();
    expect(env).toEqual(['BITRIX_OAUTH_SERVER: must use https:// (plain http is accepted only for 127.0.0.1/localhost)']);
  });

  it('loadConfig reads the file once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-env-table-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        connections: { b: { provider: 'bitrix24', webhook_url: 'https://acme.bitrix24.com/rest/1/abc123def/' } },
        log_level: 'debug',
        store: 'memory',
      }),
    );
    reads.delete(file);
    const c = loadConfig({ env: {}, configPath: file });
    expect(c.logLevel).toBe('debug');
    expect(reads.get(file)).toBe(1);
  });

  it('oauth_server from a file reaches the token server: doctor signs in through the emulator named there', async () => {
    const app = { clientId: 'app.envtable', clientSecret: 'env-table-app-secret-1' };
    const emu = await startBitrix({ rateLimit: false, oauth: app });
    try {
      const t0 = await emu.issueOAuthTokens();
      const dir = mkdtempSync(join(tmpdir(), 'crm-env-table-'));
      const file = join(dir, 'c.json');
      writeFileSync(
        file,
        JSON.stringify({
          connections: {
            b24: {
              provider: 'bitrix24',
              client_id: app.clientId,
              client_secret: app.clientSecret,
              portal: emu.url,
              refresh_token: t0.refresh_token,
              oauth_server: emu.url,
            },
          },
          store: 'memory',
        }),
      );
      const report = await diagnose({ CRM_MCP_HOME: dir }, file);
      expect(
        report.problems.filter((p) => p.check === 'config' || p.check === 'account'),
        JSON.stringify(report.problems),
      ).toEqual([]);
      // The refresh went to the server the file named (the default, oauth.bitrix.info, is never asked).
      expect(emu.requests.filter((r) => r.path.startsWith('/oauth/token'))).toHaveLength(1);
      expect(emu.stats.refreshes).toBe(1);
    } finally {
      await emu.close();
    }
  });
});

describe('config claude prints what is set', () => {
  const home = mkdtempSync(join(tmpdir(), 'crm-env-table-home-'));
  /** Every variable users may set, with a valid value; the three Kommo hosts are exclusive, so B and C add one each. */
  const A: Record<string, string> = {
    KOMMO_SUBDOMAIN: 'acme',
    KOMMO_ACCESS_TOKEN: 'claude-kommo-token-1',
    KOMMO_LONG_LIVED_TOKEN: 'claude-kommo-token-2',
    KOMMO_JWT_TOKEN: 'claude-kommo-token-3',
    KOMMO_CLIENT_ID: 'kommo-client-a',
    AMOCRM_CLIENT_ID: 'amo-client-a',
    KOMMO_CLIENT_SECRET: 'claude-kommo-secret-1',
    AMOCRM_CLIENT_SECRET: 'claude-amo-secret-1',
    KOMMO_REDIRECT_URI: 'https://app.example/cb',
    AMOCRM_REDIRECT_URI: 'https://app.example/amo-cb',
    KOMMO_REFRESH_TOKEN: 'claude-kommo-refresh-1',
    AMOCRM_REFRESH_TOKEN: 'claude-amo-refresh-1',
    KOMMO_AUTH_CODE: 'claude-kommo-code-1',
    KOMMO_WEBHOOK_SECRET: 'claude-kommo-hook-secret-00000000000001',
    AMOCRM_AUTH_CODE: 'claude-amo-code-1',
    KOMMO_OAUTH_URL: 'https://oauth.example.com/oauth',
    AMOCRM_OAUTH_URL: 'https://oauth.example.com/amo',
    BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/claudehook1/',
    BITRIX24_WEBHOOK_URL: 'https://acme.bitrix24.com/rest/7/claudehook2/',
    BITRIX_CLIENT_ID: 'app.claude',
    BITRIX_CLIENT_SECRET: 'claude-bitrix-secret-1',
    BITRIX_PORTAL: 'acme.bitrix24.com',
    BITRIX_REFRESH_TOKEN: 'claude-bitrix-refresh-1',
    BITRIX_OAUTH_SERVER: 'https://oauth.example.com',
    BITRIX_PLAN: 'enterprise',
    BITRIX_OUTBOUND_TOKEN: 'claude-outbound-token-1',
    BITRIX_REDIRECT_URI: 'http://127.0.0.1:8765/callback',
    CRM_ALLOW_WRITES: 'true',
    CRM_SAFE_MODE: 'false',
    CRM_ALLOW_DELETE: 'true',
    CRM_ALLOW_ADMIN: 'true',
    CRM_SAFE_UPDATES: 'stage,task_done',
    CRM_CONFIRM_WRITES: 'true',
    CRM_CONFIRM_VIA: 'operator',
    CRM_CONFIRM_TTL: '300',
    CRM_TOOLS: 'get_account,list_leads',
    CRM_TOOLSETS: 'core,raw',
    CRM_EXCLUDE_TOOLS: 'list_tags',
    CRM_HTTP_TIMEOUT_MS: '5000',
    CRM_MAX_RETRIES: '2',
    CRM_EVENTS_POLL_S: '10',
    CRM_EVENTS_RETENTION: '5000',
    CRM_LOG_LEVEL: 'warn',
    CRM_MCP_STORE: join(home, 'store.json'),
    CRM_MCP_HOME: home,
    CRM_MCP_AUDIT_LOG: join(home, 'audit.log'),
    CRM_MCP_AUDIT_MAX_BYTES: '8192',
    CRM_MCP_AUDIT_KEEP: '2',
    CRM_MCP_HTTP_TOKEN: 'claude-http-token-0123456789abcdef',
    CRM_MCP_HTTP_CORS_ORIGINS: 'https://app.example',
    CRM_MCP_METRICS: 'false',
    CRM_MCP_HTTP_RATE_LIMIT: '120/min',
    CRM_MCP_NO_BROWSER: '1',
  };
  const hosts = { B: { KOMMO_BASE_URL: 'https://acme.amocrm.ru' }, C: { AMOCRM_DOMAIN: 'acme.amocrm.ru' } };
  const opts = { withSecrets: false, name: 'crm', npx: false, sandbox: false };

  it('the cases set every variable users may set', () => {
    const set = new Set([...Object.keys(A), ...Object.keys(hosts.B), ...Object.keys(hosts.C)]);
    expect(USER_NAMES.filter((n) => !set.has(n))).toEqual([]);
  });

  it('prints every set variable the server reads (CRM_MCP_AUDIT_LOG too), masking every secret; one-time codes and sign-in-only ones stay out', async () => {
    const { entry, notes } = await buildEntry(A, opts);
    expect(entry.mcpServers.crm!.env).toEqual({
      KOMMO_SUBDOMAIN: 'acme',
      KOMMO_ACCESS_TOKEN: '<your KOMMO_ACCESS_TOKEN>',
      KOMMO_LONG_LIVED_TOKEN: '<your KOMMO_LONG_LIVED_TOKEN>',
      KOMMO_JWT_TOKEN: '<your KOMMO_JWT_TOKEN>',
      KOMMO_CLIENT_ID: 'kommo-client-a',
      AMOCRM_CLIENT_ID: 'amo-client-a',
      KOMMO_CLIENT_SECRET: '<your KOMMO_CLIENT_SECRET>',
      AMOCRM_CLIENT_SECRET: '<your AMOCRM_CLIENT_SECRET>',
      KOMMO_REDIRECT_URI: 'https://app.example/cb',
      AMOCRM_REDIRECT_URI: 'https://app.example/amo-cb',
      KOMMO_REFRESH_TOKEN: '<your KOMMO_REFRESH_TOKEN>',
      KOMMO_WEBHOOK_SECRET: '<your KOMMO_WEBHOOK_SECRET>',
      AMOCRM_REFRESH_TOKEN: '<your AMOCRM_REFRESH_TOKEN>',
      BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/<your webhook secret>/',
      BITRIX24_WEBHOOK_URL: 'https://acme.bitrix24.com/rest/7/<your webhook secret>/',
      BITRIX_CLIENT_ID: 'app.claude',
      BITRIX_CLIENT_SECRET: '<your BITRIX_CLIENT_SECRET>',
      BITRIX_PORTAL: 'acme.bitrix24.com',
      BITRIX_REFRESH_TOKEN: '<your BITRIX_REFRESH_TOKEN>',
      BITRIX_OAUTH_SERVER: 'https://oauth.example.com',
      BITRIX_PLAN: 'enterprise',
      BITRIX_OUTBOUND_TOKEN: '<your BITRIX_OUTBOUND_TOKEN>',
      CRM_ALLOW_WRITES: 'true',
      CRM_SAFE_MODE: 'false',
      CRM_ALLOW_DELETE: 'true',
      CRM_ALLOW_ADMIN: 'true',
      CRM_SAFE_UPDATES: 'stage,task_done',
      CRM_CONFIRM_WRITES: 'true',
      CRM_CONFIRM_VIA: 'operator',
      CRM_CONFIRM_TTL: '300',
      CRM_TOOLS: 'get_account,list_leads',
      CRM_TOOLSETS: 'core,raw',
      CRM_EXCLUDE_TOOLS: 'list_tags',
      CRM_HTTP_TIMEOUT_MS: '5000',
      CRM_MAX_RETRIES: '2',
      CRM_EVENTS_POLL_S: '10',
      CRM_EVENTS_RETENTION: '5000',
      CRM_LOG_LEVEL: 'warn',
      CRM_MCP_STORE: join(home, 'store.json'),
      CRM_MCP_HOME: home,
      CRM_MCP_AUDIT_LOG: join(home, 'audit.log'),
      CRM_MCP_AUDIT_MAX_BYTES: '8192',
      CRM_MCP_AUDIT_KEEP: '2',
      CRM_MCP_HTTP_TOKEN: '<your CRM_MCP_HTTP_TOKEN>',
      CRM_MCP_HTTP_CORS_ORIGINS: 'https://app.example',
      CRM_MCP_METRICS: 'false',
      CRM_MCP_HTTP_RATE_LIMIT: '120/min',
    });
    const out = JSON.stringify(entry);
    for (const secret of [
      'claude-kommo-token-1',
      'claude-amo-secret-1',
      'claudehook1',
      'claudehook2',
      'claude-bitrix-refresh-1',
      'claude-outbound-token-1',
      'claude-http-token-0123456789abcdef',
      'claude-kommo-code-1',
    ]) {
      expect(out).not.toContain(secret);
    }
    expect(notes.filter((n) => n.startsWith('Left out'))).toEqual([
      'Left out KOMMO_AUTH_CODE: a one-time code is exchanged once; the tokens it gave are in the store.',
      'Left out AMOCRM_AUTH_CODE: a one-time code is exchanged once; the tokens it gave are in the store.',
    ]);
  });

  it('prints the other Kommo hosts as set', async () => {
    const token = { KOMMO_ACCESS_TOKEN: 'claude-kommo-token-1', CRM_MCP_HOME: home };
    expect((await buildEntry({ ...token, ...hosts.B }, opts)).entry.mcpServers.crm!.env).toEqual({
      KOMMO_BASE_URL: 'https://acme.amocrm.ru',
      KOMMO_ACCESS_TOKEN: '<your KOMMO_ACCESS_TOKEN>',
      CRM_MCP_HOME: home,
    });
    expect((await buildEntry({ ...token, ...hosts.C }, opts)).entry.mcpServers.crm!.env).toEqual({
      AMOCRM_DOMAIN: 'acme.amocrm.ru',
      KOMMO_ACCESS_TOKEN: '<your KOMMO_ACCESS_TOKEN>',
      CRM_MCP_HOME: home,
    });
  });

  it('with --config prints only the process-wide settings and the safety defaults', async () => {
    const file = join(home, 'c.json');
    writeFileSync(file, JSON.stringify({ connections: { b: { provider: 'bitrix24', webhook_url: 'https://acme.bitrix24.com/rest/1/filehook77/' } } }));
    const env = (await buildEntry(A, { ...opts, configPath: file })).entry.mcpServers.crm!.env;
    expect(Object.keys(env).sort()).toEqual(
      [
        'CRM_ALLOW_WRITES',
        'CRM_SAFE_MODE',
        'CRM_ALLOW_DELETE',
        'CRM_ALLOW_ADMIN',
        'CRM_SAFE_UPDATES',
        'CRM_CONFIRM_WRITES',
        'CRM_CONFIRM_VIA',
        'CRM_CONFIRM_TTL',
        'CRM_TOOLS',
        'CRM_TOOLSETS',
        'CRM_EXCLUDE_TOOLS',
        'CRM_HTTP_TIMEOUT_MS',
        'CRM_MAX_RETRIES',
        'CRM_EVENTS_POLL_S',
        'CRM_EVENTS_RETENTION',
        'CRM_LOG_LEVEL',
        'CRM_MCP_STORE',
        'CRM_MCP_HOME',
        'CRM_MCP_AUDIT_LOG',
        'CRM_MCP_AUDIT_MAX_BYTES',
        'CRM_MCP_AUDIT_KEEP',
        'CRM_MCP_HTTP_TOKEN',
        'CRM_MCP_HTTP_CORS_ORIGINS',
        'CRM_MCP_METRICS',
        'CRM_MCP_HTTP_RATE_LIMIT',
      ].sort(),
    );
    expect(env.CRM_MCP_HTTP_TOKEN).toBe('<your CRM_MCP_HTTP_TOKEN>');
  });

  it("masks a password inside a plain setting's URL (a Redis store)", async () => {
    const env = { KOMMO_SUBDOMAIN: 'acme', KOMMO_ACCESS_TOKEN: 'claude-kommo-token-1', CRM_MCP_STORE: 'redis://crm:s3cret-redis-pw@127.0.0.1:6379/0' };
    expect((await buildEntry(env, opts)).entry.mcpServers.crm!.env.CRM_MCP_STORE).toBe('redis://crm:<your password>@127.0.0.1:6379/0');
    expect((await buildEntry(env, { ...opts, withSecrets: true })).entry.mcpServers.crm!.env.CRM_MCP_STORE).toBe(
      'redis://crm:s3cret-redis-pw@127.0.0.1:6379/0',
    );
  });
});

describe("doctor's fixes", () => {
  const token = { KOMMO_ACCESS_TOKEN: 'doctor-kommo-token-1' };
  const hook = { BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/doctorhook1/' };
  const app = { BITRIX_CLIENT_ID: 'app.doc', BITRIX_CLIENT_SECRET: 'doctor-bitrix-secret-1', BITRIX_PORTAL: 'acme.bitrix24.com' };
  /**
   * A setup that is wrong because of each variable the server reads; null: free text with no wrong value of its
   * own (its absence shows up under another variable's "required" problem).
   */
  const BAD: Record<string, Record<string, string> | null> = {
    KOMMO_SUBDOMAIN: { KOMMO_SUBDOMAIN: 'not a subdomain!', ...token },
    KOMMO_BASE_URL: { KOMMO_BASE_URL: 'http://acme.kommo.com', ...token },
    AMOCRM_DOMAIN: { AMOCRM_DOMAIN: 'acme.example.org', ...token },
    KOMMO_ACCESS_TOKEN: { KOMMO_SUBDOMAIN: 'acme' },
    KOMMO_CLIENT_ID: { KOMMO_SUBDOMAIN: 'acme', KOMMO_CLIENT_SECRET: 'doctor-kommo-secret', KOMMO_REDIRECT_URI: 'https://app.example/cb' },
    KOMMO_CLIENT_SECRET: { KOMMO_SUBDOMAIN: 'acme', KOMMO_CLIENT_ID: 'kid', KOMMO_REDIRECT_URI: 'https://app.example/cb' },
    KOMMO_REDIRECT_URI: { KOMMO_SUBDOMAIN: 'acme', KOMMO_CLIENT_ID: 'kid', KOMMO_CLIENT_SECRET: 'doctor-kommo-secret' },
    KOMMO_REFRESH_TOKEN: null,
    KOMMO_AUTH_CODE: null,
    KOMMO_WEBHOOK_SECRET: { KOMMO_SUBDOMAIN: 'acme', ...token, KOMMO_WEBHOOK_SECRET: 'too-short' },
    BITRIX_WEBHOOK_BASE: { BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/not/a/webhook' },
    BITRIX_CLIENT_ID: { ...app, BITRIX_CLIENT_ID: '' },
    BITRIX_CLIENT_SECRET: { ...app, BITRIX_CLIENT_SECRET: '' },
    BITRIX_PORTAL: { ...app, BITRIX_PORTAL: 'http://acme.bitrix24.com' },
    BITRIX_REFRESH_TOKEN: null,
    BITRIX_OAUTH_SERVER: { ...app, BITRIX_OAUTH_SERVER: 'not a url' },
    BITRIX_PLAN: { ...hook, BITRIX_PLAN: 'gold' },
    BITRIX_OUTBOUND_TOKEN: null,
    CRM_ALLOW_WRITES: { ...hook, CRM_ALLOW_WRITES: 'maybe' },
    CRM_SAFE_MODE: { ...hook, CRM_SAFE_MODE: 'perhaps' },
    CRM_ALLOW_DELETE: { ...hook, CRM_ALLOW_DELETE: 'y e s' },
    CRM_ALLOW_ADMIN: { ...hook, CRM_ALLOW_ADMIN: '2' },
    CRM_SAFE_UPDATES: { ...hook, CRM_SAFE_UPDATES: 'stages' },
    CRM_CONFIRM_WRITES: { ...hook, CRM_CONFIRM_WRITES: 'ask' },
    CRM_CONFIRM_VIA: { ...hook, CRM_CONFIRM_VIA: 'email' },
    CRM_CONFIRM_TTL: { ...hook, CRM_CONFIRM_TTL: '5' },
    CRM_TOOLS: { ...hook, CRM_TOOLS: 'no_such_tool' },
    CRM_TOOLSETS: { ...hook, CRM_TOOLSETS: 'no_such_toolset' },
    CRM_EXCLUDE_TOOLS: { ...hook, CRM_EXCLUDE_TOOLS: 'no_such_tool' },
    CRM_HTTP_TIMEOUT_MS: { ...hook, CRM_HTTP_TIMEOUT_MS: '10s' },
    CRM_MAX_RETRIES: { ...hook, CRM_MAX_RETRIES: '99' },
    CRM_EVENTS_POLL_S: { ...hook, CRM_EVENTS_POLL_S: '30s' },
    CRM_EVENTS_RETENTION: { ...hook, CRM_EVENTS_RETENTION: '50' },
    CRM_LOG_LEVEL: { ...hook, CRM_LOG_LEVEL: 'loud' },
    CRM_MCP_STORE: { ...hook, CRM_MCP_STORE: 'ftp://x' },
    CRM_MCP_HOME: null,
    CRM_MCP_AUDIT_LOG: null,
    CRM_MCP_AUDIT_MAX_BYTES: { ...hook, CRM_MCP_AUDIT_MAX_BYTES: '12' },
    CRM_MCP_AUDIT_KEEP: { ...hook, CRM_MCP_AUDIT_KEEP: '-1' },
    CRM_MCP_HTTP_TOKEN: { ...hook, CRM_MCP_HTTP_TOKEN: 'short' },
    CRM_MCP_HTTP_CORS_ORIGINS: { ...hook, CRM_MCP_HTTP_CORS_ORIGINS: 'https://app.example/path' },
    CRM_MCP_METRICS: { ...hook, CRM_MCP_METRICS: 'sometimes' },
    CRM_MCP_HTTP_RATE_LIMIT: { ...hook, CRM_MCP_HTTP_RATE_LIMIT: 'lots' },
  };

  it('has a wrong setup (or a reason) for every variable the server reads', () => {
    const server = ENV_TABLE.filter((v) => !v.internal && v.readBy === 'server').map((v) => v.name);
    expect(Object.keys(BAD).sort()).toEqual([...server].sort());
  });

  it.each(Object.entries(BAD).filter((e): e is [string, Record<string, string>] => e[1] !== null))(
    '%s: the problem names it and its fix is specific',
    async (name, env) => {
      const home = mkdtempSync(join(tmpdir(), 'crm-env-table-doc-'));
      const report = await diagnose({ CRM_MCP_HOME: home, ...env });
      const config = report.problems.filter((p) => p.check === 'config' && p.severity === 'error');
      expect(config.length, JSON.stringify(report.problems)).toBeGreaterThan(0);
      const mine = config.find((p) => p.message.startsWith(name));
      expect(mine, JSON.stringify(config)).toBeDefined();
      for (const p of config) expect(p.fix, p.message).not.toBe(GENERIC_FIX);
      // A missing one's fix points at the names in the message; a malformed value's names the variable to change,
      // or is the table's own how-to for it. (Doctor's redaction turns "…CLIENT_SECRET: required" into
      // "…CLIENT_SECRET: [REDACTED]": its pattern for client_secret=… values catches the message too.)
      if (/required|\[REDACTED\]/.test(mine!.message)) expect(mine!.fix).toMatch(/^Set the variables named above|KOMMO_ACCESS_TOKEN|KOMMO_SUBDOMAIN=/);
      else expect(mine!.fix === envVar(name)!.hint || mine!.fix.includes(name), `${mine!.message} → ${mine!.fix}`).toBe(true);
    },
  );

  it("a config file's key gets the same typed fix, named by its key", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-env-table-doc-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        connections: { b: { provider: 'bitrix24', webhook_url: 'https://acme.bitrix24.com/rest/1/filehook88/', safe_mode: 'perhaps' } },
        http: { timeout_ms: 5 },
      }),
    );
    const report = await diagnose({ CRM_MCP_HOME: dir }, file);
    const fixes = Object.fromEntries(report.problems.map((p) => [p.message.replace(`${file}: `, ''), p.fix]));
    expect(Object.keys(fixes).sort()).toEqual([expect.stringMatching(/^connections\.b\.safe_mode: /), expect.stringMatching(/^http\.timeout_ms: /)].sort());
    expect(Object.values(fixes)).toEqual(
      expect.arrayContaining([
        'Set safe_mode to true or false (or remove it to get the default: true).',
        'Set http.timeout_ms to a whole number from 100 to 600000 (or remove it to get the default: 30000).',
      ]),
    );
  });
});
