/**
 * import_leads (issue 17, bulk import) through a real MCP client against both emulators: per-row results for a
 * mixed import (new, already in the CRM, a returning customer, repeated within the file, bad rows), each person
 * and lead once, batched writes; a dry run sends no write; read-only refuses with nothing sent; more than 500
 * rows is a clear error; a lost answer and an interrupted batch are resumed without duplicates. Every
 * expectation is on what the emulator received and holds, from hand-made tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import {
  READ_ONLY,
  WRITE,
  bitrixMethods,
  connectBitrix,
  connectKommo,
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
  reason?: string;
}
interface Status {
  id: string;
  state: string;
  total: number;
  done: number;
  counts: Record<string, number>;
  results: RowOut[];
  requests?: unknown[];
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

describe('Kommo: import_leads', () => {
  let emu: KommoEmulator;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it('a mixed import: new, existing, returning, repeated in the file, bad rows → the right results, each once', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    // In the CRM before the import: Ann with an open lead; Bob whose only lead is lost.
    const ann = structured<{ lead: { id: number }; contact_id: number }>(
      await c.call('create_lead', { contact: { name: 'Ann Open', phone: '+7 901 111-00-01' } }),
    );
    const bob = structured<{ lead: { id: number }; contact_id: number }>(
      await c.call('create_lead', { contact: { name: 'Bob Back', email: 'bob@back.example' } }),
    );
    const pipelineId = emu.state.leads.get(bob.lead.id)!.pipeline_id;
    await c.call('update_lead', { id: bob.lead.id, status_id: 143, pipeline_id: pipelineId });
    const contactsBefore = emu.state.contacts.size;
    const leadsBefore = emu.state.leads.size;
    const seen = emu.requests.length;

    const rows = [
      { name: 'Cat deal', price: 100, contact: { name: 'Cat New', phone: '+7 901 111-00-03', email: 'cat@new.example' }, company: { name: 'Cat Co Import' } },
      { contact: { name: 'Ann Again', phone: '89011110001' } },
      { name: 'Bob again', contact: { name: 'Bob Back', email: 'BOB@back.example' } },
      { name: 'Cat twice', contact: { name: 'Cat New', email: 'cat@new.example' } },
      { contact: { name: 'Bad Mail', email: 'not-an-email' } },
      { contact: {} },
      { name: 'Dan deal', contact: { first_name: 'Dan', last_name: 'New', phone: '+7 901 111-00-04' } },
    ];
    const st = await finish(c, structured<Status>(await c.call('import_leads', { rows })));
    expect(st.state).toBe('done');
    const r = byRow(st);
    expect(r[1]!.status).toBe('created');
    expect(r[2]).toMatchObject({ status: 'existing', lead_id: ann.lead.id, contact_id: ann.contact_id });
    expect(r[3]).toMatchObject({ status: 'created', contact_id: bob.contact_id });
    expect(r[3]!.reason).toMatch(/closed/);
    expect(r[4]).toMatchObject({ status: 'existing', lead_id: r[1]!.lead_id });
    expect(r[4]!.reason).toMatch(/row 1/);
    expect(r[5]!.status).toBe('error');
    expect(r[5]!.reason).toMatch(/email/i);
    expect(r[6]!.status).toBe('error');
    expect(r[7]!.status).toBe('created');
    expect(st.counts).toEqual({ created: 3, existing: 2, error: 2 });

    // The emulator holds two new contacts (Cat, Dan) and three new leads, each once.
    expect(emu.state.contacts.size).toBe(contactsBefore + 2);
    expect(emu.state.leads.size).toBe(leadsBefore + 3);
    const names = [...emu.state.leads.values()].map((l) => l.name);
    for (const n of ['Cat deal', 'Bob again', 'Dan deal']) expect(names.filter((x) => x === n)).toHaveLength(1);
    expect(names).not.toContain('Cat twice');
    expect(emu.state.leads.get(Number(r[3]!.lead_id))!.name).toBe('Bob again');
    // Batched: one request per kind of record, never /leads/complex, nothing of the bad rows sent.
    const writes = writesTo(emu.requests.slice(seen)).map((q) => `${q.method} ${q.path} ${(JSON.parse(q.body) as unknown[]).length}`);
    expect(writes).toEqual(['POST /api/v4/companies 1', 'POST /api/v4/contacts 2', 'POST /api/v4/leads 3']);
    expect(emu.requests.slice(seen).some((q) => q.body.includes('not-an-email'))).toBe(false);
    await c.close();
  });

  it('a dry run returns the plan and sends no write', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const seen = emu.requests.length;
    const st = structured<Status>(
      await c.call('import_leads', {
        dry_run: true,
        rows: [{ contact: { name: 'Eve Dry', phone: '+7 901 111-00-05' } }, { contact: { name: 'Ann', phone: '+79011110001' } }],
      }),
    );
    expect(st.state).toBe('done');
    expect(byRow(st)[1]!.status).toBe('would_create');
    expect(byRow(st)[2]!.status).toBe('existing');
    expect(JSON.stringify(st.requests)).toContain('/api/v4/leads');
    expect(writesTo(emu.requests.slice(seen))).toEqual([]);
    await c.close();
  });

  it('read-only mode refuses and sends nothing; more than 500 rows is a clear error', async () => {
    const ro = await connectKommo(emu, { flags: READ_ONLY });
    const seen = emu.requests.length;
    // Not listed in read-only mode, and a call naming it anyway is refused before anything is sent.
    const listed = (await ro.client.listTools()).tools.map((t) => t.name);
    expect(listed).toContain('get_import_status');
    expect(listed).not.toContain('import_leads');
    await expect(ro.call('import_leads', { rows: [{ contact: { name: 'Ro', phone: '+7 901 111-00-06' } }] })).rejects.toThrow(/not found/);
    expect(emu.requests.length).toBe(seen);
    await ro.close();
    const c = await connectKommo(emu, { flags: WRITE });
    const many = Array.from({ length: 501 }, (_, i) => ({ contact: { name: `P${i}` } }));
    const big = await c.call('import_leads', { rows: many });
    expect(big.isError).toBe(true);
    expect(JSON.stringify(big.content)).toMatch(/500/);
    expect(emu.requests.length).toBe(seen);
    await c.close();
  });

  it('a lost answer to the batch: looked up first, nothing created twice', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    emu.injectFault({ kind: 'reset-after' }, { match: { method: 'POST', path: '/api/v4/leads' } });
    const rows = [1, 2, 3].map((i) => ({ name: `Lost ${i}`, contact: { name: `Lost Person ${i}`, phone: `+7 901 222-00-0${i}` } }));
    const st = await finish(c, structured<Status>(await c.call('import_leads', { rows })));
    expect(st.counts).toEqual({ created: 3 });
    const names = [...emu.state.leads.values()].map((l) => l.name);
    for (const n of ['Lost 1', 'Lost 2', 'Lost 3']) expect(names.filter((x) => x === n)).toHaveLength(1);
    await c.close();
  });

  it('a client that asked for progress gets MCP progress notifications while it waits', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const seen: Array<{ progress: number; total?: number }> = [];
    const rows = [1, 2].map((i) => ({ name: `Progress ${i}`, contact: { name: `Progress Person ${i}`, email: `progress${i}@import.example` } }));
    const res = await c.client.callTool({ name: 'import_leads', arguments: { rows } }, { onprogress: (p) => seen.push(p) });
    expect(res.isError).toBeFalsy();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toMatchObject({ progress: 2, total: 2 });
    await c.close();
  });

  it('an import stopped after its batch was sent is resumed by id without duplicates', async () => {
    const c = await connectKommo(emu, { flags: WRITE, maxRetries: 0 });
    // The batch is processed but its answer lost, and the look-up that follows fails: the job stops, pending.
    // (No phone or email: nothing is looked up before the batch; after it, the lead is looked for by its name.)
    emu.injectFault({ kind: 'reset-after' }, { match: { method: 'POST', path: '/api/v4/leads' } });
    emu.injectFault({ kind: 'status', status: 503 }, { match: { method: 'GET', path: /^\/api\/v4\/leads$/ } });
    const rows = [1, 2].map((i) => ({ name: `Resumed ${i}`, contact: { name: `Resumed Person ${i}` } }));
    const first = await finish(c, structured<Status>(await c.call('import_leads', { rows })));
    expect(first.state).toBe('failed');
    expect([...emu.state.leads.values()].filter((l) => l.name.startsWith('Resumed '))).toHaveLength(2);
    const seen = emu.requests.length;
    const resumed = await finish(c, structured<Status>(await c.call('import_leads', { resume: first.id })));
    expect(resumed.state).toBe('done');
    expect(resumed.counts).toEqual({ created: 2 });
    expect([...emu.state.leads.values()].filter((l) => l.name.startsWith('Resumed '))).toHaveLength(2);
    expect(writesTo(emu.requests.slice(seen))).toEqual([]);
    await c.close();
  });
});

describe('Bitrix24: import_leads', () => {
  let emu: BitrixEmulator;
  beforeAll(async () => {
    emu = await startBitrix();
  });
  afterAll(async () => emu.close());

  it('a mixed import in one batch request: new, existing, repeated, bad → the right results, each once', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    const ann = structured<{ lead: { id: number }; contact_id: number }>(
      await c.call('create_lead', { contact: { name: 'Ann Open', phone: '+7 902 111-00-01' } }),
    );
    const leadsBefore = emu.state.leads.size;
    const contactsBefore = emu.state.contacts.size;
    const seen = emu.requests.length;
    const rows = [
      { name: 'Cat deal', contact: { name: 'Cat New', phone: '+7 902 111-00-03', email: 'cat@bx.example' } },
      { contact: { name: 'Ann Again', phone: '89021110001' } },
      { name: 'Cat twice', contact: { name: 'Cat New', phone: '+79021110003' } },
      { contact: { name: 'Bad Phone', phone: 'call me' } },
      { name: 'Dan deal', contact: { name: 'Dan New', email: 'dan@bx.example' } },
    ];
    const st = await finish(c, structured<Status>(await c.call('import_leads', { rows })));
    const r = byRow(st);
    expect(r[1]!.status).toBe('created');
    expect(r[2]).toMatchObject({ status: 'existing', lead_id: ann.lead.id });
    expect(r[3]).toMatchObject({ status: 'existing', lead_id: r[1]!.lead_id });
    expect(r[4]!.status).toBe('error');
    expect(r[5]!.status).toBe('created');
    expect(emu.state.leads.size).toBe(leadsBefore + 2);
    expect(emu.state.contacts.size).toBe(contactsBefore + 2);
    const titles = [...emu.state.leads.values()].map((l) => String(l.TITLE));
    expect(titles.filter((t) => t === 'Cat deal')).toHaveLength(1);
    expect(titles).not.toContain('Cat twice');
    // The creates went in one batch (contact adds and lead adds with $result references), nothing else written.
    const writes = bitrixMethods(emu.requests.slice(seen)).filter((m) => !/\.(list|get|fields)$|findbycomm|^batch$/.test(m));
    expect(writes).toEqual([]);
    const batches = emu.requests.slice(seen).filter((q) => q.path.endsWith('/batch.json') && q.body.includes('.add'));
    expect(batches).toHaveLength(1);
    expect(batches[0]!.body).toContain('$result[r');
    // The look-ups start with one batched pre-check for the three people of the first round (findbycomm).
    const prechecks = emu.requests.slice(seen).filter((q) => q.body.includes('findbycomm') && q.body.includes('p0_') && q.body.includes('p2_'));
    expect(prechecks).toHaveLength(1);
    await c.close();
  });

  it('a dry run sends no write; read-only refuses', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    const seen = emu.requests.length;
    const st = structured<Status>(await c.call('import_leads', { dry_run: true, rows: [{ contact: { name: 'Eve Dry', phone: '+7 902 111-00-09' } }] }));
    expect(byRow(st)[1]!.status).toBe('would_create');
    expect(emu.requests.slice(seen).filter((q) => q.body.includes('.add'))).toEqual([]);
    await c.close();
    const ro = await connectBitrix(emu, { flags: READ_ONLY });
    const seen2 = emu.requests.length;
    await expect(ro.call('import_leads', { rows: [{ contact: { name: 'Ro' } }] })).rejects.toThrow(/not found/);
    expect(emu.requests.length).toBe(seen2);
    await ro.close();
  });
});
