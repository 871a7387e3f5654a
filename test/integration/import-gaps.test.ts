/**
 * import_leads, the rest of issue 17's bulk import, through a real MCP client against both emulators: a row's
 * company with a phone or email (found or made as create_company does), the lead's and contact's pages on each
 * row, one runner per import across processes (the store lock), and run_automations false (Bitrix24 through
 * crm.item.batchImport, ≤ 20 a call, no automation run; Kommo refuses it). Every expectation is on what the
 * emulator received and holds, from hand-made tables.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderWith } from '../../src/crms/types.js';
import { ImportDesk } from '../../src/import/jobs.js';
import { Grant } from '../../src/policy/policy.js';
import { automationsOf } from '../../src/sandbox/bitrix24/automations.js';
import { importPermissionOf } from '../../src/sandbox/bitrix24/import.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore } from '../../src/store/store.js';
import { startImport } from '../../src/tools/import.js';
import {
  WRITE,
  bitrixMethods,
  connectBitrix,
  connectKommo,
  kommoProvider,
  startBitrix,
  startKommo,
  structured,
  writesTo,
  type Connected,
} from '../helpers/index.js';

interface RowOut {
  row: number;
  status: string;
  lead_id?: number | string | null;
  contact_id?: number | string | null;
  url?: string | null;
  contact_url?: string | null;
  reason?: string;
}
interface Status {
  id: string;
  state: string;
  counts: Record<string, number>;
  results: RowOut[];
  error?: string;
}

async function finish(c: Pick<Connected, 'call'>, first: Status): Promise<Status> {
  let st = first;
  for (let i = 0; i < 200 && st.state === 'running'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    st = structured<Status>(await c.call('get_import_status', { id: first.id }));
  }
  return st;
}

const byRow = (st: Status) => Object.fromEntries(st.results.map((r) => [r.row, r]));

describe('Kommo: import_leads, companies with phones, links, one runner per import', () => {
  let emu: KommoEmulator;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it("a row's company {name, phone?, email?}: found by phone like create_company, else made once with its email; rows carry their pages", async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const acme = structured<{ company: { id: number } }>(await c.call('create_company', { name: 'Acme Phones', phone: '+7 901 333-00-01' }));
    const seen = emu.requests.length;
    const rows = [
      { name: 'By phone', contact: { name: 'Pia Phone', email: 'pia@co.example' }, company: { name: 'Another Name', phone: '+79013330001' } },
      { name: 'New co 1', contact: { name: 'Ned One', email: 'ned1@co.example' }, company: { name: 'Newco Mail', email: 'hello@newco.example' } },
      { name: 'New co 2', contact: { name: 'Ned Two', email: 'ned2@co.example' }, company: { name: 'Newco Mail', email: 'HELLO@newco.example' } },
      { name: 'Bad co', contact: { name: 'Bo Bad', email: 'bo@co.example' }, company: { name: 'Bad', email: 'nope' } },
    ];
    const st = await finish(c, structured<Status>(await c.call('import_leads', { rows })));
    const r = byRow(st);
    expect(st.counts).toEqual({ created: 3, error: 1 });
    expect(r[4]!.reason).toMatch(/company\.email/);
    expect(emu.state.leads.get(Number(r[1]!.lead_id))!._embedded?.companies?.map((x) => x.id)).toEqual([acme.company.id]);
    const newco = [...emu.state.companies.values()].filter((x) => x.name === 'Newco Mail');
    expect(newco).toHaveLength(1);
    expect(JSON.stringify(newco[0]!.custom_fields_values)).toContain('hello@newco.example');
    for (const n of [2, 3]) expect(emu.state.leads.get(Number(r[n]!.lead_id))!._embedded?.companies?.map((x) => x.id)).toEqual([newco[0]!.id]);
    expect([...emu.state.companies.values()].map((x) => x.name)).not.toContain('Another Name');
    expect(emu.requests.slice(seen).some((q) => q.body.includes('nope'))).toBe(false);
    for (const n of [1, 2, 3]) {
      expect(r[n]!.url).toBe(`${emu.url}/leads/detail/${r[n]!.lead_id}`);
      expect(r[n]!.contact_url).toBe(`${emu.url}/contacts/detail/${r[n]!.contact_id}`);
    }
    await c.close();
  });

  it('an existing row links to the lead it matched', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const had = structured<{ lead: { id: number }; contact_id: number }>(
      await c.call('create_lead', { contact: { name: 'Una Url', email: 'una@url.example' } }),
    );
    const st = await finish(c, structured<Status>(await c.call('import_leads', { rows: [{ contact: { name: 'Una', email: 'una@url.example' } }] })));
    expect(byRow(st)[1]).toMatchObject({
      status: 'existing',
      url: `${emu.url}/leads/detail/${had.lead.id}`,
      contact_url: `${emu.url}/contacts/detail/${had.contact_id}`,
    });
    await c.close();
  });

  it('two processes resuming one import at once: the second is told it is already running and sends nothing', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'crm-import-lock-')), 'store.json');
    const [sa, sb] = [await openStore(file), await openStore(file)];
    const [pa, pb] = [await kommoProvider(emu, { flags: WRITE, store: sa }), await kommoProvider(emu, { flags: WRITE, store: sb })];
    const [da, db] = [new ImportDesk(sa), new ImportDesk(sb)];
    const run = (p: typeof pa, desk: ImportDesk, x: { rows?: unknown[]; resume?: string }) =>
      startImport({ provider: p as unknown as ProviderWith<'leads' | 'bulk'>, ctx: { grant: Grant.for('create') }, lock: (_k, fn) => fn(), desk, ...x });
    // The first holds its batch in flight (answer delayed) while the second tries; meanwhile it sends nothing else.
    emu.injectFault({ kind: 'slow', ms: 3000 }, { match: { method: 'POST', path: /^\/api\/v4\/leads$/ } });
    const a = await run(pa, da, { rows: [1, 2].map((i) => ({ name: `Locked ${i}`, contact: { name: `Locked Person ${i}` } })) });
    const inFlight = () => emu.requests.some((q) => q.method === 'POST' && q.path === '/api/v4/leads' && q.body.includes('Locked 1'));
    for (let i = 0; i < 100 && !inFlight(); i++) await new Promise((r) => setTimeout(r, 20));
    const seen = emu.requests.length;
    await expect(run(pb, db, { resume: a.id })).rejects.toThrow(/already running/);
    expect(emu.requests.length).toBe(seen);
    await a.job;
    expect([...emu.state.leads.values()].filter((l) => l.name.startsWith('Locked '))).toHaveLength(2);
    // Once the first is done, the second may look: nothing left to do, nothing sent.
    const before = emu.requests.length;
    await (
      await run(pb, db, { resume: a.id })
    ).job;
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    expect([...emu.state.leads.values()].filter((l) => l.name.startsWith('Locked '))).toHaveLength(2);
    await Promise.all([sa.close(), sb.close()]);
  });

  it('run_automations: false is refused (Kommo has no such switch), nothing sent', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const seen = emu.requests.length;
    const r = await c.call('import_leads', { run_automations: false, rows: [{ contact: { name: 'No Bots', email: 'nobots@k.example' } }] });
    expect(r.isError).toBe(true);
    expect(JSON.stringify(r.content)).toMatch(/run_automations: false.*nothing was sent/);
    expect(emu.requests.length).toBe(seen);
    await c.close();
  });
});

describe('Bitrix24: import_leads without automations (crm.item.batchImport)', () => {
  let emu: BitrixEmulator;
  beforeAll(async () => {
    emu = await startBitrix();
  });
  afterAll(async () => emu.close());

  const batchImports = (from: number) =>
    emu.requests
      .slice(from)
      .filter((q) => q.path.endsWith('/crm.item.batchImport.json'))
      .map((q) => JSON.parse(q.body) as { entityTypeId: number; data: Array<Record<string, unknown>> });

  it('leads go through crm.item.batchImport (≤ 20 a call), contacts in a batch; no lead add, no automation run', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    const seen = emu.requests.length;
    const rows = Array.from({ length: 25 }, (_, i) => ({
      name: `Quiet ${i + 1}`,
      price: 10 + i,
      contact: { name: `Quiet Person ${i + 1}`, email: `quiet${i + 1}@bx.example` },
    }));
    const st = await finish(c, structured<Status>(await c.call('import_leads', { rows, run_automations: false })));
    expect(st.counts).toEqual({ created: 25 });
    const calls = batchImports(seen);
    expect(calls.map((b) => [b.entityTypeId, b.data.length])).toEqual([
      [1, 16],
      [1, 9],
    ]);
    expect(bitrixMethods(emu.requests.slice(seen)).filter((m) => m === 'crm.lead.add')).toEqual([]);
    const made = [...emu.state.leads.values()].filter((l) => String(l.TITLE).startsWith('Quiet '));
    expect(made).toHaveLength(25);
    const one = made.find((l) => l.TITLE === 'Quiet 3')!;
    expect(Number(one.OPPORTUNITY)).toBe(12);
    const person = [...emu.state.contacts.values()].find((x) => JSON.stringify(x.EMAIL ?? []).includes('quiet3@bx.example'))!;
    expect(String(one.CONTACT_ID)).toBe(String(person.ID));
    const ran = new Set(automationsOf(emu.state).runs.map((r) => `${r.entity}:${r.id}`));
    for (const l of made) expect(ran.has(`lead:${Number(l.ID)}`)).toBe(false);
    await c.close();
  });

  it('without the import permission: the import stops saying so, no lead made, none by a plain add', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    importPermissionOf(emu.state).allowed = false;
    try {
      const seen = emu.requests.length;
      const leads = emu.state.leads.size;
      const st = await finish(
        c,
        structured<Status>(await c.call('import_leads', { rows: [{ name: 'Denied 1', contact: { name: 'Den Ied' } }], run_automations: false })),
      );
      expect(st.state).toBe('failed');
      expect(st.error).toMatch(/"import" access permission/);
      expect(emu.state.leads.size).toBe(leads);
      expect(bitrixMethods(emu.requests.slice(seen)).filter((m) => m === 'crm.lead.add' || m === 'crm.deal.add')).toEqual([]);
    } finally {
      importPermissionOf(emu.state).allowed = true;
    }
    await c.close();
  });

  it('the emulator: more than 20 items is refused whole; a lead added plainly runs automations, an imported one not', async () => {
    const post = (method: string, body: unknown) =>
      fetch(`${emu.webhookUrl}${method}.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const leads = emu.state.leads.size;
    const big = await post('crm.item.batchImport', { entityTypeId: 1, data: Array.from({ length: 21 }, (_, i) => ({ title: `Big ${i}` })) });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: string }).error).toBe('MAX_IMPORT_BATCH_SIZE_EXCEEDED');
    expect(emu.state.leads.size).toBe(leads);
    const ok = (await (await post('crm.item.batchImport', { entityTypeId: 1, data: [{ title: 'Imp A', opportunity: 5 }, { title: '' }] })).json()) as {
      result: { items: Array<{ item?: { id: number }; error?: string }> };
    };
    expect(ok.result.items[0]!.item!.id).toBeGreaterThan(0);
    expect(ok.result.items[1]!.error).toBe('CRM_FIELD_ERROR_REQUIRED');
    const plain = ((await (await post('crm.lead.add', { fields: { TITLE: 'Plain A' } })).json()) as { result: number }).result;
    const runs = automationsOf(emu.state).runs;
    expect(runs).toContainEqual({ entity: 'lead', id: plain });
    expect(runs.some((r) => r.id === ok.result.items[0]!.item!.id)).toBe(false);
  });
});
