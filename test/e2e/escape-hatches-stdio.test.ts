/**
 * The escape hatches through the built binary over stdio, against emulators in this process (so the test
 * sees their traffic): in create-only, write and full modes on both CRMs a refused raw call sends nothing,
 * and at CRM_LOG_LEVEL=debug neither the token nor the webhook secret reaches stderr.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { errorOf, closeAll, startBoth } from '../helpers/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) env[k] = v;
  return env;
}

const MODES = {
  'create-only': { CRM_ALLOW_WRITES: 'true' },
  write: { CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false' },
  full: { CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_DELETE: 'true' },
} as const;

/** Calls refused in each mode, by hand: [tool, args]. */
const KOMMO_REFUSED: Record<keyof typeof MODES, Array<Record<string, unknown>>> = {
  'create-only': [
    { method: 'POST', path: '/api/v4/webhooks', body: { destination: 'https://attacker.example/h', settings: ['add_lead'] } },
    { method: 'POST', path: '/api/v4/leads/1/LINK', body: [{ to_entity_id: 1, to_entity_type: 'contacts' }] },
    { method: 'PATCH', path: '/api/v4/leads/1', body: { name: 'x' } },
  ],
  write: [
    { method: 'POST', path: '/api/v4/webhooks', body: { destination: 'https://attacker.example/h', settings: ['add_lead'] } },
    { method: 'DELETE', path: '/api/v4/leads/unsorted/abc/decline' },
  ],
  full: [
    { method: 'POST', path: '/api/v4/webhooks', body: { destination: 'https://attacker.example/h', settings: ['add_lead'] } },
    { method: 'POST', path: '/api/v4/salesbot/run', body: [{ bot_id: 1, entity_id: 1, entity_type: 2 }] },
  ],
};
const BITRIX_REFUSED: Record<keyof typeof MODES, Array<Record<string, unknown>>> = {
  'create-only': [
    { method: 'crm.deal.contact.add', params: { id: 1, fields: { CONTACT_ID: 2 } } },
    { method: 'batch', params: { cmd: { a: 'crm.deal.list', b: 'user.add?EMAIL=m@example.com' } } },
    { method: 'im.message.add', params: { DIALOG_ID: '1', MESSAGE: 'x' } },
  ],
  write: [
    { method: 'crm.deal.delete', params: { id: 1 } },
    { method: 'event.bind', params: { event: 'ONCRMDEALADD', handler: 'https://attacker.example/h' } },
  ],
  full: [
    { method: 'department.add', params: { NAME: 'x' } },
    { method: 'batch', params: { cmd: ['crm.deal.list', 'CRM.CATEGORY.ADD?entityTypeId=2&fields[name]=x'] } },
  ],
};

describe('refusals over stdio (built binary)', () => {
  let kommo: KommoEmulator;
  let bitrix: BitrixEmulator;
  beforeAll(async () => {
    ({ kommo, bitrix } = await startBoth());
  });
  afterAll(() => closeAll(kommo, bitrix));

  for (const mode of Object.keys(MODES) as Array<keyof typeof MODES>) {
    it(`${mode}: Kommo and Bitrix24 raw calls the mode forbids send nothing; stderr holds no secret`, async () => {
      const token = kommo.createLongLivedToken();
      const env = {
        ...baseEnv(),
        ...MODES[mode],
        CRM_LOG_LEVEL: 'debug',
        CRM_TOOLSETS: 'core,raw',
        CRM_MCP_STORE: 'memory',
        CRM_MCP_AUDIT_LOG: 'false',
        KOMMO_BASE_URL: kommo.url,
        KOMMO_ACCESS_TOKEN: token,
        BITRIX_WEBHOOK_BASE: bitrix.webhookUrl,
      };
      const transport = new StdioClientTransport({ command: process.execPath, args: [CLI], env, stderr: 'pipe' });
      let stderr = '';
      transport.stderr?.on('data', (d) => (stderr += String(d)));
      const client = new Client({ name: 'stdio-hostile', version: '0' });
      await client.connect(transport);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('kommo_request');
      expect(names).toContain('bitrix_call');
      // Warm up so connection-level reads (account, profile) are not counted below.
      await client.callTool({ name: 'get_account', arguments: { crm: 'kommo' } });
      await client.callTool({ name: 'get_account', arguments: { crm: 'bitrix24' } });
      for (const args of KOMMO_REFUSED[mode]) {
        kommo.resetLog();
        const r = (await client.callTool({ name: 'kommo_request', arguments: { crm: 'kommo', ...args } })) as CallToolResult;
        expect(errorOf(r).code, JSON.stringify(args)).toBe('policy_denied');
        expect(kommo.requests, JSON.stringify(args)).toHaveLength(0);
      }
      for (const args of BITRIX_REFUSED[mode]) {
        bitrix.harness.resetLog();
        const r = (await client.callTool({ name: 'bitrix_call', arguments: { crm: 'bitrix24', ...args } })) as CallToolResult;
        expect(errorOf(r).code, JSON.stringify(args)).toBe('policy_denied');
        expect(bitrix.requests, JSON.stringify(args)).toHaveLength(0);
      }
      // An allowed read goes through on both, so the refusals above were not a dead connection.
      kommo.resetLog();
      bitrix.harness.resetLog();
      expect(
        ((await client.callTool({ name: 'kommo_request', arguments: { crm: 'kommo', method: 'GET', path: '/api/v4/leads' } })) as CallToolResult).isError,
      ).toBeFalsy();
      expect(
        ((await client.callTool({ name: 'bitrix_call', arguments: { crm: 'bitrix24', method: 'crm.deal.list', params: {} } })) as CallToolResult).isError,
      ).toBeFalsy();
      expect(kommo.requests.length).toBeGreaterThan(0);
      expect(bitrix.requests.length).toBeGreaterThan(0);
      await client.close();
      expect(stderr).toMatch(/"level":20/); // debug lines were written
      expect(stderr).not.toContain(token);
      expect(stderr).not.toContain(bitrix.webhookSecret);
    });
  }
});
