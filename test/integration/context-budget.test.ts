/**
 * What the model reads of the tool list (name, description, input schema per tool; the major clients do not
 * pass output schemas to the model) stays within budget for the default toolsets on both CRMs: 12 KB
 * read-only, 18 KB with writes on. Every parameter is still described. The budget holds by design: new
 * tools go into toolsets that are off by default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyFlags } from '../../src/policy/policy.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { DEFAULT_TOOLSETS } from '../../src/tools/toolsets.js';
import { ALL, CREATE_ONLY, READ_ONLY, connectBitrix, connectKommo, closeAll, linkClient, startBoth } from '../helpers/index.js';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
beforeAll(async () => {
  ({ kommo, bitrix } = await startBoth());
});
afterAll(() => closeAll(kommo, bitrix));

interface Listed {
  name: string;
  description?: string;
  inputSchema: { properties?: Record<string, Record<string, unknown>> };
}

async function listed(flags: PolicyFlags, toolsets?: string[]): Promise<Listed[]> {
  const k = await connectKommo(kommo, { flags });
  const b = await connectBitrix(bitrix, { flags });
  const { client } = await linkClient({ config: { tools: { toolsets } }, providers: [k.provider, b.provider] }, 'budget', '0');
  const { tools } = await client.listTools();
  await closeAll(client, k, b);
  return tools as Listed[];
}

const modelBytes = (tools: Listed[]) =>
  tools.reduce((n, t) => n + Buffer.byteLength(JSON.stringify({ name: t.name, description: t.description, input_schema: t.inputSchema })), 0);

/** Every property at any depth that has no description (a $ref'd or union member inherits its parent's). */
function undescribed(schema: Record<string, unknown>, path: string, out: string[]): void {
  const props = schema.properties as Record<string, Record<string, unknown>> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) {
    if (!v.description && k !== 'crm') out.push(`${path}.${k}`);
    if (v.type === 'object') undescribed(v, `${path}.${k}`, out);
    const items = v.items as Record<string, unknown> | undefined;
    if (items?.type === 'object') undescribed(items, `${path}.${k}[]`, out);
  }
}

describe('context budget of the default tool list (both CRMs configured)', () => {
  it('read-only: at most 12 KB', async () => {
    const tools = await listed(READ_ONLY, DEFAULT_TOOLSETS);
    expect(modelBytes(tools)).toBeLessThanOrEqual(12 * 1024);
  });

  it('writes on (create-only): at most 18 KB', async () => {
    const tools = await listed(CREATE_ONLY, DEFAULT_TOOLSETS);
    expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['create_lead', 'create_contact', 'add_note', 'create_task']));
    expect(modelBytes(tools)).toBeLessThanOrEqual(18 * 1024);
  });

  it('every parameter of every tool is described', async () => {
    const missing: string[] = [];
    for (const t of await listed(ALL)) undescribed(t.inputSchema as Record<string, unknown>, t.name, missing);
    expect(missing.join('\n')).toBe('');
  });

  it('the default toolsets leave the raw, metadata and audit tools off; get_account says how to turn them on', async () => {
    const names = (await listed(READ_ONLY, DEFAULT_TOOLSETS)).map((t) => t.name);
    for (const off of ['kommo_request', 'bitrix_call', 'get_audit_log', 'get_custom_fields']) expect(names).not.toContain(off);
    const k = await connectKommo(kommo, { flags: READ_ONLY });
    const { client } = await linkClient({ config: { tools: { toolsets: DEFAULT_TOOLSETS } }, providers: [k.provider] }, 'budget', '0');
    const acc = (await client.callTool({ name: 'get_account', arguments: {} })).structuredContent as {
      policy: { toolsets_off: Array<{ name: string; tools: string[]; enable: string }>; disabled_tools: Array<{ name: string }> };
    };
    const raw = acc.policy.toolsets_off.find((t) => t.name === 'raw')!;
    expect(raw.tools).toEqual(['kommo_request']);
    expect(raw.enable).toBe('CRM_TOOLSETS=core,activity,raw');
    expect(acc.policy.disabled_tools.map((d) => d.name)).not.toContain('kommo_request');
    await closeAll(client, k);
  });
});
