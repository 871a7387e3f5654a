import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.js';

const base = { KOMMO_SUBDOMAIN: 'acme', KOMMO_ACCESS_TOKEN: 'tok_1234567890' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ env });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('config', () => {
  it('defaults to read-only with safe mode on', () => {
    const c = loadConfig({ env: base });
    expect(c.connections).toHaveLength(1);
    expect(c.connections[0]).toMatchObject({
      provider: 'kommo',
      baseUrl: 'https://acme.kommo.com',
      policy: { allowWrites: false, safeMode: true, allowDelete: false },
    });
    expect(c.http).toEqual({ timeoutMs: 30000, maxRetries: 3 });
  });

  it.each(['yes please', 'maybe', '2', 'tru'])('refuses CRM_ALLOW_WRITES=%s naming the variable', (v) => {
    const p = problems({ ...base, CRM_ALLOW_WRITES: v });
    expect(p.join('\n')).toMatch(/CRM_ALLOW_WRITES/);
  });

  it('refuses malformed safe mode, delete flag and numbers', () => {
    expect(problems({ ...base, CRM_SAFE_MODE: 'nope!' }).join()).toMatch(/CRM_SAFE_MODE/);
    expect(problems({ ...base, CRM_ALLOW_DELETE: 'y e s' }).join()).toMatch(/CRM_ALLOW_DELETE/);
    expect(problems({ ...base, CRM_HTTP_TIMEOUT_MS: '10s' }).join()).toMatch(/CRM_HTTP_TIMEOUT_MS/);
    expect(problems({ ...base, CRM_MAX_RETRIES: '99' }).join()).toMatch(/CRM_MAX_RETRIES/);
  });

  it('accepts base URL, amoCRM domain and token aliases', () => {
    expect(loadConfig({ env: { KOMMO_BASE_URL: 'http://127.0.0.1:9999', KOMMO_LONG_LIVED_TOKEN: 'abcdefgh' } }).connections[0]).toMatchObject({
      baseUrl: 'http://127.0.0.1:9999',
      accessToken: 'abcdefgh',
    });
    expect(loadConfig({ env: { AMOCRM_DOMAIN: 'acme.amocrm.ru', KOMMO_JWT_TOKEN: 'abcdefgh' } }).connections[0]).toMatchObject({
      baseUrl: 'https://acme.amocrm.ru',
    });
  });

  it('refuses plain http to a non-loopback host and a missing token', () => {
    expect(problems({ KOMMO_BASE_URL: 'http://acme.kommo.com', KOMMO_ACCESS_TOKEN: 'abcdefgh' }).join()).toMatch(/KOMMO_BASE_URL.*https/);
    expect(problems({ KOMMO_SUBDOMAIN: 'acme' }).join()).toMatch(/KOMMO_ACCESS_TOKEN/);
    expect(problems({}).join()).toMatch(/No CRM configured/);
  });

  it('OAuth needs the client triple, with amoCRM aliases', () => {
    expect(problems({ KOMMO_SUBDOMAIN: 'acme', KOMMO_CLIENT_ID: 'id' }).join()).toMatch(/KOMMO_CLIENT_SECRET/);
    const c = loadConfig({
      env: {
        KOMMO_SUBDOMAIN: 'acme',
        AMOCRM_CLIENT_ID: 'id',
        AMOCRM_CLIENT_SECRET: 'secret123',
        AMOCRM_REDIRECT_URI: 'https://x/cb',
        KOMMO_REFRESH_TOKEN: 'refresh123',
      },
    });
    expect(c.connections[0]).toMatchObject({ oauth: { clientId: 'id', clientSecret: 'secret123', refreshToken: 'refresh123' } });
  });

  it('reads named connections with their own flags from a file and names bad paths', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crm-cfg-'));
    const file = join(dir, 'c.json');
    writeFileSync(
      file,
      JSON.stringify({
        connections: {
          eu: { provider: 'kommo', subdomain: 'eu', access_token: 'abcdefgh', allow_writes: true },
          ru: { provider: 'kommo', base_url: 'https://ru.amocrm.ru', access_token: 'abcdefgh' },
        },
      }),
    );
    const c = loadConfig({ env: {}, configPath: file });
    expect(c.connections.map((x) => [x.name, x.policy.allowWrites])).toEqual([
      ['eu', true],
      ['ru', false],
    ]);
    writeFileSync(file, JSON.stringify({ connections: { eu: { provider: 'kommo', subdomain: 'eu', access_token: 'abcdefgh', allow_writes: 'yes' } } }));
    expect(() => loadConfig({ env: {}, configPath: file })).toThrow(/connections\.eu\.allow_writes/);
  });
});

describe('the README', () => {
  it('its multi-connection config example loads as written', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = [...readme.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('"connections"'));
    expect(block, 'README has a config file example').toBeTruthy();
    const dir = mkdtempSync(join(tmpdir(), 'crm-readme-'));
    const path = join(dir, 'crm.json');
    writeFileSync(path, block!);
    const c = loadConfig({ env: {}, configPath: path });
    expect(c.connections.map((x) => `${x.name}:${x.provider}`)).toEqual(['eu:kommo', 'ru:kommo', 'b24:bitrix24']);
  });
});
