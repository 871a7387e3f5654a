/** Behaviour of the Bitrix24 REST emulator over real sockets; each case names the fact-sheet section. */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO, startBitrixEmulator, type BMulti, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

type Body = Record<string, unknown>;

async function send(url: string, init: Parameters<typeof request>[1] = {}): Promise<Answer> {
  const res = await request(url, init);
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body: text ? (JSON.parse(text) as Body) : {} };
}

function post(base: string, method: string, params: Body = {}): Promise<Answer> {
  return send(`${base}${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(params) });
}

function result<T>(a: Answer): T {
  if (a.status !== 200) throw new Error(`HTTP ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body.result as T;
}

interface Batch {
  result: unknown;
  result_error: unknown;
  result_total: unknown;
  result_next: unknown;
  result_time: unknown;
}

let emu: BitrixEmulator;
let hook: string;

beforeAll(async () => {
  emu = await startBitrixEmulator({ rateLimit: false });
  hook = emu.webhookUrl;
});
afterAll(async () => emu.close());

describe('URLs, auth and parameter encodings (§1, §2.1)', () => {
  it.each(['CRM.LEAD.LIST', 'crm.lead.list.json', 'crm.lead.list/', 'Crm.Lead.List.json/'])('%s is crm.lead.list', async (m) => {
    const r = await post(hook, m);
    expect(r.status).toBe(200);
    expect(r.body.total).toBe(emu.state.leads.size);
    expect(String(r.headers['content-type'])).toMatch(/application\/json/);
  });

  it('unknown method → 404 ERROR_METHOD_NOT_FOUND', async () => {
    const r = await post(hook, 'crm.nothing.here');
    expect(r).toMatchObject({ status: 404, body: { error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found!' } });
    expect((await post(hook, 'crm.%E0%A4%A.list')).status).toBe(404);
    expect((await post(`${emu.url}/rest/api/${DEMO.userId}/${emu.webhookSecret}/`, 'tasks.task.get')).status).toBe(404);
  });

  it('wrong secret or user → 401 NO_AUTH_FOUND, nothing runs', async () => {
    const before = emu.state.leads.size;
    for (const base of [`${emu.url}/rest/${DEMO.userId}/wrongsecret/`, `${emu.url}/rest/999/${emu.webhookSecret}/`, `${emu.url}/rest/`]) {
      const r = await post(base, 'crm.lead.add', { fields: { TITLE: 'x' } });
      expect(r).toMatchObject({ status: 401, body: { error: 'NO_AUTH_FOUND', error_description: 'Wrong authorization data' } });
    }
    expect(emu.state.leads.size).toBe(before);
  });

  it('XML transport and other verbs fail loudly', async () => {
    expect((await send(`${hook}crm.lead.list.xml`)).status).toBe(501);
    expect((await send(`${hook}crm.lead.list`, { method: 'PUT' })).status).toBe(405);
    expect((await send(`${hook}crm.lead.add`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(415);
  });

  it('GET query with PHP brackets', async () => {
    const r = await send(`${hook}crm.deal.list?filter[CATEGORY_ID]=1&select[]=ID&select[]=CATEGORY_ID&order[ID]=DESC`);
    const rows = result<Array<Body>>(r);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((d) => d.CATEGORY_ID === '1' && Object.keys(d).length === 2)).toBe(true);
    expect(Number(rows[0]!.ID)).toBeGreaterThan(Number(rows[1]!.ID));
  });

  it('form-urlencoded body (fixture crm.lead.add.form.txt)', async () => {
    const body =
      'fields[TITLE]=My%20company&fields[PHONE][0][VALUE]=112233&fields[PHONE][0][VALUE_TYPE]=WORK&fields[PHONE][1][VALUE]=555888112&fields[PHONE][1][VALUE_TYPE]=OTHER';
    const id = result<number>(
      await send(`${hook}crm.lead.add.json`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }),
    );
    const lead = emu.state.leads.get(id)!;
    expect(lead.TITLE).toBe('My company');
    expect((lead.PHONE as BMulti[]).map((p) => [p.VALUE, p.VALUE_TYPE, p.TYPE_ID])).toEqual([
      ['112233', 'WORK', 'PHONE'],
      ['555888112', 'OTHER', 'PHONE'],
    ]);
    expect(lead.HAS_PHONE).toBe('Y');
  });

  it('multipart/form-data body', async () => {
    // Built by hand, as PHP clients and browsers send it: undici 7's own FormData never sends its body on
    // Node 24, and the emulator's parsing is what this test is about.
    const boundary = '----crm-mcp-test-boundary';
    const parts: Array<[string, string]> = [
      ['FIELDS[NAME]', 'Multi'],
      ['FIELDS[LAST_NAME]', 'Part'],
      ['FIELDS[EMAIL][0][VALUE]', 'multi.part@example.com'],
    ];
    const body = parts.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') + `--${boundary}--\r\n`;
    const id = result<number>(
      await send(`${hook}crm.contact.add`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body }),
    );
    const c = emu.state.contacts.get(id)!;
    expect([c.NAME, c.LAST_NAME, (c.EMAIL as BMulti[])[0]?.VALUE, (c.EMAIL as BMulti[])[0]?.VALUE_TYPE]).toEqual([
      'Multi',
      'Part',
      'multi.part@example.com',
      'WORK',
    ]);
  });

  it('top-level names in any documented casing; unknown and read-only fields are ignored (§1.4)', async () => {
    const id = result<number>(
      await post(hook, 'crm.deal.add', {
        FIELDS: { TITLE: 'Cased', NOT_A_FIELD: 1, DATE_CREATE: '2001-01-01T00:00:00+00:00' },
        PARAMS: { REGISTER_SONET_EVENT: 'N' },
      }),
    );
    expect(result(await post(hook, 'crm.deal.update', { ID: id, arFields: { TITLE: 'Cased 2' } }))).toBe(true);
    const d = emu.state.deals.get(id)!;
    expect(d.TITLE).toBe('Cased 2');
    expect(d).not.toHaveProperty('NOT_A_FIELD');
    expect(String(d.DATE_CREATE)).not.toMatch(/^2001/);
    expect(await post(hook, 'crm.deal.get', { id: 'abc' })).toMatchObject({
      status: 400,
      body: { error: '', error_description: 'ID is not defined or invalid.' },
    });
    expect(await post(hook, 'crm.deal.add', { fields: 'nope' })).toMatchObject({
      status: 400,
      body: { error: '', error_description: "Parameter 'fields' must be array." },
    });
  });

  it('crm.timeline.comment.add takes only lower-case fields', async () => {
    expect((await post(hook, 'crm.timeline.comment.add', { FIELDS: { ENTITY_ID: 1, ENTITY_TYPE: 'deal', COMMENT: 'x' } })).status).toBe(400);
    const id = result<number>(await post(hook, 'crm.timeline.comment.add', { fields: { ENTITY_ID: DEMO.ivan.dealId, ENTITY_TYPE: 'deal', COMMENT: 'Hello' } }));
    const list = result<Array<Body>>(await post(hook, 'crm.timeline.comment.list', { filter: { ENTITY_ID: DEMO.ivan.dealId, ENTITY_TYPE: 'deal' } }));
    expect(list.map((c) => Number(c.ID))).toContain(id);
    expect(await post(hook, 'crm.timeline.comment.add', { fields: { ENTITY_ID: 99999999, ENTITY_TYPE: 'deal', COMMENT: 'x' } })).toMatchObject({
      status: 400,
      body: { error: 'NOT_FOUND' },
    });
  });

  it('the auth parameter is stripped in webhook mode', async () => {
    const r = await post(hook, 'crm.lead.list', { auth: 'whatever', select: ['ID'], start: -1 });
    expect(r.status).toBe(200);
  });
});

describe('lists: paging, filter, order, select (§4.1, §7.3)', () => {
  it('fast paging over every deal: order ID ASC, filter >ID, start=-1', async () => {
    const seen: number[] = [];
    let last = 0;
    for (let guard = 0; guard < 100; guard++) {
      const r = await post(hook, 'crm.deal.list', { order: { ID: 'ASC' }, filter: { '>ID': last }, select: ['ID'], start: -1 });
      expect(r.body.total).toBe(0);
      expect(r.body).not.toHaveProperty('next');
      const rows = result<Array<{ ID: string }>>(r);
      seen.push(...rows.map((x) => Number(x.ID)));
      if (rows.length < 50) break;
      last = Number(rows.at(-1)!.ID);
    }
    expect(seen.length).toBe(emu.state.deals.size);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(1000);
  });

  it('classic paging: next/total, start rounded down to the page, no next on the last page', async () => {
    const total = emu.state.contacts.size;
    const p0 = await post(hook, 'crm.contact.list', { select: ['ID'] });
    expect(p0.body).toMatchObject({ next: 50, total });
    const p10 = await post(hook, 'crm.contact.list', { select: ['ID'], start: 10 });
    expect(p10.body.result).toEqual(p0.body.result);
    const lastStart = Math.floor((total - 1) / 50) * 50;
    const pl = await post(hook, 'crm.contact.list', { select: ['ID'], start: lastStart });
    expect(pl.body).not.toHaveProperty('next');
    expect((pl.body.result as unknown[]).length).toBe(total - lastStart);
    const none = await post(hook, 'crm.contact.list', { filter: { ID: 99999999 } });
    expect(none.body).toMatchObject({ result: [], total: 0 });
  });

  it('filter prefixes >=, <, %, !, @, !@, =% and IN arrays', async () => {
    const deals = [...emu.state.deals.values()];
    const ids = async (filter: Body) => {
      const out: number[] = [];
      for (let start = 0; ; start += 50) {
        const r = await post(hook, 'crm.deal.list', { filter, select: ['ID'], start });
        out.push(...result<Array<{ ID: string }>>(r).map((x) => Number(x.ID)));
        if (r.body.next === undefined) return out;
      }
    };
    const exp = (pred: (d: Record<string, unknown>) => boolean) => deals.filter(pred).map((d) => Number(d.ID));
    expect(await ids({ '>=OPPORTUNITY': 400000, '<ID': 600 })).toEqual(exp((d) => Number(d.OPPORTUNITY) >= 400000 && Number(d.ID) < 600));
    expect(await ids({ '%TITLE': 'pilot' })).toEqual(exp((d) => String(d.TITLE).toLowerCase().includes('pilot')));
    expect(await ids({ '@STAGE_ID': ['WON', 'C1:WON'] })).toEqual(exp((d) => d.STAGE_ID === 'WON' || d.STAGE_ID === 'C1:WON'));
    expect(await ids({ STAGE_ID: ['WON', 'LOSE'], ASSIGNED_BY_ID: 2 })).toEqual(
      exp((d) => (d.STAGE_ID === 'WON' || d.STAGE_ID === 'LOSE') && d.ASSIGNED_BY_ID === '2'),
    );
    expect(await ids({ '!CATEGORY_ID': 0, '!@STAGE_ID': ['C1:WON'] })).toEqual(exp((d) => d.CATEGORY_ID !== '0' && d.STAGE_ID !== 'C1:WON'));
    expect(await ids({ '=%TITLE': 'Pilot%' })).toEqual(exp((d) => /^pilot/i.test(String(d.TITLE))));
    expect(await ids({ CONTACT_ID: DEMO.ivan.contactId })).toEqual([DEMO.ivan.dealId, DEMO.ivan.wonDealId]);
    expect(await ids({ [DEMO.userFields.deal.delivery]: DEMO.enums.delivery.courier, '<ID': 50 })).toEqual(
      exp((d) => d[DEMO.userFields.deal.delivery] === DEMO.enums.delivery.courier && Number(d.ID) < 50),
    );
  });

  it('dates filter in portal time; order by any field', async () => {
    const r = await post(hook, 'crm.lead.list', {
      filter: { '>=DATE_CREATE': '2025-01-01T00:00:00' },
      order: { OPPORTUNITY: 'DESC' },
      select: ['ID', 'OPPORTUNITY', 'DATE_CREATE'],
    });
    const rows = result<Array<{ OPPORTUNITY: string; DATE_CREATE: string }>>(r);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((x) => Date.parse(x.DATE_CREATE) >= Date.parse('2025-01-01T00:00:00+03:00'))).toBe(true);
    const amounts = rows.map((x) => Number(x.OPPORTUNITY));
    expect(amounts).toEqual([...amounts].sort((a, b) => b - a));
    expect(await post(hook, 'crm.lead.list', { order: { ID: 'SIDEWAYS' } })).toMatchObject({ status: 400, body: { error: 'ERROR_ARGUMENT' } });
  });

  it('unknown filter fields and LIKE on status fields are refused, not ignored', async () => {
    expect(await post(hook, 'crm.deal.list', { filter: { NO_SUCH_FIELD: 1 } })).toMatchObject({ status: 400, body: { error: 'EMULATOR_UNSUPPORTED' } });
    expect((await post(hook, 'crm.deal.list', { filter: { '%STAGE_ID': 'WON' } })).status).toBe(400);
  });

  it('select: default * + UF_*, multi-fields only when named', async () => {
    const def = result<Array<Body>>(await post(hook, 'crm.contact.list', { filter: { ID: DEMO.ivan.contactId } }))[0]!;
    expect(def).toHaveProperty(DEMO.userFields.contact.messenger, 'Telegram');
    expect(def).not.toHaveProperty('PHONE');
    const star = result<Array<Body>>(await post(hook, 'crm.contact.list', { filter: { ID: DEMO.ivan.contactId }, select: ['*'] }))[0]!;
    expect(Object.keys(star).some((k) => k.startsWith('UF_'))).toBe(false);
    const named = result<Array<Body>>(await post(hook, 'crm.contact.list', { filter: { ID: DEMO.ivan.contactId }, select: ['NAME', 'PHONE', 'EMAIL'] }))[0]!;
    expect(Object.keys(named)).toEqual(['ID', 'NAME', 'PHONE', 'EMAIL']);
    expect((named.PHONE as BMulti[])[0]).toMatchObject({ VALUE: DEMO.ivan.phone, VALUE_TYPE: 'MOBILE', TYPE_ID: 'PHONE' });
  });

  it('filter by a phone or email value', async () => {
    const byPhone = result<Array<{ ID: string }>>(await post(hook, 'crm.contact.list', { filter: { PHONE: DEMO.ivan.phone }, select: ['ID'] }));
    expect(byPhone.map((x) => Number(x.ID))).toEqual([DEMO.ivan.contactId]);
    const byEmail = result<Array<{ ID: string }>>(await post(hook, 'crm.contact.list', { filter: { EMAIL: 'OLGA.SMIRNOVA@example.com' }, select: ['ID'] }));
    expect(byEmail.map((x) => Number(x.ID))).toEqual([...DEMO.olga.contactIds]);
  });
});

describe('records (§7.2, §7.4, §7.6)', () => {
  it('multi-field update: new items added, {ID, DELETE} and empty VALUE remove, {ID, VALUE} overwrites', async () => {
    const id = result<number>(
      await post(hook, 'crm.contact.add', { fields: { NAME: 'Multi', PHONE: [{ VALUE: '+100' }, { VALUE: '+200', VALUE_TYPE: 'HOME' }, { VALUE: '' }] } }),
    );
    const phones = () => (emu.state.contacts.get(id)!.PHONE as BMulti[]).map((p) => [p.VALUE, p.VALUE_TYPE]);
    expect(phones()).toEqual([
      ['+100', 'WORK'],
      ['+200', 'HOME'],
    ]);
    const [a, b] = emu.state.contacts.get(id)!.PHONE as [BMulti, BMulti];
    result(await post(hook, 'crm.contact.update', { id, fields: { PHONE: [{ VALUE: '+300', VALUE_TYPE: 'MOBILE' }] } }));
    expect(phones()).toEqual([
      ['+100', 'WORK'],
      ['+200', 'HOME'],
      ['+300', 'MOBILE'],
    ]);
    result(
      await post(hook, 'crm.contact.update', {
        id,
        fields: {
          PHONE: [
            { ID: a.ID, DELETE: 'Y' },
            { ID: b.ID, VALUE: '+222' },
          ],
        },
      }),
    );
    expect(phones()).toEqual([
      ['+222', 'HOME'],
      ['+300', 'MOBILE'],
    ]);
    const c = (emu.state.contacts.get(id)!.PHONE as BMulti[]).find((p) => p.VALUE === '+300')!;
    result(await post(hook, 'crm.contact.update', { id, fields: { PHONE: [{ ID: c.ID, VALUE: '' }], NAME: 'Multi 2' } }));
    expect(phones()).toEqual([['+222', 'HOME']]);
    expect(emu.state.contacts.get(id)!.NAME).toBe('Multi 2');
    result(await post(hook, 'crm.contact.update', { id, fields: { PHONE: [{ ID: b.ID, DELETE: 'Y' }] } }));
    expect(emu.state.contacts.get(id)!.HAS_PHONE).toBe('N');
    expect(await post(hook, 'crm.contact.update', { id, fields: { PHONE: '+1 555' } })).toMatchObject({ status: 400 });
  });

  it('deal stages: defaults, semantics, closing, pipeline fixed on update', async () => {
    const id = result<number>(await post(hook, 'crm.deal.add', { fields: { TITLE: 'Stage test', CATEGORY_ID: DEMO.categories.wholesale } }));
    expect(emu.state.deals.get(id)).toMatchObject({ STAGE_ID: 'C1:NEW', STAGE_SEMANTIC_ID: 'P', CLOSED: 'N', IS_NEW: 'Y' });
    result(await post(hook, 'crm.deal.update', { id, fields: { STAGE_ID: 'C1:WON', CATEGORY_ID: 0 } }));
    expect(emu.state.deals.get(id)).toMatchObject({ STAGE_ID: 'C1:WON', CATEGORY_ID: '1', STAGE_SEMANTIC_ID: 'S', CLOSED: 'Y' });
    expect((await post(hook, 'crm.deal.update', { id, fields: { STAGE_ID: 'WON' } })).status).toBe(400);
    const byStage = result<number>(await post(hook, 'crm.deal.add', { fields: { STAGE_ID: 'C3:UC_MEETING' } }));
    expect(emu.state.deals.get(byStage)).toMatchObject({ CATEGORY_ID: '3', TITLE: `Deal #${byStage}` });
  });

  it('lead IS_RETURN_CUSTOMER follows CONTACT_ID; delete then get is Not found', async () => {
    const id = result<number>(await post(hook, 'crm.lead.add', { fields: { TITLE: 'Return', CONTACT_ID: DEMO.ivan.contactId, IS_RETURN_CUSTOMER: 'N' } }));
    expect(emu.state.leads.get(id)).toMatchObject({ IS_RETURN_CUSTOMER: 'Y', CONTACT_ID: String(DEMO.ivan.contactId), STATUS_SEMANTIC_ID: 'P' });
    expect(result(await post(hook, 'crm.lead.delete', { id }))).toBe(true);
    expect(await post(hook, 'crm.lead.get', { id })).toMatchObject({ status: 400, body: { error: '', error_description: 'Not found' } });
    expect((await post(hook, 'crm.lead.delete', { id })).status).toBe(400);
  });

  it('directories: deal pipelines with 5–7 stages each, lead statuses, deal contact items', async () => {
    const cats = result<{ categories: Array<{ id: number; isDefault: string }> }>(await post(hook, 'crm.category.list', { entityTypeId: 2 })).categories;
    expect(cats.map((c) => c.id).sort()).toEqual([0, 1, 3]);
    for (const c of cats) {
      const entity = c.id === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${c.id}`;
      const stages = result<Array<{ SEMANTICS: string | null }>>(await post(hook, 'crm.status.list', { filter: { ENTITY_ID: entity } }));
      expect(stages.length).toBeGreaterThanOrEqual(5);
      expect(stages.length).toBeLessThanOrEqual(7);
    }
    const statuses = result<Array<{ STATUS_ID: string }>>(await post(hook, 'crm.status.list', { filter: { ENTITY_ID: 'STATUS' } }));
    expect(statuses.map((s) => s.STATUS_ID)).toEqual(['NEW', 'IN_PROCESS', 'PROCESSED', 'CONVERTED', 'JUNK']);
    expect(result(await post(hook, 'crm.deal.contact.items.get', { id: DEMO.ivan.dealId }))).toEqual([
      { CONTACT_ID: DEMO.ivan.contactId, SORT: 10, ROLE_ID: 0, IS_PRIMARY: 'Y' },
    ]);
    expect((await post(hook, 'crm.category.list', { entityTypeId: 1 })).body.error).toBe('NOT_FOUND');
  });

  it('user fields are listed with labels and enumeration items', async () => {
    const ufs = result<Array<Body>>(await post(hook, 'crm.deal.userfield.list', { filter: { LANG: 'en' } }));
    expect(ufs.find((u) => u.FIELD_NAME === DEMO.userFields.deal.delivery)).toMatchObject({
      USER_TYPE_ID: 'enumeration',
      EDIT_FORM_LABEL: 'Delivery type',
      LIST: expect.any(Array),
    });
    const fields = result<Record<string, Body>>(await post(hook, 'crm.deal.fields'));
    expect(fields[DEMO.userFields.deal.contract]).toMatchObject({ isDynamic: true, formLabel: 'Contract number' });
    expect(fields.CATEGORY_ID).toMatchObject({ type: 'crm_category', isImmutable: true });
  });

  it('demo data: counts, Ivan, mixed phone formats and mixed-case emails', () => {
    expect(emu.state.deals.size).toBeGreaterThanOrEqual(DEMO.counts.deals);
    expect(emu.state.leads.size).toBeGreaterThanOrEqual(100);
    expect(emu.state.contacts.size).toBeGreaterThanOrEqual(150);
    expect(emu.state.companies.size).toBeGreaterThanOrEqual(50);
    const ivan = emu.state.contacts.get(DEMO.ivan.contactId)!;
    expect([ivan.NAME, ivan.LAST_NAME]).toEqual(['Ivan', 'Petrov']);
    const phones = [...emu.state.contacts.values()].flatMap((c) => (c.PHONE as BMulti[]).map((p) => p.VALUE));
    for (const re of [/^\+7 \d{3} \d{3}-\d{2}-\d{2}$/, /^8\d{10}$/, /^\+7\d{10}$/, /^8 \(\d{3}\) \d{3} \d{2} \d{2}$/, /^\+(44|1|49|33)\b/])
      expect(
        phones.some((p) => re.test(p)),
        String(re),
      ).toBe(true);
    const emails = [...emu.state.contacts.values()].flatMap((c) => (c.EMAIL as BMulti[]).map((p) => p.VALUE));
    expect(emails.some((e) => e !== e.toLowerCase())).toBe(true);
    const users = new Set([...emu.state.deals.values()].map((d) => d.ASSIGNED_BY_ID));
    expect(users.size).toBeGreaterThanOrEqual(4);
  });

  it('the same seed gives the same portal; well-known records do not depend on the seed', async () => {
    const a = await startBitrixEmulator({ rateLimit: false, seed: 42 });
    const b = await startBitrixEmulator({ rateLimit: false, seed: 42 });
    const c = await startBitrixEmulator({ rateLimit: false, seed: 7 });
    try {
      const pick = (e: BitrixEmulator) => [...e.state.deals.values()].slice(0, 300).map((d) => [d.STAGE_ID, d.OPPORTUNITY, d.CONTACT_ID, d.ASSIGNED_BY_ID]);
      expect(pick(a)).toEqual(pick(b));
      expect(pick(c)).not.toEqual(pick(a));
      expect(c.state.contacts.get(DEMO.ivan.contactId)).toMatchObject({ NAME: 'Ivan', LAST_NAME: 'Petrov' });
      expect(c.state.deals.get(DEMO.ivan.dealId)!.CONTACT_ID).toBe(String(DEMO.ivan.contactId));
    } finally {
      await Promise.all([a, b, c].map((e) => e.close()));
    }
  });
});

describe('crm.duplicate.findbycomm and merging (§7.7, §8)', () => {
  const find = (type: string, values: string[], entity_type?: string) =>
    post(hook, 'crm.duplicate.findbycomm', { type, values, ...(entity_type ? { entity_type } : {}) });

  // Was "matches the stored string exactly", which is not what the core does: it compares match codes
  // (DuplicateCommunicationCriterion::normalizePhone), so formats of one number are the same duplicate.
  it('compares phones by the core match code: any format of the number, not one without its country code', async () => {
    expect(result(await find('PHONE', [DEMO.ivan.phone]))).toEqual({ LEAD: [DEMO.ivan.leadId], CONTACT: [DEMO.ivan.contactId] });
    expect(result(await find('PHONE', ['+7 912 345-67-89']))).toEqual({ LEAD: [DEMO.ivan.leadId], CONTACT: [DEMO.ivan.contactId] });
    expect(result(await find('PHONE', ['8 (912) 345 67 89'], 'CONTACT'))).toEqual({ CONTACT: [DEMO.ivan.contactId] });
    expect(result(await find('PHONE', ['9123456789']))).toEqual([]);
    expect(result(await find('PHONE', ['89165551234'], 'CONTACT'))).toEqual({ CONTACT: [...DEMO.olga.contactIds] });
  });

  it("phoneMatch 'exact': only the stored string matches", async () => {
    const e = await startBitrixEmulator({ rateLimit: false, phoneMatch: 'exact' });
    try {
      const f = (values: string[], entity_type?: string) =>
        post(e.webhookUrl, 'crm.duplicate.findbycomm', { type: 'PHONE', values, ...(entity_type ? { entity_type } : {}) });
      expect(result(await f([DEMO.ivan.phone]))).toEqual({ LEAD: [DEMO.ivan.leadId], CONTACT: [DEMO.ivan.contactId] });
      expect(result(await f(['+7 912 345-67-89', '89123456789']))).toEqual([]);
      expect(result(await f(['89165551234'], 'CONTACT'))).toEqual({ CONTACT: [DEMO.olga.contactIds[1]] });
    } finally {
      await e.close();
    }
  });

  it('emails ignore case', async () => {
    expect(result(await find('EMAIL', ['OLGA.SMIRNOVA@EXAMPLE.COM'], 'CONTACT'))).toEqual({ CONTACT: [...DEMO.olga.contactIds] });
  });

  it('documented errors', async () => {
    expect(await post(hook, 'crm.duplicate.findbycomm', { values: ['x'] })).toMatchObject({
      status: 400,
      body: { error: 'Communication type is not defined', error_description: "Parameter 'type' is required." },
    });
    expect((await post(hook, 'crm.duplicate.findbycomm', { type: 'PHONE', values: '+1' })).status).toBe(400);
    expect(
      (
        await find(
          'PHONE',
          Array.from({ length: 21 }, (_, i) => `+1${i}`),
        )
      ).status,
    ).toBe(400);
    expect((await find('FAX', ['1'])).status).toBe(400);
  });

  it('crm.entity.mergebatch merges the others into the first record', async () => {
    const e = await startBitrixEmulator({ rateLimit: false });
    try {
      const [a, b] = DEMO.olga.contactIds;
      const dealId = result<number>(await post(e.webhookUrl, 'crm.deal.add', { fields: { TITLE: 'Olga B deal', CONTACT_ID: b } }));
      const r = result<{ STATUS: string; ENTITY_IDS: number[] }>(
        await post(e.webhookUrl, 'crm.entity.mergebatch', { params: { entityTypeId: 3, entityIds: [a, b] } }),
      );
      expect(r).toEqual({ STATUS: 'SUCCESS', ENTITY_IDS: [b] });
      expect(e.state.contacts.has(b)).toBe(false);
      const kept = e.state.contacts.get(a)!;
      expect((kept.PHONE as BMulti[]).map((p) => p.VALUE)).toEqual([...DEMO.olga.phones]);
      expect((kept.EMAIL as BMulti[]).map((p) => p.VALUE)).toEqual([DEMO.olga.emails[0]]);
      expect(e.state.deals.get(dealId)!.CONTACT_ID).toBe(String(a));
    } finally {
      await e.close();
    }
  });
});

describe('batch (§4.2)', () => {
  it('$result references: a contact, then a deal bound to it, then a list row reference', async () => {
    const r = result<Batch>(
      await post(hook, 'batch', {
        halt: 1,
        cmd: {
          contact: 'crm.contact.add?fields[NAME]=Batch&fields[LAST_NAME]=Person&fields[PHONE][0][VALUE]=%2B44%2020%207946%200999',
          deal: 'crm.deal.add?fields[TITLE]=Batch%20deal&fields[CONTACT_ID]=$result[contact]&fields[OPPORTUNITY]=1500',
          list: 'crm.deal.list?filter[ID]=$result[deal]&select[]=ID&select[]=CONTACT_ID',
          again: 'crm.deal.get?id=$result[list][0][ID]',
        },
      }),
    );
    const res = r.result as { contact: number; deal: number; list: Array<{ ID: string; CONTACT_ID: string }>; again: { TITLE: string } };
    expect(r.result_error).toEqual([]);
    expect(res.list).toEqual([{ ID: String(res.deal), CONTACT_ID: String(res.contact) }]);
    expect(res.again.TITLE).toBe('Batch deal');
    expect(r.result_total).toEqual({ list: 1 });
    expect((emu.state.contacts.get(res.contact)!.PHONE as BMulti[])[0]!.VALUE).toBe('+44 20 7946 0999');
    expect(Object.keys(r.result_time as object)).toEqual(['contact', 'deal', 'list', 'again']);
  });

  it('halt=0 runs every command; halt=1 stops at the first error', async () => {
    const cmd = { bad: 'crm.lead.get?id=987654321', good: 'crm.lead.list?select[]=ID&start=-1' };
    const h0 = result<Batch>(await post(hook, 'batch', { halt: 0, cmd }));
    expect(h0.result_error).toEqual({ bad: { error: '', error_description: 'Not found' } });
    expect(Object.keys(h0.result as object)).toEqual(['good']);
    expect(h0.result_total).toEqual({ good: 0 });
    const h1 = result<Batch>(await post(hook, 'batch', { halt: 1, cmd }));
    expect(h1.result).toEqual([]);
    expect(Object.keys(h1.result_error as object)).toEqual(['bad']);
  });

  it('an array cmd gives JSON lists keyed by position; form-encoded batch works too', async () => {
    const r = result<Batch>(await post(hook, 'batch', { cmd: ['crm.settings.mode.get', 'scope'] }));
    expect(r.result).toEqual([1, expect.arrayContaining(['crm'])]);
    const body = `halt=0&cmd[a]=${encodeURIComponent('crm.deal.list?filter[>ID]=10&select[0]=ID&order[ID]=ASC&start=-1')}`;
    const f = result<Batch>(await send(`${hook}batch.json`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }));
    expect((f.result as { a: Array<{ ID: string }> }).a[0]!.ID).toBe('11');
  });

  it('51 commands: 50 run, the 51st gets ERROR_BATCH_LENGTH_EXCEEDED; each command is counted', async () => {
    const before = emu.stats.methodCalls['crm.settings.mode.get'] ?? 0;
    const batchesBefore = emu.stats.methodCalls.batch ?? 0;
    const cmd = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, 'crm.settings.mode.get']));
    const r = result<Batch>(await post(hook, 'batch', { halt: 0, cmd }));
    expect(Object.keys(r.result as object)).toHaveLength(50);
    expect(r.result_error).toEqual({ c50: { error: 'ERROR_BATCH_LENGTH_EXCEEDED', error_description: 'Max batch length exceeded' } });
    expect(emu.stats.methodCalls['crm.settings.mode.get']! - before).toBe(50);
    expect(emu.stats.methodCalls.batch! - batchesBefore).toBe(1);
  });

  it('nested batch and unknown methods are per-command errors', async () => {
    const r = result<Batch>(await post(hook, 'batch', { cmd: { nested: 'batch?cmd[x]=scope', nope: 'crm.nope.list', skipped: 42 } }));
    expect(r.result_error).toEqual({
      nested: { error: 'ERROR_BATCH_METHOD_NOT_ALLOWED', error_description: 'Method is not allowed for batch usage' },
      nope: { error: 'ERROR_METHOD_NOT_FOUND', error_description: 'Method not found!' },
    });
  });
});

describe('limits (§5)', () => {
  it('leaky bucket: a tight burst overflows after 50 with 503 and nothing runs', async () => {
    const e = await startBitrixEmulator({ demo: false });
    try {
      const statuses: number[] = [];
      const t0 = Date.now();
      for (let i = 0; i < 60; i++) statuses.push((await post(e.webhookUrl, 'crm.contact.add', { fields: { NAME: `Burst ${i}` } })).status);
      const elapsedSec = (Date.now() - t0) / 1000;
      const ok = statuses.filter((s) => s === 200).length;
      const limited = statuses.filter((s) => s === 503).length;
      expect(ok + limited).toBe(60);
      expect(ok).toBeGreaterThanOrEqual(50);
      // Capacity 50 plus what drained at 2/s while the loop ran: the bucket is not larger than the plan's.
      expect(ok).toBeLessThanOrEqual(50 + Math.ceil(elapsedSec * 2));
      expect(limited).toBeGreaterThan(0);
      expect(statuses.slice(0, 50).every((s) => s === 200)).toBe(true);
      expect(e.state.contacts.size).toBe(ok);
      expect(e.stats.queryLimitExceeded).toBe(limited);
      expect(e.requests.filter((q) => q.tag === 'QUERY_LIMIT_EXCEEDED' && !q.processed)).toHaveLength(limited);
    } finally {
      await e.close();
    }
  });

  it('a batch counts once in the bucket; the enterprise plan allows 250', async () => {
    const e = await startBitrixEmulator({ demo: false, plan: 'enterprise' });
    try {
      const cmd = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`c${i}`, 'profile']));
      for (let i = 0; i < 60; i++) expect((await post(e.webhookUrl, 'batch', { cmd })).status).toBe(200);
      expect(e.stats.methodCalls.profile).toBe(3000);
      expect(e.stats.queryLimitExceeded).toBe(0);
    } finally {
      await e.close();
    }
  });

  it('operating budget: 429 OPERATION_TIME_LIMIT for that method only, time.operating reports it', async () => {
    const e = await startBitrixEmulator({ demo: false });
    try {
      e.setOperatingCost('crm.deal.list', 300);
      const first = await post(e.webhookUrl, 'crm.deal.list');
      const t = first.body.time as { operating: number; operating_reset_at: number; start: number };
      expect(t.operating).toBe(300);
      expect(t.operating_reset_at).toBeGreaterThanOrEqual(Math.floor(t.start) + 599);
      expect((await post(e.webhookUrl, 'crm.deal.list')).status).toBe(200);
      const blocked = await post(e.webhookUrl, 'CRM.DEAL.LIST');
      expect(blocked).toMatchObject({
        status: 429,
        body: { error: 'OPERATION_TIME_LIMIT', error_description: 'Method is blocked due to operation time limit.' },
      });
      expect((await post(e.webhookUrl, 'crm.lead.list')).status).toBe(200);
      const b = result<Batch>(await post(e.webhookUrl, 'batch', { cmd: { d: 'crm.deal.list', l: 'crm.lead.list' } }));
      expect(Object.keys(b.result_error as object)).toEqual(['d']);
      expect(e.stats.operationTimeLimit).toBe(2);
      expect((await post(e.webhookUrl, 'batch', { cmd: {} })).body.time).not.toHaveProperty('operating');
    } finally {
      await e.close();
    }
  });

  it('rateLimit: false turns both limits off', async () => {
    const e = await startBitrixEmulator({ demo: false, rateLimit: false });
    try {
      e.setOperatingCost('*', 1000);
      for (let i = 0; i < 70; i++) expect((await post(e.webhookUrl, 'profile')).status).toBe(200);
    } finally {
      await e.close();
    }
  });
});

describe('OAuth (§2.2)', () => {
  let app: BitrixEmulator;
  const client = { client_id: 'local.test.app', client_secret: 'app-secret' };
  beforeAll(async () => {
    app = await startBitrixEmulator({ rateLimit: false, oauth: { clientId: client.client_id, clientSecret: client.client_secret } });
  });
  afterAll(async () => app.close());

  const refresh = (refresh_token: string, extra: Record<string, string> = {}) =>
    send(`${app.url}/oauth/token/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', ...client, refresh_token, ...extra }).toString(),
    });

  it('app calls take auth in the query or body; without it → NO_AUTH_FOUND', async () => {
    const t = await app.issueOAuthTokens();
    expect(t.client_endpoint).toBe(`${app.url}/rest/`);
    expect(result<unknown[]>(await send(`${app.url}/rest/crm.deal.list?auth=${t.access_token}&select[]=ID`)).length).toBe(50);
    const viaBody = await post(`${app.url}/rest/`, 'user.current', { auth: t.access_token });
    expect(result<{ ID: string }>(viaBody).ID).toBe('1');
    expect(viaBody.headers['x-bitrix-rest-application']).toBe(client.client_id);
    expect((await post(`${app.url}/rest/`, 'user.current')).body.error).toBe('NO_AUTH_FOUND');
    expect((await post(`${app.url}/rest/`, 'user.current', { auth: 'forged' })).body.error).toBe('NO_AUTH_FOUND');
  });

  it('refresh rotates the refresh token; the old one is invalid_grant; wrong secret is invalid_client', async () => {
    const t = await app.issueOAuthTokens();
    const before = app.stats.refreshes;
    const r1 = await refresh(t.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.body.refresh_token).not.toBe(t.refresh_token);
    expect(r1.body).toMatchObject({ expires_in: 3600, user_id: 1 });
    expect(app.stats.refreshes - before).toBe(1);
    expect(await refresh(t.refresh_token)).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await refresh(String(r1.body.refresh_token), { client_secret: 'nope' })).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const viaGet = await send(
      `${app.url}/oauth/token/?${new URLSearchParams({ grant_type: 'refresh_token', ...client, refresh_token: String(r1.body.refresh_token) })}`,
    );
    expect(viaGet.status).toBe(200);
    expect((await post(`${app.url}/rest/`, 'profile', { auth: viaGet.body.access_token })).status).toBe(200);
  });

  it('expired tokens → 401 expired_token (expireAccessTokens, or the TTL)', async () => {
    const t = await app.issueOAuthTokens();
    app.expireAccessTokens();
    expect(await post(`${app.url}/rest/`, 'profile', { auth: t.access_token })).toMatchObject({
      status: 401,
      body: { error: 'expired_token', error_description: 'The access token provided has expired' },
    });
    const r = await refresh(t.refresh_token);
    expect((await post(`${app.url}/rest/`, 'profile', { auth: r.body.access_token })).status).toBe(200);
    const short = await startBitrixEmulator({ demo: false, oauth: { clientId: 'a', clientSecret: 'b', accessTokenTtlSec: 0 } });
    try {
      const s = await short.issueOAuthTokens();
      expect((await post(`${short.url}/rest/`, 'profile', { auth: s.access_token })).body.error).toBe('expired_token');
    } finally {
      await short.close();
    }
  });

  it('events: webhooks get WRONG_AUTH_TYPE; offline events are returned once; online handlers get the form POST', async () => {
    expect((await post(hook, 'event.bind', { event: 'ONCRMLEADADD', handler: 'https://example.com/h' })).body.error).toBe('WRONG_AUTH_TYPE');
    const t = await app.issueOAuthTokens();
    const rest = `${app.url}/rest/`;
    expect(await post(rest, 'event.bind', { auth: t.access_token, event: 'ONCRMNOPE', handler: 'https://example.com/h' })).toMatchObject({
      status: 400,
      body: { error: 'ERROR_EVENT_NOT_FOUND', error_description: 'Event not found' },
    });
    expect(result(await post(rest, 'event.bind', { auth: t.access_token, event: 'onCrmLeadAdd', event_type: 'offline' }))).toBe(true);

    const received: string[] = [];
    const sink = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(body);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const handler = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`;
    try {
      expect(result(await post(rest, 'event.bind', { auth: t.access_token, event: 'ONCRMCONTACTADD', handler }))).toBe(true);
      expect(result<Array<Body>>(await post(rest, 'event.get', { auth: t.access_token }))).toEqual(
        expect.arrayContaining([
          { event: 'ONCRMCONTACTADD', handler, auth_type: '0', offline: 0 },
          { event: 'ONCRMLEADADD', handler: '', auth_type: '0', offline: 1 },
        ]),
      );
      const leadId = result<number>(await post(rest, 'crm.lead.add', { auth: t.access_token, fields: { TITLE: 'Evented' } }));
      const contactId = result<number>(await post(rest, 'crm.contact.add', { auth: t.access_token, fields: { NAME: 'Evented' } }));
      await app.settleEvents();
      expect(received).toHaveLength(1);
      const form = new URLSearchParams(received[0]);
      expect(form.get('event')).toBe('ONCRMCONTACTADD');
      expect(form.get('data[FIELDS][ID]')).toBe(String(contactId));
      expect(form.get('auth[application_token]')).toBe(app.applicationToken());
      expect((await post(rest, 'profile', { auth: form.get('auth[access_token]') })).status).toBe(200);

      const off = result<{ events: Array<{ EVENT_NAME: string; EVENT_DATA: { FIELDS: { ID: string } } }> }>(
        await post(rest, 'event.offline.get', { auth: t.access_token }),
      );
      expect(off.events.map((x) => [x.EVENT_NAME, x.EVENT_DATA.FIELDS.ID])).toEqual([['ONCRMLEADADD', String(leadId)]]);
      expect(result<{ events: unknown[] }>(await post(rest, 'event.offline.get', { auth: t.access_token })).events).toEqual([]);
      expect(result(await post(rest, 'event.unbind', { auth: t.access_token, event: 'ONCRMCONTACTADD', handler }))).toEqual({ count: 1 });
    } finally {
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });
});

describe('portal state switches', () => {
  it('setMovedTo: every /rest/ call answers 302 to the same path and query on the new origin', async () => {
    const e = await startBitrixEmulator({ demo: false, rateLimit: false });
    try {
      e.setMovedTo('https://new-portal.example.com');
      const r = await send(`${e.webhookUrl}crm.deal.list.json?select[]=ID`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"filter":{">ID":5}}',
      });
      expect(r.status).toBe(302);
      expect(r.headers.location).toBe(`https://new-portal.example.com/rest/${DEMO.userId}/${e.webhookSecret}/crm.deal.list.json?select[]=ID`);
      expect(e.requests.at(-1)).toMatchObject({ tag: 'moved', processed: false, status: 302 });
      e.setMovedTo(null);
      expect((await post(e.webhookUrl, 'crm.deal.list')).status).toBe(200);
    } finally {
      await e.close();
    }
  });

  it('simple CRM mode: mode 2, lead methods refused, deals still work', async () => {
    const e = await startBitrixEmulator({ rateLimit: false });
    try {
      expect(result(await post(e.webhookUrl, 'crm.settings.mode.get'))).toBe(1);
      e.setMode('simple');
      expect(result(await post(e.webhookUrl, 'crm.settings.mode.get'))).toBe(2);
      for (const m of ['crm.lead.list', 'crm.lead.add']) expect((await post(e.webhookUrl, m, { fields: { TITLE: 'x' } })).status).toBe(400);
      expect(result(await post(e.webhookUrl, 'crm.duplicate.findbycomm', { type: 'PHONE', values: [DEMO.ivan.phone] }))).toEqual({
        CONTACT: [DEMO.ivan.contactId],
      });
      expect((await post(e.webhookUrl, 'crm.deal.list')).status).toBe(200);
      const started = await startBitrixEmulator({ rateLimit: false, demo: false, mode: 'simple' });
      expect(result(await post(started.webhookUrl, 'crm.settings.mode.get'))).toBe(2);
      await started.close();
    } finally {
      await e.close();
    }
  });

  it('harness faults still apply in front of the emulator', async () => {
    emu.harness.injectFault(
      { kind: 'status', status: 500, body: '{"error":"INTERNAL_SERVER_ERROR","error_description":"Internal server error"}' },
      { match: { path: 'profile' } },
    );
    expect((await post(hook, 'profile')).status).toBe(500);
    expect((await post(hook, 'profile')).status).toBe(200);
  });
});

describe('users, tasks and system methods (§2.3, §7.8)', () => {
  it('user.get pages and filters; user.current, profile, app.info, scope, methods', async () => {
    // The demo portal has 75 users: user.get answers pages of 50 with total and next (§4.1).
    const users = await post(hook, 'user.get', { FILTER: { ACTIVE: true } });
    expect(result<unknown[]>(users)).toHaveLength(50);
    expect(users.body).toMatchObject({ total: 75, next: 50 });
    const rest = await post(hook, 'user.get', { FILTER: { ACTIVE: true }, start: 50 });
    expect(result<Array<{ ID: string }>>(rest).map((u) => Number(u.ID))).toEqual(Array.from({ length: 25 }, (_, i) => 51 + i));
    expect(rest.body.next).toBeUndefined();
    expect(result<Array<{ ID: string }>>(await post(hook, 'user.get', { ID: 3 })).map((u) => u.ID)).toEqual(['3']);
    expect(result<{ ID: string; UF_DEPARTMENT: number[] }>(await post(hook, 'user.current'))).toMatchObject({ ID: '1', UF_DEPARTMENT: [1] });
    expect(result(await post(hook, 'profile'))).toMatchObject({ ID: '1', ADMIN: true, NAME: 'Anna' });
    expect(result(await post(hook, 'app.info'))).toEqual({ SCOPE: expect.arrayContaining(['crm', 'task', 'user']), LICENSE: expect.any(String) });
    expect(result<string[]>(await post(hook, 'methods'))).toEqual(expect.arrayContaining(['crm.deal.list', 'batch', 'tasks.task.add']));
    expect(result(await post(hook, 'method.get', { name: 'crm.deal.list' }))).toEqual({ isExisting: true, isAvailable: true });
  });

  it('insufficient_scope outside the granted scopes (403)', async () => {
    const e = await startBitrixEmulator({ demo: false, rateLimit: false, scopes: ['crm'] });
    try {
      expect(await post(e.webhookUrl, 'tasks.task.list')).toMatchObject({ status: 403, body: { error: 'insufficient_scope' } });
      expect((await post(e.webhookUrl, 'crm.deal.list')).status).toBe(200);
    } finally {
      await e.close();
    }
  });

  it('tasks.task.add/get/list in camelCase with string numbers', async () => {
    const made = result<{ task: { id: string; title: string; responsibleId: string; ufCrmTask: string[] } }>(
      await post(hook, 'tasks.task.add', {
        fields: { TITLE: 'Call Ivan', RESPONSIBLE_ID: 2, DEADLINE: '2030-01-01T10:00:00Z', UF_CRM_TASK: [`D_${DEMO.ivan.dealId}`] },
      }),
    );
    expect(made.task).toMatchObject({ title: 'Call Ivan', responsibleId: '2', ufCrmTask: [`D_${DEMO.ivan.dealId}`] });
    expect(made.task.id).toMatch(/^\d+$/);
    expect(result<{ task: { id: string } }>(await post(hook, 'tasks.task.get', { taskId: made.task.id, select: ['ID', 'TITLE'] })).task).toEqual({
      id: made.task.id,
      title: 'Call Ivan',
    });
    const list = await post(hook, 'tasks.task.list', { filter: { RESPONSIBLE_ID: 2 }, select: ['ID', 'TITLE'] });
    expect(result<{ tasks: Array<{ id: string }> }>(list).tasks.map((t) => t.id)).toContain(made.task.id);
    expect(list.body.total).toBeGreaterThan(0);
    expect((await post(hook, 'tasks.task.add', { fields: { RESPONSIBLE_ID: 1 } })).body.error).toBe('ERROR_CORE');
  });

  it('crm.activity.list filters by owner', async () => {
    const acts = result<Array<{ OWNER_ID: string; OWNER_TYPE_ID: string }>>(
      await post(hook, 'crm.activity.list', { filter: { OWNER_TYPE_ID: 2, OWNER_ID: DEMO.ivan.dealId } }),
    );
    expect(acts.length).toBeGreaterThan(0);
    expect(acts.every((a) => a.OWNER_ID === String(DEMO.ivan.dealId) && a.OWNER_TYPE_ID === '2')).toBe(true);
  });
});
