/**
 * Links to records and list totals (issue 17), through a real MCP client against both emulators. Every lead,
 * contact, company and task in a result carries `url`, its page in the CRM's web interface, built on the
 * connection's configured origin: the expected strings are written out here by hand from each CRM's page
 * scheme, and no link may carry a credential (the Kommo token, the Bitrix24 webhook's secret path). Bitrix24
 * list pages say how many records match (`total`), counted here by hand over deals seeded for the test;
 * Kommo's lists carry no count, so theirs is null.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapLead, webOf } from '../../src/crms/kommo/map.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { DEMO as BX } from '../../src/sandbox/bitrix24/demo-data.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import { CREATE_ONLY, connectBitrix, startBitrix, structured, type Connected, type ConnectedBitrix, closeAll, kommoSession } from '../helpers/index.js';

type Rec = { id: number; url: string };
interface Page<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
  total: number | null;
}

/** Every `url` anywhere in a result. */
function urlsIn(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => urlsIn(x, out));
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      if (k === 'url' && typeof x === 'string') out.push(x);
      else urlsIn(x, out);
    }
  return out;
}

describe('Kommo: links to records, no totals', () => {
  let emu: KommoEmulator;
  let c: Connected;
  const seen: unknown[] = [];
  const call = async <T>(name: string, args: Record<string, unknown> = {}): Promise<T> => {
    const res = await c.call(name, args);
    expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
    const out = structured<T>(res);
    seen.push(out);
    return out;
  };

  beforeAll(async () => {
    ({ emu, c } = await kommoSession({ flags: CREATE_ONLY }));
  });
  afterAll(() => closeAll(c, emu));

  it('get_lead: the lead, its contacts and its company link their pages', async () => {
    const r = await call<{ lead: Rec; contacts: Rec[]; companies: Rec[] }>('get_lead', { id: DEMO.ivanLeadId });
    expect(r.lead.url).toBe(`${emu.url}/leads/detail/1000001`);
    expect(r.contacts.find((x) => x.id === DEMO.ivanContactId)!.url).toBe(`${emu.url}/contacts/detail/2000001`);
    expect(r.companies.find((x) => x.id === DEMO.ivanCompanyId)!.url).toBe(`${emu.url}/companies/detail/3000001`);
  });

  it('get_contact, get_company, and every item of the lists', async () => {
    expect((await call<{ contact: Rec }>('get_contact', { id: DEMO.ivanContactId })).contact.url).toBe(`${emu.url}/contacts/detail/2000001`);
    expect((await call<{ company: Rec }>('get_company', { id: DEMO.ivanCompanyId })).company.url).toBe(`${emu.url}/companies/detail/3000001`);
    for (const [tool, page] of [
      ['list_leads', 'leads'],
      ['list_contacts', 'contacts'],
      ['list_companies', 'companies'],
    ] as const) {
      const p = await call<Page<Rec>>(tool, { limit: 20 });
      expect(p.items).toHaveLength(20);
      for (const x of p.items) expect(x.url, tool).toBe(`${emu.url}/${page}/detail/${x.id}`);
      // §4: Kommo's lead, contact and company lists carry no count.
      expect(p.total, tool).toBeNull();
    }
  });

  it("a task links its record's page (Kommo has none per task); list_tasks and list_notes count nothing", async () => {
    await call('create_task', {
      text: 'Call back about the invoice',
      complete_till: '2030-01-02T10:00:00Z',
      entity: 'lead',
      entity_id: DEMO.ivanLeadId,
      responsible_user_id: DEMO.userIds[1],
    });
    const tasks = await call<Page<{ text: string; url: string | null; record: { url: string | null } | null }>>('list_tasks', {
      entity: 'lead',
      entity_id: DEMO.ivanLeadId,
    });
    const t = tasks.items.find((x) => x.text === 'Call back about the invoice')!;
    expect(t.url).toBe(`${emu.url}/leads/detail/1000001`);
    expect(t.record!.url).toBe(`${emu.url}/leads/detail/1000001`);
    expect(tasks.total).toBeNull();
    await call('add_note', { entity: 'contact', entity_id: DEMO.ivanContactId, text: 'Prefers e-mail' });
    const notes = await call<Page<{ record: { url: string } }>>('list_notes', { entity: 'contact', entity_id: DEMO.ivanContactId });
    expect(notes.items.length).toBeGreaterThan(0);
    for (const n of notes.items) expect(n.record.url).toBe(`${emu.url}/contacts/detail/2000001`);
    expect(notes.total).toBeNull();
  });

  it('incoming leads link the lead and the people they carry', async () => {
    const p = await call<Page<{ lead: Rec | null; contacts: Rec[] }>>('list_incoming_leads', {});
    const withLead = p.items.filter((x) => x.lead);
    expect(withLead.length).toBeGreaterThan(0);
    for (const x of withLead) expect(x.lead!.url).toBe(`${emu.url}/leads/detail/${x.lead!.id}`);
    for (const x of p.items.flatMap((i) => i.contacts)) expect(x.url).toBe(`${emu.url}/contacts/detail/${x.id}`);
    expect(p.total).toBeNull();
  });

  it('search_lead_by_contact links both the people and their leads', async () => {
    const r = await call<{ contacts: Rec[]; leads: Rec[] }>('search_lead_by_contact', { phone: DEMO.ivanPhone });
    expect(r.contacts.map((x) => x.url)).toContain(`${emu.url}/contacts/detail/2000001`);
    expect(r.leads.map((x) => x.url)).toContain(`${emu.url}/leads/detail/1000001`);
  });

  it('no link carries the token: each is the account origin and a page path, nothing else', () => {
    const token = c.provider.conn.accessToken!;
    const urls = urlsIn(seen);
    expect(urls.length).toBeGreaterThan(60);
    for (const u of urls) {
      expect(u).not.toContain(token);
      expect(u).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/(leads|contacts|companies)\/detail\/\d+$/);
    }
  });

  it('on a real account the link is on its own address: https://{subdomain}.kommo.com or .amocrm.ru', () => {
    const raw = { id: 7, name: 'Annual license' };
    const empty = { pipelines: new Map(), users: new Map() };
    expect(mapLead(raw, { ...empty, web: webOf('https://acme.kommo.com') }).url).toBe('https://acme.kommo.com/leads/detail/7');
    expect(mapLead(raw, { ...empty, web: webOf('https://acme.amocrm.ru/') }).url).toBe('https://acme.amocrm.ru/leads/detail/7');
  });
});

describe('Bitrix24: links to records, totals of list pages', () => {
  let emu: BitrixEmulator;
  let c: ConnectedBitrix;
  const seen: unknown[] = [];
  const call = async <T>(name: string, args: Record<string, unknown> = {}): Promise<T> => {
    const res = await c.call(name, args);
    expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
    const out = structured<T>(res);
    seen.push(out);
    return out;
  };
  // 130 deals in the default pipeline, ids 1…130; every fifth (5, 10, …, 130) won: 26 won, 104 new.
  const DEALS = 130;
  const WON = 26;

  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
    const s = emu.state;
    const template = structuredClone(s.deals.get(BX.ivan.dealId)!);
    s.deals.clear();
    for (let id = 1; id <= DEALS; id++) {
      s.deals.set(id, {
        ...structuredClone(template),
        ID: String(id),
        TITLE: `Seeded deal ${id}`,
        CATEGORY_ID: '0',
        STAGE_ID: id % 5 === 0 ? 'WON' : 'NEW',
        CLOSED: id % 5 === 0 ? 'Y' : 'N',
      });
    }
    s.seq.deal = Math.max(s.seq.deal, DEALS);
    // The demo's comments were on the demo's deals: none on these.
    for (const [id, x] of s.timelineComments) if (x.ENTITY_TYPE === 'deal') s.timelineComments.delete(id);
    c = await connectBitrix(emu, { flags: CREATE_ONLY });
  });
  afterAll(async () => {
    await c.close();
    await emu.close();
  });

  it('list_leads: total is the number of matching deals on every page of the listing', async () => {
    const q = { entity: 'deal', pipeline_id: 0, status_ids: ['WON'], limit: 10 };
    const p1 = await call<Page<Rec>>('list_leads', q);
    expect([p1.items.length, p1.has_more, p1.total]).toEqual([10, true, WON]);
    expect(p1.items.map((x) => x.id)).toEqual([130, 125, 120, 115, 110, 105, 100, 95, 90, 85]);
    const p2 = await call<Page<Rec>>('list_leads', { ...q, cursor: p1.cursor });
    const p3 = await call<Page<Rec>>('list_leads', { ...q, cursor: p2.cursor });
    expect([p2.total, p3.items.length, p3.has_more, p3.total]).toEqual([WON, 6, false, WON]);
    // Most recently updated first is paged by `start`: counted on every page.
    expect((await call<Page<Rec>>('list_leads', { ...q, sort: 'updated_desc' })).total).toBe(WON);
    // A first read of more than one page (a batch): counted by its first command.
    const all = await call<Page<Rec>>('list_leads', { entity: 'deal', limit: 60 });
    expect([all.items.length, all.has_more, all.total]).toEqual([60, true, DEALS]);
    expect((await call<Page<Rec>>('list_leads', { entity: 'deal', query: 'no deal is called this' })).total).toBe(0);
  });

  it('the first page is counted in the same request (start=0); the pages after it are not counted again (start=-1)', async () => {
    const from = emu.requests.length;
    const q = { entity: 'deal', pipeline_id: 0, limit: 60 };
    const p1 = await call<Page<Rec>>('list_leads', q);
    const p2 = await call<Page<Rec>>('list_leads', { ...q, cursor: p1.cursor });
    const p3 = await call<Page<Rec>>('list_leads', { ...q, cursor: p2.cursor });
    expect([p1.total, p2.total, p3.total, p3.items.length, p3.has_more]).toEqual([DEALS, DEALS, DEALS, 10, false]);
    // Every crm.deal.list command sent, in order, with its `start`.
    const starts = emu.requests.slice(from).flatMap((r) => {
      if (r.path.endsWith('crm.deal.list.json')) return [(JSON.parse(r.body) as { start: number }).start];
      if (!r.path.endsWith('/batch.json')) return [];
      const cmds = Object.values((JSON.parse(r.body) as { cmd: Record<string, string> }).cmd).filter((x) => x.startsWith('crm.deal.list'));
      return cmds.map((x) => Number(/[?&]start=(-?\d+)/.exec(x)![1]));
    });
    expect(starts[0]).toBe(0);
    expect(starts.length).toBeGreaterThan(2);
    expect(starts.slice(1).every((x) => x === -1)).toBe(true);
  });

  it('deals, leads, contacts and companies link their cards in the portal', async () => {
    const deal = await call<{ lead: Rec }>('get_lead', { id: 1, entity: 'deal' });
    expect(deal.lead.url).toBe(`${emu.url}/crm/deal/details/1/`);
    const lead = await call<{ lead: Rec; contacts: Rec[] }>('get_lead', { id: BX.ivan.leadId, entity: 'lead' });
    expect(lead.lead.url).toBe(`${emu.url}/crm/lead/details/1/`);
    expect((await call<{ contact: Rec }>('get_contact', { id: BX.ivan.contactId })).contact.url).toBe(`${emu.url}/crm/contact/details/1/`);
    expect((await call<{ company: Rec }>('get_company', { id: BX.ivan.companyId })).company.url).toBe(`${emu.url}/crm/company/details/1/`);
    const deals = await call<Page<Rec>>('list_leads', { entity: 'deal', limit: 5 });
    expect(deals.items.map((x) => x.url)).toEqual([130, 129, 128, 127, 126].map((id) => `${emu.url}/crm/deal/details/${id}/`));
    for (const [tool, kind] of [
      ['list_contacts', 'contact'],
      ['list_companies', 'company'],
    ] as const) {
      const p = await call<Page<Rec>>(tool, { limit: 5 });
      for (const x of p.items) expect(x.url, tool).toBe(`${emu.url}/crm/${kind}/details/${x.id}/`);
      expect(p.total, tool).toBe(tool === 'list_contacts' ? BX.counts.contacts : BX.counts.companies);
    }
  });

  it("a task links its own page under its responsible user's tasks, and its record's card", async () => {
    await call('create_task', {
      text: 'Send the signed contract',
      complete_till: '2030-01-02T10:00:00Z',
      entity: 'deal',
      entity_id: 1,
      responsible_user_id: BX.users.boris,
    });
    const tasks = await call<Page<{ id: number; text: string; url: string | null; record: { url: string | null } | null }>>('list_tasks', {
      entity: 'deal',
      entity_id: 1,
    });
    const t = tasks.items.find((x) => x.text === 'Send the signed contract')!;
    expect(t.url).toBe(`${emu.url}/company/personal/user/2/tasks/task/view/${t.id}/`);
    expect(t.record!.url).toBe(`${emu.url}/crm/deal/details/1/`);
    expect(tasks.has_more).toBe(false);
    expect(tasks.total).toBe(tasks.items.length);
  });

  it('list_notes: the record links its card, and the page is counted', async () => {
    for (const text of ['First call', 'Sent the proposal', 'Asked for a discount']) await call('add_note', { entity: 'deal', entity_id: 7, text });
    const notes = await call<Page<{ record: { url: string } }>>('list_notes', { entity: 'deal', entity_id: 7, limit: 2 });
    expect(notes.items.map((n) => n.record.url)).toEqual([`${emu.url}/crm/deal/details/7/`, `${emu.url}/crm/deal/details/7/`]);
    expect([notes.has_more, notes.total]).toEqual([true, 3]);
  });

  it("no link carries the webhook's secret path: each is the portal origin and a page path, nothing else", () => {
    const urls = urlsIn(seen);
    expect(urls.length).toBeGreaterThan(20);
    for (const u of urls) {
      expect(u).not.toContain(emu.webhookSecret);
      expect(u).not.toContain('/rest/');
      expect(u.startsWith(`${emu.url}/`)).toBe(true);
      expect(u).toMatch(
        /^http:\/\/127\.0\.0\.1:\d+\/(crm\/(deal|lead|contact|company)\/details\/\d+\/|company\/personal\/user\/\d+\/tasks\/task\/view\/\d+\/)$/,
      );
    }
  });
});
