/**
 * Bulk reads through list_leads: the requests the emulator received for a multi-page read, counted against
 * hand-made tables. The data is built here (not the demo's), so every page brings companies no earlier page
 * named: Kommo 250 leads a page with 10 new companies each, Bitrix24 250 deals a page with 5 new ones.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../../src/sandbox/harness.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { connectBitrix, connectKommo, startBitrix, startKommo, structured, text } from '../helpers/index.js';

interface LeadPage {
  items: Array<{ id: number; company: { id: number; name: string | null } | null }>;
  has_more: boolean;
  cursor: string | null;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

// ---------------------------------------------------------------- Kommo

/**
 * `total` leads, newest first in id order; the lead at position i of that order belongs to company
 * `companyAt(i)`. `companies` companies exist, ids 7_000_001…, named "Co <n>" (n from 0).
 */
function kommoData(emu: KommoEmulator, total: number, companies: number, companyAt: (i: number) => number): void {
  const s = emu.state;
  const lead = [...s.leads.values()][0]!;
  const company = [...s.companies.values()][0]!;
  s.leads.clear();
  s.companies.clear();
  for (let n = 0; n < companies; n++) s.companies.set(7_000_001 + n, { ...structuredClone(company), id: 7_000_001 + n, name: `Co ${n}` });
  for (let i = 0; i < total; i++) {
    const id = 9_000_000 - i;
    const l = structuredClone(lead);
    Object.assign(l, { id, name: `Lead ${i}`, created_at: 1_800_000_000 - i, updated_at: 1_800_000_000 - i });
    l._embedded.companies = [{ id: 7_000_001 + companyAt(i) }];
    l._embedded.contacts = [];
    s.leads.set(id, l);
  }
}

async function kommoSetup(total: number, companies: number, companyAt: (i: number) => number) {
  const emu = await startKommo({ rateLimit: false });
  kommoData(emu, total, companies, companyAt);
  const c = await connectKommo(emu);
  closers.push(
    () => emu.close(),
    () => c.close(),
  );
  // Metadata (pipelines, users, account) is cached before the read, as an agent's first calls do.
  structured(await c.call('get_pipelines'));
  structured(await c.call('list_users'));
  return { emu, c, from: emu.requests.length };
}

const kommoList = (r: RecordedRequest) => r.method === 'GET' && r.path === '/api/v4/leads';
const kommoCompanies = (r: RecordedRequest) => r.method === 'GET' && r.path === '/api/v4/companies';

async function scan(c: { call(n: string, a: Record<string, unknown>): Promise<unknown> }, args: Record<string, unknown>): Promise<LeadPage[]> {
  const pages: LeadPage[] = [];
  let cursor: string | null = null;
  do {
    const p: LeadPage = structured((await c.call('list_leads', { ...args, ...(cursor ? { cursor } : {}) })) as never);
    pages.push(p);
    cursor = p.has_more ? p.cursor : null;
  } while (cursor);
  return pages;
}

describe('Kommo: list_leads over 1,000 leads at limit 250', () => {
  // Lead i: company (i div 250) × 10 + (i mod 10): 10 companies per page, none of them on an earlier page.
  const companyAt = (i: number) => Math.floor(i / 250) * 10 + (i % 10);

  it('4 list requests (page 4 has no `next`: no look-ahead past it) and 1 company request for 40 companies', async () => {
    const { emu, c, from } = await kommoSetup(1000, 40, companyAt);
    const pages = await scan(c, { limit: 250 });
    const got = emu.requests.slice(from);
    expect(pages.map((p) => p.items.length)).toEqual([250, 250, 250, 250]);
    expect(pages.map((p) => p.has_more)).toEqual([true, true, true, false]);
    // page=1..4, in order; page 2..4 were each read once, as the look-ahead of the call before.
    expect(got.filter(kommoList).map((r) => new URL(r.url, 'http://x').searchParams.get('page'))).toEqual(['1', '2', '3', '4']);
    // The account's 40 companies fit one page: read whole once, no lookup by id for later pages.
    expect(got.filter(kommoCompanies).map((r) => decodeURIComponent(r.url))).toEqual(['/api/v4/companies?limit=250&page=1']);
    expect(got).toHaveLength(5);
    const items = pages.flatMap((p) => p.items);
    expect(items.filter((x, i) => x.id !== 9_000_000 - i || x.company?.name !== `Co ${companyAt(i)}`)).toEqual([]);
  });

  it('an account with more companies than a page: the whole read is tried once, then one lookup by id per page', async () => {
    // 600 companies: neither the first 250 by id ascending nor descending hold companies 260…299, the ones used.
    const { emu, c, from } = await kommoSetup(1000, 600, (i) => 260 + companyAt(i));
    const pages = await scan(c, { limit: 250 });
    const got = emu.requests.slice(from).filter(kommoCompanies);
    const urls = got.map((r) => decodeURIComponent(r.url));
    expect(urls[0]).toBe('/api/v4/companies?limit=250&page=1');
    expect(urls.slice(1).map((u) => u.match(/filter\[id\]\[\]/g)?.length)).toEqual([10, 10, 10, 10]);
    expect(pages.flatMap((p) => p.items).every((x, i) => x.company?.name === `Co ${260 + companyAt(i)}`)).toBe(true);
  });

  it('a limit above 250 gives a 250-lead page and a cursor that goes on from there', async () => {
    const { emu, c, from } = await kommoSetup(600, 40, companyAt);
    const first: LeadPage = structured(await c.call('list_leads', { limit: 1000 }));
    expect(first.items).toHaveLength(250);
    expect(first.has_more).toBe(true);
    const sent = emu.requests.slice(from).filter(kommoList);
    expect(sent.map((r) => new URL(r.url, 'http://x').searchParams.get('limit'))).toEqual(['250', '250']);
    const second: LeadPage = structured(await c.call('list_leads', { limit: 1000, cursor: first.cursor }));
    expect(second.items.map((x) => x.id)).toEqual(Array.from({ length: 250 }, (_, i) => 9_000_000 - 250 - i));
  });
});

// ---------------------------------------------------------------- Bitrix24

/** `total` deals, ids 1…total (served newest first: position i is id total − i); companies ids 5_000_001…, "Co <n>". */
function bitrixData(emu: BitrixEmulator, total: number, companies: number, companyAt: (i: number) => number): void {
  const s = emu.state;
  const deal = [...s.deals.values()][0]!;
  const company = [...s.companies.values()][0]!;
  s.deals.clear();
  s.companies.clear();
  for (let n = 0; n < companies; n++) s.companies.set(5_000_001 + n, { ...structuredClone(company), ID: String(5_000_001 + n), TITLE: `Co ${n}` });
  for (let id = 1; id <= total; id++) {
    const i = total - id;
    s.deals.set(id, { ...structuredClone(deal), ID: String(id), TITLE: `Deal ${i}`, COMPANY_ID: String(5_000_001 + companyAt(i)), CONTACT_ID: null });
  }
  s.seq.deal = Math.max(s.seq.deal, total);
  s.seq.company = Math.max(s.seq.company, 5_000_001 + companies);
}

async function bitrixSetup(total: number, companies: number, companyAt: (i: number) => number) {
  const emu = await startBitrix({ rateLimit: false });
  bitrixData(emu, total, companies, companyAt);
  const c = await connectBitrix(emu);
  closers.push(
    () => emu.close(),
    () => c.close(),
  );
  structured(await c.call('get_pipelines'));
  return { emu, c, from: emu.requests.length };
}

/** Each request as the kinds of its commands: 'list×n' for n crm.deal.list pages, 'co×n' for company lookups. */
function shapes(requests: RecordedRequest[]): string[] {
  return requests.map((r) => {
    if (!r.path.endsWith('/batch.json')) return r.path.replace(/^.*\/rest\/\d+\/[^/]+\//, '');
    const cmds = Object.values((JSON.parse(r.body) as { cmd: Record<string, string> }).cmd);
    const count = (p: string) => cmds.filter((x) => x.startsWith(p)).length;
    const parts = [count('crm.deal.list') && `list×${count('crm.deal.list')}`, count('crm.company.list') && `co×${count('crm.company.list')}`];
    if (cmds.length !== count('crm.deal.list') + count('crm.company.list'))
      parts.push(`other×${cmds.length - count('crm.deal.list') - count('crm.company.list')}`);
    return parts.filter(Boolean).join('+');
  });
}

describe('Bitrix24: list_leads reads up to 2,500 deals a call', () => {
  // Deal at position i: company (i div 250) × 5 + (i mod 5): 5 new companies every 250 deals.
  const companyAt = (i: number) => Math.floor(i / 250) * 5 + (i % 5);

  it('2,450 deals at limit 2500: one batch of 50 list pages (the 50th comes back empty) and one company lookup', async () => {
    const { emu, c, from } = await bitrixSetup(2450, 60, companyAt);
    const page: LeadPage = structured(await c.call('list_leads', { entity: 'deal', limit: 2500 }));
    expect(page.items).toHaveLength(2450);
    expect(page.has_more).toBe(false);
    expect(page.items.every((x, i) => x.id === 2450 - i && x.company?.name === `Co ${companyAt(i)}`)).toBe(true);
    // 50 companies: one crm.company.list command (50 ids a command).
    expect(shapes(emu.requests.slice(from))).toEqual(['list×50', 'co×1']);
  });

  it('5,000 deals at limit 2500: 2 calls, 3 list requests, one company lookup per 2,500 new rows', async () => {
    const { emu, c, from } = await bitrixSetup(5000, 100, companyAt);
    const pages = await scan(c, { entity: 'deal', limit: 2500 });
    expect(pages.map((p) => [p.items.length, p.has_more])).toEqual([
      [2500, true],
      [2500, false],
    ]);
    // Call 1: 2,501 rows = 50 pages + 1 more (which proves has_more); companies of rows 1–2,550: 0–54, two
    // commands of ≤ 50 ids in one batch. Call 2: from row 2,551 one batch: 49 full pages and an empty 50th;
    // companies of rows 2,551–5,000 not yet named: 55–99, one command.
    expect(shapes(emu.requests.slice(from))).toEqual(['list×50', 'list×1', 'co×2', 'list×50', 'co×1']);
    expect(pages.flatMap((p) => p.items).every((x, i) => x.id === 5000 - i && x.company?.name === `Co ${companyAt(i)}`)).toBe(true);
  });

  it('a scan at limit 250 names the whole read-ahead at once: the 8 pages served from it send nothing', async () => {
    const { emu, c, from } = await bitrixSetup(2500, 60, companyAt);
    const pages = await scan(c, { entity: 'deal', limit: 250 });
    expect(pages.map((p) => p.items.length)).toEqual(Array(10).fill(250));
    // Call 1: 251 rows = 6 pages; companies of rows 1–300. Call 2: on from row 300 (the 50 rows kept are not
    // read again) by a full batch: rows 301–2,500 are 44 pages, the 45th is empty; companies of rows 251–2,500
    // not yet named, in one lookup (companies 10–49: one command). Calls 3–10: nothing.
    expect(shapes(emu.requests.slice(from))).toEqual(['list×6', 'co×1', 'list×50', 'co×1']);
    expect(pages.flatMap((p) => p.items).every((x, i) => x.id === 2500 - i && x.company?.name === `Co ${companyAt(i)}`)).toBe(true);
  });

  it('a limit above 2500 is refused by the input schema, naming the bound', async () => {
    const { emu, c, from } = await bitrixSetup(100, 5, companyAt);
    const res = await c.call('list_leads', { entity: 'deal', limit: 2501 });
    expect(res.isError).toBe(true);
    expect(text(res)).toMatch(/2500/);
    expect(emu.requests.slice(from)).toEqual([]);
  });
});
