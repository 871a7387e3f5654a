/**
 * The server survives any response the CRM sends: a payload that does not fit the provider's lenient schemas
 * (src/crms/{kommo,bitrix24}/schemas.ts) is a clear `upstream` error naming where, never a crash
 * (TypeError) or a misleading answer further on; and the next call works. Each case answers 200 with a body
 * of the wrong shape through the emulators' fault scripts (the request reaches the emulator, which answers
 * without processing it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO as BDEMO } from '../../src/sandbox/bitrix24/demo-data.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { DEMO as KDEMO } from '../../src/sandbox/kommo/demo-data.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CREATE_ONLY, connectBitrix, connectKommo, errorOf, startBitrix, startKommo, structured } from '../helpers/index.js';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
beforeAll(async () => {
  [kommo, bitrix] = await Promise.all([startKommo({ rateLimit: false }), startBitrix({ rateLimit: false })]);
});
afterAll(async () => Promise.all([kommo.close(), bitrix.close()]));

const ok = (body: unknown) => ({ kind: 'status' as const, status: 200, body: JSON.stringify(body) });

describe('Kommo answers of the wrong shape', () => {
  it.each([
    [
      'a list item that is not an object',
      'list_leads',
      { limit: 2 },
      { method: 'GET', path: '/api/v4/leads' },
      { _embedded: { leads: [null] } },
      /_embedded\.leads/,
    ],
    [
      'a list that is not a list',
      'list_contacts',
      { limit: 2 },
      { method: 'GET', path: '/api/v4/contacts' },
      { _embedded: { contacts: 'none' } },
      /_embedded\.contacts/,
    ],
    [
      'custom fields that are not a list',
      'get_lead',
      { id: KDEMO.ivanLeadId },
      { method: 'GET', path: `/api/v4/leads/${KDEMO.ivanLeadId}` },
      { id: KDEMO.ivanLeadId, custom_fields_values: 'x' },
      /custom_fields_values/,
    ],
  ] as const)('%s: an upstream error naming where, then the same call works', async (_name, tool, args, match, body, where) => {
    const c = await connectKommo(kommo, { maxRetries: 0 });
    kommo.resetLog();
    kommo.injectFault(ok(body), { match });
    const e = errorOf(await c.call(tool, args));
    expect(e.code).toBe('upstream');
    expect(e.message).toMatch(/Kommo answered GET \/api\/v4\/.* in an unexpected shape/);
    expect(e.message).toMatch(where);
    // The fault was served (the request reached the CRM), and the server keeps serving.
    expect(kommo.requests.some((r) => r.tag === 'fault' && r.path.startsWith(match.path))).toBe(true);
    structured(await c.call(tool, args));
    await c.close();
  });

  it('a create answered with an id that is not one: "accepted but returned no id", not a bogus id', async () => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY, maxRetries: 0 });
    kommo.resetLog();
    kommo.injectFault(ok({ _embedded: { contacts: [{ id: 'x' }] } }), { match: { method: 'POST', path: '/api/v4/contacts' } });
    const e = errorOf(await c.call('create_contact', { first_name: 'Shape', last_name: 'Test', email: 'shape.test.kommo@example.org' }));
    expect(e).toMatchObject({ code: 'upstream' });
    expect(e.message).toMatch(/accepted the contact but returned no id/);
    // Before the schemas, "x" was taken as the id and the agent got a validation error about its own input.
    expect(kommo.requests.filter((r) => r.method === 'GET' && /\/api\/v4\/contacts\/[^/]+$/.test(r.path))).toEqual([]);
    await c.close();
  });
});

describe('Bitrix24 answers of the wrong shape', () => {
  it('a list row that is not an object: an upstream error, then the same call works', async () => {
    const c = await connectBitrix(bitrix, { maxRetries: 0 });
    structured(await c.call('get_pipelines', {})); // metadata read and cached first
    bitrix.harness.resetLog();
    bitrix.harness.injectFault(ok({ result: [null], total: 1 }), { match: { path: 'crm.deal.list' } });
    const e = errorOf(await c.call('list_leads', { entity: 'deal', limit: 2 }));
    expect(e.code).toBe('upstream');
    expect(e.message).toMatch(/Bitrix24 answered crm\.deal\.list in an unexpected shape \(at 0:/);
    expect(bitrix.requests.some((r) => r.tag === 'fault' && r.path.endsWith('crm.deal.list.json'))).toBe(true);
    expect(structured<{ items: unknown[] }>(await c.call('list_leads', { entity: 'deal', limit: 2 })).items).toHaveLength(2);
    await c.close();
  });

  it('a batch whose result is not a map: upstream, not "not found"', async () => {
    const c = await connectBitrix(bitrix, { maxRetries: 0 });
    structured(await c.call('get_pipelines', {}));
    bitrix.harness.resetLog();
    // Before the schemas this read as a batch with no results, and get_lead answered not_found for a deal that exists.
    bitrix.harness.injectFault(ok({ result: { result: 'oops', result_error: [] } }), { match: { path: /\/batch\.json$/ } });
    const e = errorOf(await c.call('get_lead', { id: BDEMO.ivan.dealId, entity: 'deal' }));
    expect(e.code).toBe('upstream');
    expect(e.message).toMatch(/Bitrix24 answered batch in an unexpected shape \(at result:/);
    expect(structured<{ lead: { id: number } }>(await c.call('get_lead', { id: BDEMO.ivan.dealId, entity: 'deal' })).lead.id).toBe(BDEMO.ivan.dealId);
    await c.close();
  });
});
