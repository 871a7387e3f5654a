/**
 * Returning customers (issue 10, defect 11): only an open lead is "already a lead". A contact whose leads
 * are all closed gets a new lead linked to the same contact, with everything the caller gave; no second
 * contact. `if_open_lead_exists: "create"` asks for another lead even when one is open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { WRITE, connectBitrix, connectKommo, startBitrix, startKommo, structured } from '../helpers/index.js';

type Created = {
  created: boolean;
  lead: { id: number; name: string; price: number | null; tags: string[]; contact_ids: number[]; stage: { type: string } | null } | null;
  contact_id: number | null;
  reason?: string;
};

describe('Kommo: a returning customer', () => {
  let emu: KommoEmulator;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it('gets a new lead on the same contact when the old one is lost; an open lead is returned; "create" adds one', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const phone = '+7 912 555-12-34';
    const first = structured<Created>(await c.call('create_lead', { contact: { first_name: 'Ada', last_name: 'Lovelace', phone } }));
    expect(first.created).toBe(true);
    // The title defaults to the contact's name, as the description says.
    expect(first.lead!.name).toBe('Ada Lovelace');
    const contactId = first.contact_id!;
    const pipelineId = emu.state.leads.get(first.lead!.id)!.pipeline_id;
    // Lose it.
    const lost = await c.call('update_lead', { id: first.lead!.id, status_id: 143, pipeline_id: pipelineId });
    expect(lost.isError).toBeFalsy();
    expect(emu.state.leads.get(first.lead!.id)!.status_id).toBe(143);

    const contactsBefore = emu.state.contacts.size;
    const again = structured<Created>(
      await c.call('create_lead', {
        name: 'Second order',
        price: 4200,
        tags: ['repeat'], // an existing tag: a new name would extend the account's tag list (admin)
        contact: { first_name: 'Ada', last_name: 'Lovelace', phone: '89125551234' },
      }),
    );
    expect(again.created).toBe(true);
    expect(again.lead!.id).not.toBe(first.lead!.id);
    expect(again.contact_id).toBe(contactId);
    expect(again.reason).toMatch(/closed/);
    const stored = emu.state.leads.get(again.lead!.id)!;
    expect(stored.name).toBe('Second order');
    expect(stored.price).toBe(4200);
    expect(emu.state.contacts.size).toBe(contactsBefore);
    expect(again.lead!.contact_ids).toContain(contactId);
    expect(again.lead!.tags).toContain('repeat');

    // Now an open lead exists: it is the duplicate.
    const dup = structured<Created>(await c.call('create_lead', { name: 'Third', contact: { phone } }));
    expect(dup.created).toBe(false);
    expect(dup.lead!.id).toBe(again.lead!.id);
    expect(dup.reason).toMatch(/open lead/);

    // Unless the caller asks for another.
    const leadsBefore = emu.state.leads.size;
    const forced = structured<Created>(await c.call('create_lead', { name: 'Upsell', contact: { phone }, if_open_lead_exists: 'create' }));
    expect(forced.created).toBe(true);
    expect(forced.contact_id).toBe(contactId);
    expect(emu.state.leads.size).toBe(leadsBefore + 1);
    expect(emu.state.contacts.size).toBe(contactsBefore);
    await c.close();
  });
});

describe('Bitrix24: a returning customer', () => {
  let emu: import('../../src/sandbox/bitrix24/index.js').BitrixEmulator;
  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it('a lost deal does not block a new deal on the same contact; an open one does unless "create"', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    const phone = '+7 912 555-77-01';
    const first = structured<Created>(await c.call('create_lead', { entity: 'deal', contact: { name: 'Grace Hopper', phone } }));
    expect(first.created).toBe(true);
    expect(first.lead!.name).toBe('Grace Hopper');
    const contactId = first.contact_id!;
    // Names are split the same way as on Kommo: the last word is the last name.
    const storedContact = emu.state.contacts.get(Number(contactId))!;
    expect([storedContact.NAME, storedContact.LAST_NAME]).toEqual(['Grace', 'Hopper']);
    const pipelines = structured<{ pipelines: Array<{ id: number | string; entity: string; stages: Array<{ id: string; type: string }> }> }>(
      await c.call('get_pipelines'),
    );
    const deal = emu.state.deals.get(Number(first.lead!.id))!;
    const pipeline = pipelines.pipelines.find((p) => p.entity === 'deal' && String(p.id) === String(deal.CATEGORY_ID ?? 0))!;
    const lostStage = pipeline.stages.find((s) => s.type === 'lost')!;
    expect((await c.call('update_lead', { id: first.lead!.id, entity: 'deal', status_id: lostStage.id })).isError).toBeFalsy();

    const contactsBefore = emu.state.contacts.size;
    const again = structured<Created>(await c.call('create_lead', { entity: 'deal', name: 'Second order', price: 900, contact: { phone: '8 912 555 77 01' } }));
    expect(again.created).toBe(true);
    expect(String(again.lead!.id)).not.toBe(String(first.lead!.id));
    expect(String(again.contact_id)).toBe(String(contactId));
    expect(emu.state.contacts.size).toBe(contactsBefore);
    const stored = emu.state.deals.get(Number(again.lead!.id))!;
    expect(stored.TITLE).toBe('Second order');
    expect(Number(stored.OPPORTUNITY)).toBe(900);

    const dup = structured<Created>(await c.call('create_lead', { entity: 'deal', name: 'Third', contact: { phone } }));
    expect(dup.created).toBe(false);
    expect(String(dup.lead!.id)).toBe(String(again.lead!.id));

    const forced = structured<Created>(await c.call('create_lead', { entity: 'deal', name: 'Upsell', contact: { phone }, if_open_lead_exists: 'create' }));
    expect(forced.created).toBe(true);
    expect(emu.state.contacts.size).toBe(contactsBefore);
    await c.close();
  });

  it('entity "deal" never returns an existing lead as the duplicate', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    const phone = '+7 912 555-77-02';
    const asLead = structured<Created>(await c.call('create_lead', { entity: 'lead', name: 'Inquiry', contact: { name: 'Alan Turing', phone } }));
    expect(asLead.created).toBe(true);
    const dealsBefore = emu.state.deals.size;
    const asDeal = structured<Created & { lead: { entity: string } }>(await c.call('create_lead', { entity: 'deal', name: 'Real deal', contact: { phone } }));
    expect(asDeal.created).toBe(true);
    expect(asDeal.lead.entity).toBe('deal');
    expect(emu.state.deals.size).toBe(dealsBefore + 1);
    await c.close();
  });

  it('search: found means a contact matched, with a separate count of its leads', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    const made = await c.call('create_contact', { name: 'Lonely Contact', phone: '+7 912 555-77-03' });
    expect(made.isError).toBeFalsy();
    const r = structured<{ found: boolean; lead_count: number; contacts: unknown[] }>(await c.call('search_lead_by_contact', { phone: '+79125557703' }));
    expect(r.found).toBe(true);
    expect(r.contacts).toHaveLength(1);
    expect(r.lead_count).toBe(0);
    await c.close();
  });
});
