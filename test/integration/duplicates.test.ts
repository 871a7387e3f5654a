/** No duplicates: existing contacts are found in any email case / phone format; lost responses never double-create. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CREATE_ONLY, structured, writesTo, type Connected, closeAll, kommoSession } from '../helpers/index.js';

let emu: KommoEmulator;
let c: Connected;
beforeAll(async () => {
  ({ emu, c } = await kommoSession({ flags: CREATE_ONLY, timeoutMs: 800, maxRetries: 2 }));
});
afterAll(() => closeAll(c, emu));

async function leadsNamed(name: string): Promise<number> {
  const r = structured<{ items: Array<{ name: string }> }>(await c.call('list_leads', { query: name, limit: 250 }));
  return r.items.filter((l) => l.name === name).length;
}

describe('create_lead finds the existing contact first', () => {
  it.each([{ email: 'IVAN.petrov@EXAMPLE.com' }, { phone: '8 (912) 345 67 89' }, { phone: '79123456789' }])(
    'existing contact %o: returns the lead with created:false and writes nothing',
    async (contact) => {
      emu.resetLog();
      const r = structured<{ created: boolean; lead: { id: number; name: string }; reason: string }>(
        await c.call('create_lead', { name: 'Should not exist', contact: { first_name: 'Ivan', ...contact } }),
      );
      expect(r.created).toBe(false);
      expect(r.lead.name).not.toBe('Should not exist');
      expect(r.reason).toMatch(/already exists/);
      expect(writesTo(emu.requests)).toHaveLength(0);
    },
  );

  it('a contact without a lead is linked, not copied', async () => {
    const contact = structured<{ contact: { id: number } }>(await c.call('create_contact', { first_name: 'Linus', email: 'linus-nolead@example.org' })).contact;
    const r = structured<{ created: boolean; contact_id: number; lead: { contact_ids: number[] } }>(
      await c.call('create_lead', { name: 'Linus lead', contact: { first_name: 'Linus', email: 'Linus-NoLead@example.org' } }),
    );
    expect(r.created).toBe(true);
    expect(r.lead.contact_ids).toEqual([contact.id]);
  });
});

describe('ambiguous failures never create twice', () => {
  it.each([
    ['reset-after', 'the response is lost after the CRM created the lead'],
    ['reset-before', 'the connection drops before the CRM saw the request'],
    ['timeout', 'the CRM never answers'],
  ] as const)('%s: exactly one lead (%s)', async (kind, _why) => {
    const name = `Ambiguous ${kind} ${Date.now()}`;
    emu.injectFault({ kind }, { match: { method: 'POST', path: '/api/v4/leads' } });
    const r = await c.call('create_lead', { name, contact: { first_name: 'Amb', email: `amb-${kind}-${Date.now()}@example.org` } });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    expect(structured<{ created: boolean }>(r).created).toBe(true);
    expect(await leadsNamed(name)).toBe(1);
  });

  it('an ambiguous failure without contact details still finds the lead by name and time', async () => {
    const name = `Nameonly ${Date.now()}`;
    emu.injectFault({ kind: 'reset-after' }, { match: { method: 'POST', path: '/api/v4/leads' } });
    const r = structured<{ created: boolean }>(await c.call('create_lead', { name }));
    expect(r.created).toBe(true);
    expect(await leadsNamed(name)).toBe(1);
  });

  it('a 5xx on create is not blindly re-sent', async () => {
    const name = `Five hundred ${Date.now()}`;
    emu.resetLog();
    emu.injectFault({ kind: 'status', status: 500, body: '{"title":"ErrInternalServer","status":500}' }, { match: { method: 'POST', path: '/api/v4/leads' } });
    const r = await c.call('create_lead', { name });
    // The 500 came before processing here, so the look-before-retry finds nothing and creates once.
    expect(r.isError).toBeFalsy();
    expect(emu.requests.filter((q) => q.method === 'POST' && q.path === '/api/v4/leads')).toHaveLength(2);
    expect(await leadsNamed(name)).toBe(1);
  });
});
