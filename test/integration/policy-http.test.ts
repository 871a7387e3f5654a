/** The safety policy, proved at the HTTP level: refused calls leave the emulator with zero write requests. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { ALL_TOOLS } from '../../src/crms/registry.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { narrowFlags } from '../../src/policy/policy.js';
import { createServer } from '../../src/server.js';
import { CREATE_ONLY, FULL, READ_ONLY, WRITE, connectKommo, errorOf, startKommo, structured, text, writesTo } from '../helpers/index.js';

let emu: KommoEmulator;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
});
afterAll(async () => emu.close());

const WRITE_TOOLS = ALL_TOOLS.filter((t) => t.effect !== 'read').map((t) => t.name);

describe('tool registration follows the policy', () => {
  it('a default (read-only) start lists no write tool; kommo_request is marked read-only and refuses writes by policy', async () => {
    const c = await connectKommo(emu, { flags: READ_ONLY });
    const { tools } = await c.client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain('get_pipelines');
    for (const w of WRITE_TOOLS) expect(names).not.toContain(w);
    const raw = tools.find((t) => t.name === 'kommo_request')!;
    expect(raw.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
    const acc = structured<{ policy: { mode: string; disabled_tools: Array<{ name: string; reason: string }> } }>(await c.call('get_account'));
    expect(acc.policy.mode).toBe('read-only');
    expect(acc.policy.disabled_tools.map((d) => d.name)).toEqual(expect.arrayContaining(['create_lead', 'update_lead']));
    // Bitrix24-only tools do not exist on Kommo: they are not "disabled" there.
    expect(acc.policy.disabled_tools.map((d) => d.name)).not.toEqual(expect.arrayContaining(['delete_lead']));
    expect(acc.policy.disabled_tools.map((d) => d.name)).not.toContain('delete_contact');
    expect(acc.policy.disabled_tools.map((d) => d.name)).not.toContain('bitrix_call');
    expect(acc.policy.disabled_tools.find((d) => d.name === 'create_lead')!.reason).toMatch(/CRM_ALLOW_WRITES=true/);
    expect(acc.policy.disabled_tools.find((d) => d.name === 'update_lead')!.reason).toMatch(/CRM_ALLOW_WRITES=true and CRM_SAFE_MODE=false/);
    await c.close();
  });

  it('safe mode lists creates but not updates', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const names = (await c.client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['create_lead', 'create_contact', 'add_note', 'create_task']));
    expect(names).not.toContain('update_lead');
    expect(names).not.toContain('update_contact');
    await c.close();
  });

  it('every tool has a title, an object input schema and an output schema', async () => {
    const c = await connectKommo(emu, { flags: FULL });
    const { tools } = await c.client.listTools();
    // Every tool but the Bitrix24-only ones (deletes and the raw REST tool), in the registry's order.
    expect(tools.map((t) => t.name)).toEqual(ALL_TOOLS.filter((d) => !['delete_lead', 'delete_contact', 'bitrix_call'].includes(d.name)).map((d) => d.name));
    for (const t of tools) {
      const def = ALL_TOOLS.find((d) => d.name === t.name)!;
      expect(t.annotations?.title, t.name).toBe(def.title);
      expect(t.annotations?.openWorldHint, t.name).toBe(true);
      expect(t.outputSchema, t.name).toBeTruthy();
      expect(t.inputSchema.type).toBe('object');
    }
    await c.close();
  });
});

describe('narrowing a server (per-request headers over HTTP)', () => {
  it('narrowFlags only ever tightens', () => {
    expect(narrowFlags(READ_ONLY, { allowWrites: true, safeMode: false, allowDelete: true, allowAdmin: true })).toEqual(READ_ONLY);
    expect(narrowFlags({ ...FULL, allowAdmin: true }, { allowAdmin: false })).toEqual(FULL);
    expect(narrowFlags(FULL, { allowWrites: false })).toMatchObject({ allowWrites: false });
    expect(narrowFlags(FULL, { safeMode: true })).toEqual({ ...FULL, safeMode: true });
    expect(narrowFlags(WRITE, undefined)).toBe(WRITE);
  });

  it('a narrowed server lists no write tool and refuses writes with zero traffic; the provider policy is untouched', async () => {
    const c = await connectKommo(emu, { flags: FULL });
    const server = createServer({ config: { tools: {} }, providers: [c.provider], narrow: { allowWrites: false } });
    const client = new Client({ name: 'narrow', version: '0' });
    const [ct, st] = InMemoryTransport.createLinkedPair();
    await Promise.all([server.connect(st), client.connect(ct)]);
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    for (const w of WRITE_TOOLS) expect(names).not.toContain(w);
    expect(names).toContain('get_audit_log');
    expect(tools.find((t) => t.name === 'kommo_request')!.annotations).toMatchObject({ readOnlyHint: true });
    emu.resetLog();
    expect(
      ((await client.callTool({ name: 'kommo_request', arguments: { method: 'POST', path: '/api/v4/leads', body: [{ name: 'x' }] } })) as { isError?: boolean })
        .isError,
    ).toBe(true);
    expect(writesTo(emu.requests)).toHaveLength(0);
    expect(c.provider.policy).toEqual(FULL);
    expect((await c.client.listTools()).tools.map((t) => t.name)).toContain('create_lead');
    await client.close();
    await c.close();
  });
});

describe('refusals send nothing', () => {
  it('kommo_request PATCH and DELETE are refused under safe mode; POST is allowed', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    emu.resetLog();
    const patch = await c.call('kommo_request', { method: 'PATCH', path: '/api/v4/leads/1', body: { name: 'x' } });
    expect(patch.isError).toBe(true);
    const del = await c.call('kommo_request', { method: 'DELETE', path: '/api/v4/leads/1' });
    expect(del.isError).toBe(true);
    expect(writesTo(emu.requests)).toHaveLength(0);
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });

  it('the call-time check refuses a typed update under safe mode, with the flag to set and zero traffic', async () => {
    // Registration already hides update_lead here; the pipeline's own check is the second layer, called directly.
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const lead = [...emu.state.leads.values()][0]!;
    emu.resetLog();
    const { invokeTool } = await import('../../src/tools/invoke.js');
    const { policyReport } = await import('../../src/server.js');
    const updateLead = ALL_TOOLS.find((t) => t.name === 'update_lead')!;
    const r = await invokeTool(updateLead, c.provider, { id: lead.id, name: 'changed' }, undefined, {
      flagsOf: (p) => p.policy,
      reportOf: (p, f) => policyReport(p, { enabled: [], disabled: [] }, f),
    });
    const e = errorOf(r);
    expect(e.code).toBe('policy_denied');
    expect(e.message).toMatch(/safe mode is on/);
    expect(e.message).toMatch(/CRM_SAFE_MODE=false/);
    expect(emu.requests).toHaveLength(0);
    expect(emu.state.leads.get(lead.id)!.name).toBe(lead.name);
    // And the same call under WRITE goes through the same pipeline, so the refusal above was the policy's.
    const w = await connectKommo(emu, { flags: WRITE });
    const ok = await invokeTool(updateLead, w.provider, { id: lead.id, name: 'changed' }, undefined, {
      flagsOf: (p) => p.policy,
      reportOf: (p, f) => policyReport(p, { enabled: [], disabled: [] }, f),
    });
    expect(ok.isError, text(ok)).toBeFalsy();
    expect(emu.state.leads.get(lead.id)!.name).toBe('changed');
    await w.close();
    await c.close();
  });

  it('read-only: create_lead is refused and nothing is sent', async () => {
    const c = await connectKommo(emu, { flags: READ_ONLY });
    emu.resetLog();
    // Not registered in read-only mode: since SDK v2 an unknown tool is a JSON-RPC error (-32602), as the spec says.
    await expect(c.call('create_lead', { name: 'nope' })).rejects.toThrow(/create_lead not found/);
    expect(emu.requests).toHaveLength(0);
    const raw = await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads', body: [{ name: 'nope' }] });
    expect(raw.isError).toBe(true);
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });

  it('the HTTP core refuses a write outside the grant even when a tool tries (defence in depth)', async () => {
    const c = await connectKommo(emu, { flags: FULL });
    emu.resetLog();
    const { Grant } = await import('../../src/policy/policy.js');
    await expect(
      c.provider.http.request({ method: 'PATCH', path: '/api/v4/leads/1', body: {}, op: 'idempotent', grant: Grant.for('create') }),
    ).rejects.toMatchObject({ code: 'policy_denied' });
    await expect(c.provider.http.request({ method: 'POST', path: '/api/v4/leads', body: [], op: 'create', grant: Grant.readOnly() })).rejects.toMatchObject({
      code: 'policy_denied',
    });
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });
});

describe('the credential never leaves the account', () => {
  const attacks = [
    'https://evil.test/x',
    '//evil.test/x',
    '/api/v4/../../oauth2/access_token',
    '/api/v4/%2e%2e/x',
    '/api/v4/%252e%252e/oauth2/access_token',
    '/oauth2/access_token',
    '/api/v4/leads?x=1',
    'api/v4/leads',
    '/api/v4//evil.test/x',
  ];
  it.each(attacks)('kommo_request refuses %s with nothing sent', async (path) => {
    const c = await connectKommo(emu, { flags: FULL });
    emu.resetLog();
    const r = await c.call('kommo_request', { method: 'GET', path });
    expect(r.isError).toBe(true);
    // A query string in the path is a usage mistake; everything else is the policy keeping the token home.
    expect(errorOf(r).code).toBe(path.includes('?') ? 'validation' : 'policy_denied');
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });

  it('the core refuses absolute and protocol-relative URLs itself', async () => {
    const c = await connectKommo(emu, { flags: FULL });
    const { Grant } = await import('../../src/policy/policy.js');
    for (const path of ['//evil.test/api/v4/leads', 'https://evil.test/api/v4/leads', '/api/v4/../oauth2/access_token']) {
      await expect(c.provider.http.request({ method: 'GET', path, op: 'read', grant: Grant.readOnly() })).rejects.toMatchObject({ code: 'policy_denied' });
    }
    await c.close();
  });

  it('POST …/link is an update: refused as a create', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    emu.resetLog();
    const r = await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads/1/link', body: [] });
    expect(r.isError).toBe(true);
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });

  it('with updates allowed, update_lead goes through and the record changes', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const page = structured<{ items: Array<{ id: number }> }>(await c.call('list_leads', { limit: 1 }));
    const id = page.items[0]!.id;
    emu.resetLog();
    const r = await c.call('update_lead', { id, name: 'Renamed by test' });
    expect(r.isError, text(r)).toBeFalsy();
    expect(emu.requests.some((q) => q.method === 'PATCH' && q.path.startsWith('/api/v4/leads'))).toBe(true);
    expect(emu.state.leads.get(id)!.name).toBe('Renamed by test');
    await c.close();
  });
});
