/** bitrix_call and batch under the policy, proved at the emulator: refused calls send nothing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { CREATE_ONLY, FULL, READ_ONLY, WRITE, connectBitrix, errorOf, startBitrix, structured, text } from '../helpers/index.js';

let emu: BitrixEmulator;
beforeAll(async () => {
  emu = await startBitrix({ rateLimit: false });
});
afterAll(async () => emu.close());

// The method table itself is checked in test/unit/classification.test.ts; every mode in test/escape-hatches.test.ts.

describe('refusals at the HTTP level', () => {
  const refusedInSafeMode: Array<[string, Record<string, unknown>]> = [
    ['crm.lead.delete', { id: 1 }],
    ['CRM.LEAD.DELETE', { id: 1 }],
    [' crm.lead.delete ', { id: 1 }],
    ['crm.lead.delete.json', { id: 1 }],
    ['crm.deal.update', { id: 1, fields: { TITLE: 'x' } }],
    ['crm.something.unknown', {}],
    ['batch', { halt: 0, cmd: { a: 'crm.deal.list', b: 'crm.lead.get?id=1', c: 'crm.deal.delete?id=2' } }],
    ['batch', { cmd: { a: 'batch?cmd[x]=crm.deal.list' } }],
    ['event.offline.get', {}],
    ['../crm.deal.list', {}],
    ['https://evil.test/rest/crm.deal.list', {}],
  ];
  it.each(refusedInSafeMode)('%s is refused under safe mode and nothing is sent', async (method, params) => {
    const c = await connectBitrix(emu, { flags: CREATE_ONLY });
    emu.harness.resetLog();
    const r = await c.call('bitrix_call', { method, params });
    expect(r.isError, text(r)).toBe(true);
    expect(errorOf(r).code).toMatch(/policy_denied|validation/);
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });

  it('read-only: an add is refused, a list goes through', async () => {
    const c = await connectBitrix(emu, { flags: READ_ONLY });
    emu.harness.resetLog();
    expect((await c.call('bitrix_call', { method: 'crm.deal.add', params: { fields: { TITLE: 'x' } } })).isError).toBe(true);
    expect(emu.requests).toHaveLength(0);
    const ok = structured<{ result: unknown[]; total?: number }>(await c.call('bitrix_call', { method: 'CRM.DEAL.LIST.json', params: { select: ['ID'] } }));
    expect(ok.result.length).toBe(50);
    expect(emu.requests).toHaveLength(1);
    await c.close();
  });

  it('auth cannot be smuggled in params', async () => {
    const c = await connectBitrix(emu, { flags: READ_ONLY });
    emu.harness.resetLog();
    await c.call('bitrix_call', { method: 'crm.deal.list', params: { auth: 'stolen-token', select: ['ID'] } });
    expect(emu.requests[0]!.body).not.toContain('stolen-token');
    await c.close();
  });

  it('write mode allows updates but deletes still need the delete flag; full mode allows them', async () => {
    const w = await connectBitrix(emu, { flags: WRITE });
    const names = (await w.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('update_lead');
    expect(names).not.toContain('delete_lead');
    emu.harness.resetLog();
    expect((await w.call('bitrix_call', { method: 'crm.deal.delete', params: { id: 1 } })).isError).toBe(true);
    expect(emu.requests).toHaveLength(0);
    await w.close();
    const f = await connectBitrix(emu, { flags: FULL });
    expect((await f.client.listTools()).tools.map((t) => t.name)).toEqual(expect.arrayContaining(['delete_lead', 'delete_contact']));
    await f.close();
  });

  it('the webhook secret never appears in results or errors', async () => {
    const c = await connectBitrix(emu, { flags: READ_ONLY });
    const bad = await c.call('bitrix_call', { method: 'crm.nope.get', params: {} });
    const good = await c.call('get_account');
    for (const r of [bad, good]) expect(text(r)).not.toContain(emu.webhookSecret);
    await c.close();
  });
});
