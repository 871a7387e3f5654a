/**
 * Bitrix24 behaviours that a kind emulator used to hide (issue 10): phone match codes in findbycomm, its
 * 20-per-value limit, CONTACT_ID as the primary contact only, user.get paging, and the request/operating
 * time limits that bound read-ahead. Each test asserts on what the emulator received and stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pagesPerRequest, readAheadPages } from '../../src/crms/bitrix24/readahead.js';
import { DEMO, type BMulti, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { corePhoneCode } from '../../src/sandbox/bitrix24/phone.js';
import { FULL, bitrixMethods, connectBitrix, startBitrix, structured, text, type ConnectedBitrix, bitrixSession, closeAll } from '../helpers/index.js';

async function post(url: string, method: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${url}${method}.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const t = await r.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(t) as Record<string, unknown>;
  } catch {
    parsed = { raw: t };
  }
  return { status: r.status, body: parsed };
}

/** Commands (method?query) of every batch the emulator received since the last reset. */
function batchCommands(emu: BitrixEmulator): string[] {
  return emu.requests.filter((r) => r.path.endsWith('/batch.json')).flatMap((r) => Object.values((JSON.parse(r.body) as { cmd: Record<string, string> }).cmd));
}

describe('the core phone match code (DuplicateCommunicationCriterion::normalizePhone, NormalizePhone)', () => {
  it.each([
    ['+7 912 447-03-61', '79124470361'],
    ['89124470361', '79124470361'],
    ['8 (912) 447 03 61', '79124470361'],
    ['+1 (202) 555-0107', '12025550107'],
    ['9124470361', '9124470361'],
    ['0044 20 7946 0123', '442079460123'],
    ['011 44 20 7946 0123', '442079460123'],
    ['020 7946 0123', '2079460123'],
    ['+86 10 1234 5678', '861012345678'],
    ['8 800 555 35 35', '78005553535'],
    ['+7 912 447-03-61#123', '79124470361'],
  ])('%s → %s', (raw, code) => expect(corePhoneCode(raw)).toBe(code));
});

for (const phoneMatch of ['core-normalized', 'exact'] as const) {
  describe(`create_contact / create_lead do not copy people stored in another format (phoneMatch '${phoneMatch}')`, () => {
    let emu: BitrixEmulator;
    let c: ConnectedBitrix;
    beforeAll(async () => {
      ({ emu, c } = await bitrixSession({ flags: FULL }, { phoneMatch }));
    });
    afterAll(() => closeAll(c, emu));

    it('a US number stored as +1 (202) 555-01xx, given as E.164', async () => {
      const rec = [...emu.state.contacts.values()].find((r) => ((r.PHONE as BMulti[]) ?? []).some((m) => /^\+1 \(202\) 555-01\d\d$/.test(m.VALUE)))!;
      const stored = (rec.PHONE as BMulti[]).find((m) => m.VALUE.startsWith('+1'))!.VALUE;
      const before = emu.state.contacts.size;
      emu.harness.resetLog();
      const r = structured<{ created: boolean; contact: { id: number } }>(
        await c.call('create_contact', { first_name: 'Copy', phone: `+1${stored.replace(/\D/g, '').slice(1)}` }),
      );
      expect(r).toMatchObject({ created: false, contact: { id: Number(rec.ID) } });
      expect(bitrixMethods(emu.requests).filter((m) => m.endsWith('.add'))).toEqual([]);
      expect(batchCommands(emu).filter((x) => x.startsWith('crm.contact.add'))).toEqual([]);
      expect(emu.state.contacts.size).toBe(before);
    });

    it('a Russian number stored as +7 9xx xxx-xx-xx, given as 8 9xx …', async () => {
      const rec = [...emu.state.contacts.values()].find(
        (r) => Number(r.ID) > 3 && ((r.PHONE as BMulti[]) ?? []).some((m) => /^\+7 9\d\d \d{3}-\d\d-\d\d$/.test(m.VALUE)),
      )!;
      const digits = (rec.PHONE as BMulti[])
        .find((m) => m.VALUE.startsWith('+7 '))!
        .VALUE.replace(/\D/g, '')
        .slice(1);
      const before = { contacts: emu.state.contacts.size, leads: emu.state.leads.size, deals: emu.state.deals.size };
      const r = structured<{ created: boolean; contact_id: number | null }>(
        await c.call('create_lead', { name: 'Again', entity: 'deal', contact: { first_name: 'Copy', phone: `8 ${digits}` } }),
      );
      expect(r.contact_id).toBe(Number(rec.ID));
      expect(emu.state.contacts.size).toBe(before.contacts);
    });
  });
}

describe('findbycomm: at most 20 matches per value, leads first (core find($entityTypeID, 20); §7.7)', () => {
  let emu: BitrixEmulator;
  let c: ConnectedBitrix;
  const phone = '+7 999 000-11-22';
  let contactId: number;
  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
    c = await connectBitrix(emu, { flags: FULL });
    contactId = (
      await post(emu.webhookUrl, 'crm.contact.add', { fields: { NAME: 'Repeat', LAST_NAME: 'Customer', PHONE: [{ VALUE: phone, VALUE_TYPE: 'MOBILE' }] } })
    ).body.result as number;
    for (let i = 0; i < 20; i++)
      await post(emu.webhookUrl, 'crm.lead.add', { fields: { TITLE: `Repeat order ${i}`, PHONE: [{ VALUE: phone, VALUE_TYPE: 'WORK' }] } });
  });
  afterAll(async () => {
    await c.close();
    await emu.close();
  });

  it('the emulator returns 20 leads and no contact without entity_type, the contact with it', async () => {
    const all = await post(emu.webhookUrl, 'crm.duplicate.findbycomm', { type: 'PHONE', values: [phone] });
    expect(Object.keys(all.body.result as object)).toEqual(['LEAD']);
    expect((all.body.result as { LEAD: number[] }).LEAD).toHaveLength(20);
    expect((await post(emu.webhookUrl, 'crm.duplicate.findbycomm', { type: 'PHONE', entity_type: 'CONTACT', values: [phone] })).body.result).toEqual({
      CONTACT: [contactId],
    });
  });

  it('create_contact returns the existing contact instead of planning a duplicate', async () => {
    emu.harness.resetLog();
    const r = structured<{ created: boolean; contact: { id: number } }>(await c.call('create_contact', { first_name: 'Repeat', phone: '+79990001122' }));
    expect(r).toMatchObject({ created: false, contact: { id: contactId } });
    const dry = structured<{ created: boolean; contact: { id: number } | null }>(
      await c.call('create_contact', { first_name: 'Repeat', phone: '+79990001122', dry_run: true }),
    );
    expect(dry.contact?.id).toBe(contactId);
    expect(batchCommands(emu).some((x) => x.startsWith('crm.duplicate.findbycomm?') && x.includes('entity_type=CONTACT'))).toBe(true);
    expect(bitrixMethods(emu.requests).filter((m) => m.endsWith('.add'))).toEqual([]);
  });
});

describe('CONTACT_ID in crm.deal.list is the primary contact only; deals of a contact come from crm.item.list', () => {
  let emu: BitrixEmulator;
  let c: ConnectedBitrix;
  let second: number;
  let dealId: number;
  const phone = '+7 999 000-33-44';
  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
    c = await connectBitrix(emu, { flags: FULL });
    second = (await post(emu.webhookUrl, 'crm.contact.add', { fields: { NAME: 'Second', PHONE: [{ VALUE: phone, VALUE_TYPE: 'MOBILE' }] } })).body
      .result as number;
    dealId = (await post(emu.webhookUrl, 'crm.deal.add', { fields: { TITLE: 'Shared deal', CONTACT_IDS: [DEMO.ivan.contactId, second] } })).body
      .result as number;
  });
  afterAll(async () => {
    await c.close();
    await emu.close();
  });

  it('the emulator: CONTACT_ID misses the secondary contact, crm.item.list contactIds finds it', async () => {
    expect(emu.state.deals.get(dealId)).toMatchObject({ CONTACT_ID: String(DEMO.ivan.contactId), CONTACT_IDS: [String(DEMO.ivan.contactId), String(second)] });
    expect((await post(emu.webhookUrl, 'crm.deal.list', { filter: { CONTACT_ID: second }, select: ['ID'] })).body.result).toEqual([]);
    const items = await post(emu.webhookUrl, 'crm.item.list', { entityTypeId: 2, filter: { contactIds: second }, select: ['id', 'contactId', 'contactIds'] });
    expect(items.body.result).toEqual({ items: [{ id: dealId, contactId: DEMO.ivan.contactId, contactIds: [DEMO.ivan.contactId, second] }] });
    expect((await post(emu.webhookUrl, 'crm.item.list', { entityTypeId: 2, filter: { contactId: second } })).body.result).toEqual({ items: [] });
    expect((await post(emu.webhookUrl, 'crm.item.list', { entityTypeId: 2, filter: { TITLE_X: 1 } })).status).toBe(400);
  });

  it('search_lead_by_contact and get_contact find the deal; create_lead returns it instead of a duplicate', async () => {
    const s = structured<{ leads: Array<{ id: number }> }>(await c.call('search_lead_by_contact', { phone: '+79990003344' }));
    expect(s.leads.map((l) => l.id)).toContain(dealId);
    const contact = structured<{ lead_ids?: number[] }>(await c.call('get_contact', { id: second }));
    expect(JSON.stringify(contact)).toContain(String(dealId));
    emu.harness.resetLog();
    const before = emu.state.deals.size;
    const r = structured<{ created: boolean; lead: { id: number } }>(
      await c.call('create_lead', { name: 'Dup?', entity: 'deal', contact: { first_name: 'Second', phone: '8 999 000 33 44' } }),
    );
    expect(r).toMatchObject({ created: false, lead: { id: dealId } });
    expect(emu.state.deals.size).toBe(before);
    expect(batchCommands(emu).some((x) => x.startsWith('crm.item.list?'))).toBe(true);
  });
});

describe('users beyond the first 50', () => {
  let emu: BitrixEmulator;
  let c: ConnectedBitrix;
  beforeAll(async () => {
    ({ emu, c } = await bitrixSession({ flags: FULL }));
  });
  afterAll(() => closeAll(c, emu));

  it('list_users returns all 75; responsible_user_id 70 is accepted and stored', async () => {
    expect(emu.state.users.length).toBe(75);
    const users = structured<{ users: Array<{ id: number; name: string | null }> }>(await c.call('list_users')).users;
    expect(users.map((u) => u.id).sort((a, b) => a - b)).toEqual(emu.state.users.map((u) => Number(u.ID)).sort((a, b) => a - b));
    const r = await c.call('create_lead', { name: 'For user 70', entity: 'deal', responsible_user_id: 70 });
    expect(r.isError, text(r)).toBeFalsy();
    const id = structured<{ lead: { id: number } }>(r).lead.id;
    expect(emu.state.deals.get(id)!.ASSIGNED_BY_ID).toBe('70');
    // user.get was paged with start, not read once.
    expect(
      batchCommands(emu)
        .filter((x) => x.startsWith('user.get?'))
        .some((x) => /start=50\b/.test(decodeURIComponent(x))),
    ).toBe(true);
  });
});

describe('read-ahead within the 60 s request limit and the 480 s operating budget', () => {
  it('the emulator reports each command in time.operating and cuts a request off after 60 s (504)', async () => {
    const emu = await startBitrix({ rateLimit: true, costModel: (m, p) => (m === 'crm.deal.list' && JSON.stringify(p).includes('UF_*') ? 5 : undefined) });
    try {
      const cmd = Object.fromEntries(
        Array.from({ length: 3 }, (_, i) => [`p${i}`, `crm.deal.list?select[]=*&select[]=UF_*&start=-1&filter[<ID]=${1000 - i * 50}`]),
      );
      const ok = await post(emu.webhookUrl, 'batch', { cmd });
      const times = (ok.body.result as { result_time: Record<string, { processing: number; operating: number }> }).result_time;
      expect(times.p0).toMatchObject({ processing: 5, operating: 5 });
      expect(times.p2).toMatchObject({ processing: 5, operating: 15 });
      const big = Object.fromEntries(Array.from({ length: 13 }, (_, i) => [`p${i}`, `crm.deal.list?select[]=UF_*&start=-1`]));
      expect((await post(emu.webhookUrl, 'batch', { cmd: big })).status).toBe(504);
      expect(emu.requests.at(-1)!.tag).toBe('REQUEST_TIMEOUT');
    } finally {
      await emu.close();
    }
  });

  it('the sizer: full batches on a fast portal, fewer pages when pages are slow, none ahead past half the budget', () => {
    expect(pagesPerRequest(undefined)).toBe(50);
    expect(pagesPerRequest({ perCallSec: 0.05, operating: 1 })).toBe(50);
    expect(pagesPerRequest({ perCallSec: 4, operating: 10 })).toBe(5);
    expect(pagesPerRequest({ perCallSec: 4, operating: 440 })).toBe(1);
    expect(readAheadPages({ perCallSec: 0.05, operating: 300 }, 2)).toBe(2);
  });

  it('a cursor scan on a slow portal never trips the 60 s limit nor OPERATION_TIME_LIMIT, and sees every deal', async () => {
    // 4 s per 50-row page with UF_* selects: a fixed 50-page read-ahead would be a 200 s request.
    const emu = await startBitrix({ rateLimit: false, costModel: (m, p) => (m === 'crm.deal.list' && JSON.stringify(p).includes('UF_*') ? 4 : undefined) });
    const c = await connectBitrix(emu);
    try {
      const seen = new Set<number>();
      let cursor: string | null = null;
      do {
        const page: { items: Array<{ id: number }>; cursor: string | null } = structured(
          await c.call('list_leads', { entity: 'deal', limit: 100, ...(cursor ? { cursor } : {}) }),
        );
        page.items.forEach((d) => seen.add(d.id));
        cursor = page.cursor;
      } while (cursor && seen.size < 600);
      expect(seen.size).toBeGreaterThanOrEqual(600);
      expect(emu.requests.filter((r) => r.tag === 'REQUEST_TIMEOUT' || r.tag === 'OPERATION_TIME_LIMIT')).toEqual([]);
      for (const r of emu.requests.filter((q) => q.path.endsWith('/batch.json'))) {
        const n = Object.values((JSON.parse(r.body) as { cmd: Record<string, string> }).cmd).filter((x) => x.startsWith('crm.deal.list')).length;
        expect(n * 4).toBeLessThanOrEqual(60);
      }
    } finally {
      await c.close();
      await emu.close();
    }
  });
});
