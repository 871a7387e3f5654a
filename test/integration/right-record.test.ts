/**
 * Issue 16, "the right record, every time": one Bitrix24 entity default for every lead tool (from the portal's
 * CRM mode), Kommo list_contacts finding a phone in any format and a name in either word order, list_leads
 * `query` matching a phone or an email through the contacts, and an unknown pipeline_id refused. Each test
 * asserts on what the emulator holds or received.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { FULL, errorOf, structured, type Connected, type ConnectedBitrix, bitrixSession, closeAll, kommoSession } from '../helpers/index.js';

interface LeadOut {
  id: number;
  entity: 'lead' | 'deal';
  name: string;
}

/** Bitrix REST method names the emulator received (batch commands included), lower-cased. */
function bitrixReceived(emu: BitrixEmulator): string[] {
  return emu.requests.flatMap((r) => {
    const m = /\/([a-z0-9_.]+)\.json$/i.exec(r.path)?.[1]?.toLowerCase() ?? '';
    if (m !== 'batch') return [m];
    const cmd = (JSON.parse(r.body) as { cmd: Record<string, string> }).cmd;
    return Object.values(cmd).map((c) => c.split('?')[0]!.toLowerCase());
  });
}

for (const mode of ['classic', 'simple'] as const) {
  describe(`Bitrix24 ${mode} mode: create_lead's id reads back and updates as the same record`, () => {
    let emu: BitrixEmulator;
    let c: ConnectedBitrix;
    // Hand-made: classic portals have leads (crm.settings.mode.get 1), simple ones only deals (2).
    const expected = mode === 'classic' ? 'lead' : 'deal';
    beforeAll(async () => {
      ({ emu, c } = await bitrixSession({ flags: FULL }, { mode }));
    });
    afterAll(() => closeAll(c, emu));

    it('without entity: create → get → update → delete all land on one record of the default entity', async () => {
      // Make the ids overlap: the same id exists as a lead and as a deal, so a wrong default reads the other one.
      const created = structured<{ lead: LeadOut }>(await c.call('create_lead', { name: `Overlap ${mode}` })).lead;
      expect(created.entity).toBe(expected);
      const table = expected === 'lead' ? emu.state.leads : emu.state.deals;
      const other = expected === 'lead' ? emu.state.deals : emu.state.leads;
      expect(table.get(created.id)?.TITLE).toBe(`Overlap ${mode}`);
      if (mode === 'classic' && !other.has(created.id)) other.set(created.id, { ...table.get(created.id)!, ID: String(created.id), TITLE: 'Someone else' });
      const otherTitle = other.get(created.id)?.TITLE;

      const got = structured<{ lead: LeadOut }>(await c.call('get_lead', { id: created.id })).lead;
      expect(got).toMatchObject({ id: created.id, entity: expected, name: `Overlap ${mode}` });

      const updated = structured<{ lead: LeadOut }>(await c.call('update_lead', { id: created.id, name: `Renamed ${mode}` })).lead;
      expect(updated).toMatchObject({ id: created.id, entity: expected, name: `Renamed ${mode}` });
      expect(table.get(created.id)?.TITLE).toBe(`Renamed ${mode}`);
      expect(other.get(created.id)?.TITLE).toBe(otherTitle);

      const listed = structured<{ items: LeadOut[] }>(await c.call('list_leads', { query: `Renamed ${mode}` })).items;
      expect(listed.map((x) => [x.id, x.entity])).toEqual([[created.id, expected]]);

      emu.requests.length = 0;
      await c.call('delete_lead', { id: created.id, dry_run: true });
      expect(bitrixReceived(emu)).toContain(`crm.${expected}.get`);
      expect(bitrixReceived(emu)).not.toContain(`crm.${expected === 'lead' ? 'deal' : 'lead'}.get`);
    });

    it('with entity "deal": create → get → update land on the deal', async () => {
      const created = structured<{ lead: LeadOut }>(await c.call('create_lead', { name: `Deal ${mode}`, entity: 'deal' })).lead;
      expect(created.entity).toBe('deal');
      const got = structured<{ lead: LeadOut }>(await c.call('get_lead', { id: created.id, entity: created.entity })).lead;
      expect(got).toMatchObject({ id: created.id, entity: 'deal', name: `Deal ${mode}` });
      await c.call('update_lead', { id: created.id, entity: created.entity, name: `Deal ${mode} 2` });
      expect(emu.state.deals.get(created.id)?.TITLE).toBe(`Deal ${mode} 2`);
    });

    it(mode === 'classic' ? 'with entity "lead": create → get → update land on the lead' : 'entity "lead" is refused before anything is sent', async () => {
      if (mode === 'simple') {
        const before = emu.state.leads.size;
        emu.requests.length = 0;
        expect(errorOf(await c.call('create_lead', { name: 'No leads here', entity: 'lead' })).code).toBe('validation');
        expect(bitrixReceived(emu).filter((m) => m.startsWith('crm.lead.'))).toEqual([]);
        expect(emu.state.leads.size).toBe(before);
        return;
      }
      const created = structured<{ lead: LeadOut }>(await c.call('create_lead', { name: 'Lead classic', entity: 'lead' })).lead;
      expect(created.entity).toBe('lead');
      const got = structured<{ lead: LeadOut }>(await c.call('get_lead', { id: created.id, entity: created.entity })).lead;
      expect(got).toMatchObject({ id: created.id, entity: 'lead', name: 'Lead classic' });
      await c.call('update_lead', { id: created.id, entity: created.entity, name: 'Lead classic 2' });
      expect(emu.state.leads.get(created.id)?.TITLE).toBe('Lead classic 2');
    });
  });
}

describe('Bitrix24 list_leads: pipeline and query', () => {
  let emu: BitrixEmulator;
  let c: ConnectedBitrix;
  beforeAll(async () => {
    ({ emu, c } = await bitrixSession({ flags: FULL }));
  });
  afterAll(() => closeAll(c, emu));

  it('an unknown pipeline_id is refused naming the valid pipelines; no list is sent', async () => {
    await c.call('get_pipelines');
    emu.requests.length = 0;
    const e = errorOf(await c.call('list_leads', { pipeline_id: 987 }));
    expect(e.code).toBe('validation');
    for (const cat of emu.state.categories.values()) expect(e.message).toContain(`${cat.name} (${cat.id})`);
    expect(bitrixReceived(emu).filter((m) => /^crm\.(deal|lead)\.list$/.test(m))).toEqual([]);
  });

  it("a deal pipeline_id without entity lists that pipeline's deals", async () => {
    const items = structured<{ items: LeadOut[] }>(await c.call('list_leads', { pipeline_id: 0, limit: 5 })).items;
    expect(items.length).toBeGreaterThan(0);
    for (const x of items) expect(emu.state.deals.get(x.id)?.CATEGORY_ID ?? '0').toMatch(/^0$/);
    expect(new Set(items.map((x) => x.entity))).toEqual(new Set(['deal']));
  });

  it('a phone in another format and an email find the leads of the contact holding them', async () => {
    const made = structured<{ lead: LeadOut }>(
      await c.call('create_lead', { name: 'Query by phone', contact: { name: 'Olga Query', phone: '+7 913 555-12-34', email: 'olga.query@example.com' } }),
    ).lead;
    for (const query of ['8 (913) 555 12 34', 'OLGA.query@example.com']) {
      const items = structured<{ items: LeadOut[] }>(await c.call('list_leads', { query })).items;
      expect(items.map((x) => x.id)).toEqual([made.id]);
      expect(emu.state.leads.get(made.id)?.TITLE).toBe('Query by phone');
    }
  });
});

describe('Kommo', () => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({ flags: FULL }));
  });
  afterAll(() => closeAll(c, emu));
  beforeEach(() => {
    emu.requests.length = 0;
  });

  async function person(first: string, last: string, phone: string, stored: string, email: string): Promise<{ contact: number; lead: number }> {
    const r = structured<{ lead: LeadOut; contact_id: number }>(
      await c.call('create_lead', { name: `Deal of ${first}`, contact: { first_name: first, last_name: last, phone, email } }),
    );
    // Stored as a person typed it, not as E.164.
    const rec = emu.state.contacts.get(r.contact_id)!;
    for (const f of rec.custom_fields_values ?? []) if (f.field_code === 'PHONE') f.values = [{ ...f.values[0]!, value: stored }];
    return { contact: r.contact_id, lead: r.lead.id };
  }

  it('list_contacts finds a phone in any format and a two-word name in either order', async () => {
    const p = await person('Pavel', 'Smirnov', '+7 922 111-47-58', '8-922-111-47-58', 'pavel.smirnov@example.com');
    expect(emu.state.contacts.get(p.contact)?.name).toBe('Pavel Smirnov');
    const ids = async (query: string) => structured<{ items: Array<{ id: number }> }>(await c.call('list_contacts', { query })).items.map((x) => x.id);
    for (const query of ['+7 922 111-47-58', '89221114758']) expect(await ids(query), query).toEqual([p.contact]);
    // Hand-made: every stored contact named Pavel Smirnov, in either order (the demo account may hold another).
    const named = [...emu.state.contacts.values()].filter((x) => /^(Pavel Smirnov|Smirnov Pavel)$/.test(x.name)).map((x) => x.id);
    expect(named).toContain(p.contact);
    for (const query of ['Smirnov Pavel', 'Pavel Smirnov']) expect(new Set(await ids(query)), query).toEqual(new Set(named));
  });

  it("list_leads query by phone and by email lists the contact's leads with the other filters applied", async () => {
    const p = await person('Irina', 'Query', '+7 922 111-47-59', '8-922-111-47-59', 'irina.query@example.com');
    const lead = emu.state.leads.get(p.lead)!;
    for (const query of ['+7 (922) 111 47 59', 'Irina.Query@example.com']) {
      const items = structured<{ items: LeadOut[] }>(await c.call('list_leads', { query })).items;
      expect(items.map((x) => x.id)).toContain(p.lead);
      const other = [...emu.state.pipelines.keys()].find((x) => x !== lead.pipeline_id);
      if (other !== undefined) {
        const none = structured<{ items: LeadOut[] }>(await c.call('list_leads', { query, pipeline_id: other })).items;
        expect(none.map((x) => x.id)).not.toContain(p.lead);
      }
    }
  });

  it('an unknown pipeline_id is refused naming the valid pipelines; no lead list is sent', async () => {
    const e = errorOf(await c.call('list_leads', { pipeline_id: 987654 }));
    expect(e.code).toBe('validation');
    for (const p of emu.state.pipelines.values()) expect(e.message).toContain(`${p.name} (${p.id})`);
    expect(emu.requests.filter((r) => r.path === '/api/v4/leads')).toEqual([]);
  });
});
