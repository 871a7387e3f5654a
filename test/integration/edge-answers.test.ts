/**
 * Answers at the edges (issue 16): impossible calendar dates are refused before anything is sent; Bitrix24's
 * date-only CLOSEDATE is a date in the portal's zone; errors that point at a tool off by default say how to
 * turn it on; the demo portal has a country; list_users reads the admin flag the API gives. Expectations are
 * hand-written or read from the emulators' own state, never from the code under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import {
  CREATE_ONLY,
  READ_ONLY,
  WRITE,
  connectBitrix,
  connectKommo,
  errorOf,
  startBitrix,
  structured,
  text,
  writesTo,
  closeAll,
  startBoth,
} from '../helpers/index.js';

let kommo: KommoEmulator;
let bitrix: BitrixEmulator;
beforeAll(async () => {
  ({ kommo, bitrix } = await startBoth());
});
afterAll(() => closeAll(kommo, bitrix));

/** Bitrix24 methods that write, counted inside batches too (the emulator's own count). */
function bitrixWrites(emu: BitrixEmulator): Record<string, number> {
  return Object.fromEntries(Object.entries(emu.stats.methodCalls).filter(([m]) => /\.(add|update|delete|set)$/.test(m)));
}

function bitrixCalls(emu: BitrixEmulator, method: string): number {
  return emu.stats.methodCalls[method] ?? 0;
}

/** Impossible dates and why, written by hand. */
const IMPOSSIBLE: Array<[string, RegExp]> = [
  ['2027-02-30T10:00:00Z', /February 2027 has 28 days/],
  ['2027-02-29', /February 2027 has 28 days/],
  ['2027-04-31T09:00:00+03:00', /April 2027 has 30 days/],
  ['2027-13-01', /no month 13/],
  ['2027-06-00', /June 2027 has 30 days/],
  ['2027-06-10T24:00:00Z', /no hour 24/],
  ['2027-06-10T10:60:00Z', /no minute 60/],
];

describe('impossible calendar dates are refused, naming the field, and nothing is sent', () => {
  it.each(IMPOSSIBLE)('Kommo create_task complete_till %s', async (due, why) => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY });
    const before = kommo.state.tasks.size;
    kommo.resetLog();
    const e = errorOf(await c.call('create_task', { text: 'call back', complete_till: due }));
    expect(e.code).toBe('validation');
    expect(e.message).toMatch(/^complete_till: /);
    expect(e.message).toMatch(why);
    expect(writesTo(kommo.requests)).toHaveLength(0);
    expect(kommo.state.tasks.size).toBe(before);
    await c.close();
  });

  it.each(IMPOSSIBLE)('Bitrix24 create_task complete_till %s', async (due, why) => {
    const c = await connectBitrix(bitrix, { flags: CREATE_ONLY });
    const before = bitrixWrites(bitrix);
    const e = errorOf(await c.call('create_task', { text: 'call back', complete_till: due }));
    expect(e.code).toBe('validation');
    expect(e.message).toMatch(/^complete_till: /);
    expect(e.message).toMatch(why);
    expect(bitrixWrites(bitrix)).toEqual(before);
    await c.close();
  });

  it('list_leads created_from 2026-02-30 is refused on both CRMs before any list is read', async () => {
    const k = await connectKommo(kommo);
    kommo.resetLog();
    const ke = errorOf(await k.call('list_leads', { created_from: '2026-02-30' }));
    expect(ke.code).toBe('validation');
    expect(ke.message).toMatch(/created_from: "2026-02-30" is not a real date: February 2026 has 28 days/);
    expect(kommo.requests.filter((r) => r.path === '/api/v4/leads')).toHaveLength(0);
    await k.close();

    const b = await connectBitrix(bitrix);
    const lists = bitrixCalls(bitrix, 'crm.deal.list') + bitrixCalls(bitrix, 'crm.lead.list');
    const be = errorOf(await b.call('list_leads', { created_from: '2026-02-30', entity: 'deal' }));
    expect(be.code).toBe('validation');
    expect(be.message).toMatch(/created_from: "2026-02-30" is not a real date/);
    expect(bitrixCalls(bitrix, 'crm.deal.list') + bitrixCalls(bitrix, 'crm.lead.list')).toBe(lists);
    await b.close();
  });

  it('a real leap day is accepted and sent as given', async () => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY });
    const r = await c.call('create_task', { text: 'leap day call', complete_till: '2028-02-29T10:00:00Z' });
    expect(r.isError, text(r)).toBeFalsy();
    const stored = [...kommo.state.tasks.values()].at(-1)!;
    // 2028-02-29T10:00:00Z in Unix seconds, worked out by hand: 1835431200.
    expect(stored.complete_till).toBe(1_835_431_200);
    await c.close();
  });
});

describe('Bitrix24: a date-only CLOSEDATE is a date in the portal zone', () => {
  /** The demo portal's zone (Europe/Moscow, UTC+03:00, as its `profile` says). */
  const MSK = 3 * 3600_000;
  const localDay = (iso: string) => new Date(Date.parse(iso) + MSK).toISOString().slice(0, 10);

  it('the demo portal has deals closed the day they were created (CLOSEDATE midnight before DATE_CREATE)', () => {
    const sameDay = [...bitrix.state.deals.values()].filter((d) => d.CLOSED === 'Y' && Date.parse(String(d.CLOSEDATE)) < Date.parse(String(d.DATE_CREATE)));
    expect(sameDay.length).toBeGreaterThan(0);
  });

  it('get_lead: closed_at is the closing date, never before the day the deal was created', async () => {
    const c = await connectBitrix(bitrix);
    const deal = [...bitrix.state.deals.values()].find((d) => d.CLOSED === 'Y' && Date.parse(String(d.CLOSEDATE)) < Date.parse(String(d.DATE_CREATE)))!;
    const lead = structured<{ lead: { created_at: string; closed_at?: string } }>(await c.call('get_lead', { id: Number(deal.ID), entity: 'deal' })).lead;
    // The portal wrote e.g. 2026-05-01T00:00:00+03:00: the date it names.
    expect(lead.closed_at).toBe(String(deal.CLOSEDATE).slice(0, 10));
    expect(lead.closed_at! >= localDay(lead.created_at)).toBe(true);
    await c.close();
  });

  it('a deal won today is closed today in the portal zone', async () => {
    const c = await connectBitrix(bitrix, { flags: WRITE });
    const created = structured<{ lead: { id: number } }>(await c.call('create_lead', { name: 'Won the same day', entity: 'deal' })).lead;
    const r = await c.call('update_lead', { id: created.id, entity: 'deal', status_id: 'WON' });
    expect(r.isError, text(r)).toBeFalsy();
    const lead = structured<{ lead: { created_at: string; closed_at?: string } }>(await c.call('get_lead', { id: created.id, entity: 'deal' })).lead;
    expect(bitrix.state.deals.get(created.id)!.CLOSED).toBe('Y');
    expect(lead.closed_at).toBe(localDay(new Date().toISOString()));
    expect(lead.closed_at! >= localDay(lead.created_at)).toBe(true);
    await c.close();
  });
});

/** The hint for a tool of the metadata toolset, as the issue asks for it (written out by hand). */
const METADATA_HINT = (tool: string) => `${tool} (toolset metadata: add it to CRM_TOOLSETS, e.g. CRM_TOOLSETS=core,activity,metadata)`;

describe('errors that point at a tool off by default name its toolset and the setting', () => {
  it('Kommo: an unknown responsible user', async () => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY });
    kommo.resetLog();
    const e = errorOf(await c.call('create_lead', { name: 'Nobody owns this', responsible_user_id: 987_654 }));
    expect(e.code).toBe('validation');
    expect(e.message).toContain(METADATA_HINT('list_users'));
    expect(writesTo(kommo.requests)).toHaveLength(0);
    await c.close();
  });

  it('Bitrix24: an unknown responsible user', async () => {
    const c = await connectBitrix(bitrix, { flags: CREATE_ONLY });
    const before = bitrixWrites(bitrix);
    const e = errorOf(await c.call('create_lead', { name: 'Nobody owns this', entity: 'deal', responsible_user_id: 987_654 }));
    expect(e.code).toBe('validation');
    expect(e.message).toContain(METADATA_HINT('list_users'));
    expect(bitrixWrites(bitrix)).toEqual(before);
    await c.close();
  });

  it('Kommo: an unknown custom field', async () => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY });
    kommo.resetLog();
    const e = errorOf(await c.call('create_lead', { name: 'Field test', custom_fields: [{ field_name: 'No such field here', value: 'x' }] }));
    expect(e.code).toBe('validation');
    expect(e.message).toContain(METADATA_HINT('get_custom_fields'));
    expect(writesTo(kommo.requests)).toHaveLength(0);
    await c.close();
  });

  it('Kommo: a tag the account does not have, under a policy without admin', async () => {
    const c = await connectKommo(kommo, { flags: CREATE_ONLY });
    kommo.resetLog();
    const e = errorOf(await c.call('create_lead', { name: 'Tag test', tags: ['never-seen-tag-16'] }));
    expect(e.code).toBe('policy_denied');
    expect(e.message).toContain(METADATA_HINT('list_tags'));
    expect(e.message).toContain('(toolset raw: add it to CRM_TOOLSETS, e.g. CRM_TOOLSETS=core,activity,raw)');
    expect(writesTo(kommo.requests)).toHaveLength(0);
    await c.close();
  });
});

describe('Bitrix24 demo portal: its country and the admin flag', () => {
  it('the portal is Russian, so a local number is read as +7', async () => {
    const c = await connectBitrix(bitrix, { flags: CREATE_ONLY });
    expect(structured<{ country: string | null }>(await c.call('get_account')).country).toBe('RU');
    const r = await c.call('create_contact', { first_name: 'Local', last_name: 'Number', phone: '912 888-32-23' });
    expect(r.isError, text(r)).toBeFalsy();
    const id = structured<{ contact: { id: number } }>(r).contact.id;
    const stored = bitrix.state.contacts.get(id)!.PHONE as Array<{ VALUE: string }>;
    // With the country code 7 in front, whatever the punctuation.
    expect(stored.map((p) => p.VALUE.replace(/\D/g, ''))).toEqual(['79128883223']);
    await c.close();
  });

  // The demo portal's administrators (demo-data.ts): user 1 only.
  it.each([
    [1, true],
    [3, false],
  ])('list_users as user %i: its own admin flag is %s, and nobody else is guessed', async (userId, admin) => {
    const emu = await startBitrix({ rateLimit: false, userId });
    try {
      const c = await connectBitrix(emu, { flags: READ_ONLY });
      const users = structured<{ users: Array<{ id: number; is_admin: boolean | null }> }>(await c.call('list_users')).users;
      expect(users.find((u) => u.id === userId)!.is_admin).toBe(admin);
      // user.get carries no admin flag ([D] user-get), so the others stay unknown rather than false.
      expect(users.filter((u) => u.id !== userId).every((u) => u.is_admin === null)).toBe(true);
      expect(emu.stats.methodCalls['profile']).toBeGreaterThan(0);
      await c.close();
    } finally {
      await emu.close();
    }
  });
});
