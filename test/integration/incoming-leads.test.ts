/**
 * Kommo incoming leads through a real MCP client: list (filters, paging), accept (an update: safe mode
 * refuses it) and decline (a delete: it needs CRM_ALLOW_DELETE), each sent once with the exact body, and
 * Bitrix24, which has no incoming leads, lists none of these tools.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectBitrix, connectKommo, CREATE_ONLY, errorOf, FULL, READ_ONLY, startBitrix, startKommo, structured, WRITE, writesTo } from '../helpers/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import { unsortedOf } from '../../src/sandbox/kommo/unsorted.js';

const SIP = 'demo0sip0000000000000000000000000000001';
const FORM = 'demo0forms00000000000000000000000000002';
const CHAT = 'demo0chats00000000000000000000000000003';

interface Item {
  uid: string;
  category: string;
  lead: { id: number } | null;
  call: { phone: string | null; duration_s: number | null } | null;
  form: { name: string | null } | null;
  pipeline: { id: number; name: string | null } | null;
}

describe('incoming leads on Kommo', () => {
  let emu: KommoEmulator;
  beforeEach(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterEach(async () => {
    await emu.close();
  });

  it('lists the seeded incoming leads with their call and form details, by category and in pages', async () => {
    const c = await connectKommo(emu, { flags: READ_ONLY });
    const all = structured<{ items: Item[]; has_more: boolean }>(await c.call('list_incoming_leads', {}));
    expect(all.items.map((i) => [i.uid, i.category])).toEqual([
      [SIP, 'sip'],
      [FORM, 'forms'],
      [CHAT, 'chats'],
    ]);
    expect(all.items[0]!.call).toMatchObject({ phone: '+79990001122', duration_s: 42 });
    expect(all.items[1]!.form).toEqual({ name: 'Contact us', page: 'https://example.com/contact' });
    expect(all.items[0]!.pipeline).toEqual({ id: DEMO.mainPipelineId, name: expect.any(String) });
    const sips = structured<{ items: Item[] }>(await c.call('list_incoming_leads', { category: ['sip'] }));
    expect(sips.items.map((i) => i.uid)).toEqual([SIP]);
    const seen = emu.requests.filter((r) => r.path === '/api/v4/leads/unsorted').map((r) => decodeURIComponent(r.url ?? ''));
    expect(seen.some((u) => u.includes('filter[category][]=sip'))).toBe(true);
    const p1 = structured<{ items: Item[]; has_more: boolean; cursor: string }>(await c.call('list_incoming_leads', { limit: 2 }));
    expect(p1.items).toHaveLength(2);
    expect(p1.has_more).toBe(true);
    const p2 = structured<{ items: Item[]; has_more: boolean }>(await c.call('list_incoming_leads', { cursor: p1.cursor }));
    expect(p2.items.map((i) => i.uid)).toEqual([CHAT]);
    expect(p2.has_more).toBe(false);
    await c.close();
  });

  it('accepts one into a stage with a responsible user: one POST with exactly that body; the lead moves, the contact appears', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const leadId = unsortedOf(emu.state).get(FORM)!.lead_id;
    const before = emu.requests.length;
    const res = await c.call('accept_incoming_lead', { uid: FORM, status_id: DEMO.mainFirstStatusId, user_id: DEMO.userIds[2] });
    const out = structured<{ outcome: string; lead: { id: number; status_id: number }; contacts: Array<{ id: number; name: string }> }>(res);
    const writes = writesTo(emu.requests.slice(before));
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual([`POST /api/v4/leads/unsorted/${FORM}/accept`]);
    expect(JSON.parse(writes[0]!.body)).toEqual({ user_id: DEMO.userIds[2], status_id: DEMO.mainFirstStatusId });
    expect(out).toMatchObject({ outcome: 'accepted', lead: { id: leadId, status_id: DEMO.mainFirstStatusId } });
    expect(emu.state.leads.get(leadId)).toMatchObject({ status_id: DEMO.mainFirstStatusId, responsible_user_id: DEMO.userIds[2] });
    expect(unsortedOf(emu.state).has(FORM)).toBe(false);
    expect(emu.state.contacts.get(out.contacts[0]!.id)?.name).toBe('Olga Smirnova');
    await c.close();
  });

  it('declines one: one DELETE, the incoming lead and its lead are gone', async () => {
    const c = await connectKommo(emu, { flags: FULL });
    const leadId = unsortedOf(emu.state).get(CHAT)!.lead_id;
    const before = emu.requests.length;
    const out = structured<{ outcome: string }>(await c.call('decline_incoming_lead', { uid: CHAT }));
    expect(out.outcome).toBe('declined');
    expect(writesTo(emu.requests.slice(before)).map((w) => `${w.method} ${w.path}`)).toEqual([`DELETE /api/v4/leads/unsorted/${CHAT}/decline`]);
    expect(unsortedOf(emu.state).has(CHAT)).toBe(false);
    expect(emu.state.leads.has(leadId)).toBe(false);
    await c.close();
  });

  it('safe mode hides and refuses accept; without CRM_ALLOW_DELETE decline is refused; nothing is sent', async () => {
    const safe = await connectKommo(emu, { flags: CREATE_ONLY });
    const names = (await safe.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('list_incoming_leads');
    expect(names).not.toContain('accept_incoming_lead');
    const before = emu.requests.length;
    await expect(safe.call('accept_incoming_lead', { uid: SIP })).rejects.toThrow(/accept_incoming_lead/);
    const write = await connectKommo(emu, { flags: WRITE });
    expect((await write.client.listTools()).tools.map((t) => t.name)).not.toContain('decline_incoming_lead');
    await expect(write.call('decline_incoming_lead', { uid: SIP })).rejects.toThrow(/decline_incoming_lead/);
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    expect(unsortedOf(emu.state).size).toBe(3);
    await safe.close();
    await write.close();
  });

  it('bad input and unknown uids are clear errors with nothing sent', async () => {
    const c = await connectKommo(emu, { flags: FULL });
    const before = emu.requests.length;
    expect(errorOf(await c.call('accept_incoming_lead', { uid: '../../leads/1' })).code).toBe('validation');
    expect(errorOf(await c.call('accept_incoming_lead', { uid: 'nope0000' })).code).toBe('not_found');
    expect(errorOf(await c.call('accept_incoming_lead', { uid: SIP, status_id: 424242 })).code).toBe('validation');
    expect(errorOf(await c.call('accept_incoming_lead', { uid: SIP, user_id: 999 })).code).toBe('validation');
    expect(errorOf(await c.call('decline_incoming_lead', { uid: 'nope0000' })).code).toBe('not_found');
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    await c.close();
  });

  it('a CRM failure on accept is a clear error and the incoming lead stays', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    emu.injectFault(
      { kind: 'status', status: 500, body: JSON.stringify({ title: 'ErrInternalServer', status: 500, detail: 'x' }) },
      { match: { method: 'POST', path: '/accept' } },
    );
    const res = await c.call('accept_incoming_lead', { uid: SIP });
    expect(res.isError).toBe(true);
    expect(unsortedOf(emu.state).has(SIP)).toBe(true);
    await c.close();
  });

  it('the emulator refuses a second incoming lead with the same source_uid (400)', async () => {
    const r = await fetch(`${emu.url}/api/v4/leads/unsorted/sip`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emu.createLongLivedToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          source_uid: 'demo-call-1',
          source_name: 'x',
          metadata: { uniq: 'z', duration: 1, service_code: 's', phone: '1234567', called_at: 1, from: '1234567' },
        },
      ]),
    });
    expect(r.status).toBe(400);
    expect(unsortedOf(emu.state).size).toBe(3);
  });
});

describe('incoming leads on Bitrix24', () => {
  it('are not offered (no such capability)', async () => {
    const emu = await startBitrix({ rateLimit: false });
    const c = await connectBitrix(emu, { flags: FULL });
    const names = (await c.client.listTools()).tools.map((t) => t.name);
    expect(names).not.toContain('list_incoming_leads');
    expect(names).toContain('log_call');
    await c.close();
    await emu.close();
  });
});
