/** Bad input is a clear validation error with nothing written, on both CRMs (issue 9, finding 11). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CREATE_ONLY, bitrixMethods, connectBitrix, connectKommo, errorOf, writesTo, closeAll, startBoth } from '../helpers/index.js';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
beforeAll(async () => {
  ({ kommo, bitrix } = await startBoth());
});
afterAll(() => closeAll(kommo, bitrix));

const BAD_DEADLINES = ['-5', '5', 'tomorrow', '2001-01-01T00:00:00Z', '12/31/2030', '2030-13-45', ''];

describe('create_task deadlines', () => {
  it.each(BAD_DEADLINES)('Kommo refuses complete_till %j and creates no task', async (due) => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY });
    const before = kommo.state.tasks.size;
    kommo.resetLog();
    const r = await c.call('create_task', { text: 'call back', complete_till: due });
    const e = errorOf(r);
    expect(e.code === 'validation' || /Input validation error/.test(e.message)).toBe(true);
    if (due === '2001-01-01T00:00:00Z') expect(e.message).toMatch(/in the past/);
    expect(writesTo(kommo.requests)).toHaveLength(0);
    expect(kommo.state.tasks.size).toBe(before);
    await c.close();
  });

  it.each(BAD_DEADLINES)('Bitrix24 refuses complete_till %j and creates no task', async (due) => {
    const c = await connectBitrix(bitrix, { flags: CREATE_ONLY });
    bitrix.harness.resetLog();
    const r = await c.call('create_task', { text: 'call back', complete_till: due });
    expect(r.isError).toBe(true);
    expect(bitrixMethods(bitrix.requests)).not.toContain('tasks.task.add');
    await c.close();
  });

  it('a future ISO deadline is stored as given on both CRMs', async () => {
    const due = new Date(Date.now() + 3 * 86_400_000);
    due.setUTCMilliseconds(0);
    const k = await connectKommo(kommo, { flags: CREATE_ONLY });
    const kr = await k.call('create_task', { text: 'call back', complete_till: due.toISOString() });
    expect(kr.isError).toBeFalsy();
    const stored = [...kommo.state.tasks.values()].at(-1)!;
    expect(stored.complete_till).toBe(Math.floor(due.getTime() / 1000));
    await k.close();
    const b = await connectBitrix(bitrix, { flags: CREATE_ONLY });
    bitrix.harness.resetLog();
    const br = await b.call('create_task', { text: 'call back', complete_till: due.toISOString() });
    expect(br.isError).toBeFalsy();
    expect(bitrixMethods(bitrix.requests)).toContain('tasks.task.add');
    await b.close();
  });
});

describe('Bitrix24 list filters', () => {
  it.each([['abc'], ['-1'], ['1.5']])('list_leads pipeline_id %j is a validation error, not an empty page', async (pipeline) => {
    const c = await connectBitrix(bitrix);
    bitrix.harness.resetLog();
    const e = errorOf(await c.call('list_leads', { entity: 'deal', pipeline_id: pipeline }));
    expect(e.code).toBe('validation');
    expect(e.message).toMatch(/pipeline_id/);
    expect(bitrixMethods(bitrix.requests)).not.toContain('crm.deal.list');
    await c.close();
  });

  it('pipeline_id 0 (the General pipeline) is valid', async () => {
    const c = await connectBitrix(bitrix);
    const r = await c.call('list_leads', { entity: 'deal', pipeline_id: 0, limit: 5 });
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { items: unknown[] }).items.length).toBeGreaterThan(0);
    await c.close();
  });
});
