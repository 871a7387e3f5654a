/**
 * log_call through a real MCP client against both emulators: the number is looked up first, the call is sent
 * once with the fields each CRM needs (Kommo `call_responsible` a numeric user id), an unknown number sends
 * nothing (or, asked, one incoming call lead), a repeat of the same call is not logged twice, and bad input,
 * read-only mode and CRM failures answer clearly with nothing written.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  bitrixMethods,
  connectBitrix,
  connectKommo,
  CREATE_ONLY,
  errorOf,
  READ_ONLY,
  startBitrix,
  startKommo,
  structured,
  writesTo,
  text,
} from '../helpers/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import { callsOf } from '../../src/sandbox/kommo/calls.js';
import { unsortedOf } from '../../src/sandbox/kommo/unsorted.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { DEMO as BX } from '../../src/sandbox/bitrix24/demo-data.js';
import { externalCallsOf } from '../../src/sandbox/bitrix24/telephony.js';

const STARTED = '2026-03-02T10:15:00Z';
const STARTED_SEC = Date.UTC(2026, 2, 2, 10, 15, 0) / 1000;
const UNKNOWN = '+7 999 000-44-55';

describe('log_call on Kommo', () => {
  let emu: KommoEmulator;
  beforeEach(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterEach(async () => {
    await emu.close();
  });

  it('logs a call for a known number with a numeric call_responsible, on the one open lead, as a call note', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const res = await c.call('log_call', {
      phone: '8 (912) 345-67-89',
      direction: 'in',
      duration_s: 95,
      status: 'answered',
      started_at: STARTED,
      note: 'Asked for the invoice',
      responsible_user_id: DEMO.userIds[1],
      recording_url: 'https://rec.example.com/a.mp3',
    });
    const out = structured<{ call_id: number; via: string; person: { entity: string; id: number; name: string }; lead: { id: number } | null }>(res);
    expect(out.via).toBe('calls');
    expect(out.person).toEqual({ entity: 'contact', id: DEMO.ivanContactId, name: DEMO.ivanName, url: `${emu.url}/contacts/detail/${DEMO.ivanContactId}` });
    const writes = writesTo(emu.requests.slice(before));
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual(['POST /api/v4/calls']);
    const body = JSON.parse(writes[0]!.body) as Array<Record<string, unknown>>;
    expect(body).toHaveLength(1);
    expect(body[0]).toMatchObject({
      direction: 'inbound',
      duration: 95,
      source: 'crm-mcp',
      phone: '+79123456789',
      call_status: 4,
      call_result: 'Asked for the invoice',
      link: 'https://rec.example.com/a.mp3',
      call_responsible: DEMO.userIds[1],
      created_at: STARTED_SEC,
    });
    expect(typeof body[0]!.call_responsible).toBe('number');
    expect(String(body[0]!.uniq)).toMatch(/^crm-mcp-[0-9a-f]{32}$/);
    const logged = callsOf(emu.state).calls;
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ id: out.call_id, responsible_user_id: DEMO.userIds[1], direction: 'inbound' });
    // Filed where the result says: the lead when it named one, else the contact's card.
    if (out.lead) expect(logged[0]).toMatchObject({ entity_type: 'leads', entity_id: out.lead.id });
    else expect(logged[0]).toMatchObject({ entity_type: 'contacts', entity_id: DEMO.ivanContactId });
    const note = emu.state.notes[logged[0]!.entity_type].get(out.call_id)!;
    expect(note.note_type).toBe('call_in');
    expect(note.params).toMatchObject({ duration: 95, phone: '+79123456789', uniq: body[0]!.uniq });
    await c.close();
  });

  it('the same call logged again (same start time) is found, not sent twice', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const args = { phone: '+79123456789', direction: 'out', duration_s: 30, status: 'answered', started_at: STARTED };
    const first = structured<{ call_id: number; already_logged: boolean }>(await c.call('log_call', args));
    const mark = emu.requests.length;
    const again = structured<{ call_id: number; already_logged: boolean }>(await c.call('log_call', args));
    expect(first.already_logged).toBe(false);
    expect(again).toMatchObject({ already_logged: true, call_id: first.call_id });
    expect(writesTo(emu.requests.slice(mark))).toEqual([]);
    expect(callsOf(emu.state).calls).toHaveLength(1);
    await c.close();
  });

  it('a lost answer is looked up, not re-sent: one call, reported as logged', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    emu.injectFault({ kind: 'reset-after' }, { match: { method: 'POST', path: '/api/v4/calls' } });
    const res = await c.call('log_call', { phone: '+79123456789', direction: 'in', duration_s: 12, status: 'busy', started_at: STARTED });
    const out = structured<{ call_id: number; already_logged: boolean }>(res);
    expect(emu.requests.filter((r) => r.method === 'POST' && r.path === '/api/v4/calls')).toHaveLength(1);
    expect(callsOf(emu.state).calls).toHaveLength(1);
    expect(out.call_id).toBe(callsOf(emu.state).calls[0]!.id);
    await c.close();
  });

  it('an unknown number sends nothing to /calls and says so, offering create_contact', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const res = await c.call('log_call', { phone: UNKNOWN, direction: 'in', duration_s: 10, status: 'answered' });
    const e = errorOf(res);
    expect(e.code).toBe('not_found');
    expect(e.message).toContain('create_contact');
    expect(e.message).toContain('incoming_lead');
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    await c.close();
  });

  it('an unknown number with if_unknown "incoming_lead" makes one incoming sip lead and no call', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const pending = unsortedOf(emu.state).size;
    const before = emu.requests.length;
    const res = await c.call('log_call', {
      phone: UNKNOWN,
      direction: 'in',
      duration_s: 10,
      status: 'answered',
      started_at: STARTED,
      if_unknown: 'incoming_lead',
    });
    const out = structured<{ via: string; incoming_lead_uid: string }>(res);
    expect(out.via).toBe('incoming_lead');
    const writes = writesTo(emu.requests.slice(before));
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual(['POST /api/v4/leads/unsorted/sip']);
    const body = JSON.parse(writes[0]!.body) as Array<{ metadata: Record<string, unknown> }>;
    expect(body[0]!.metadata).toMatchObject({ phone: '+79990004455', from: '+79990004455', duration: 10, called_at: STARTED_SEC, service_code: 'crm-mcp' });
    expect(unsortedOf(emu.state).size).toBe(pending + 1);
    expect(unsortedOf(emu.state).get(out.incoming_lead_uid)?.category).toBe('sip');
    expect(callsOf(emu.state).calls).toHaveLength(0);
    await c.close();
  });

  it('bad input is refused before anything is sent', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    for (const args of [
      { phone: '12', direction: 'in', duration_s: 5, status: 'answered' },
      { phone: '+79123456789', direction: 'sideways', duration_s: 5, status: 'answered' },
      { phone: '+79123456789', direction: 'in', duration_s: -1, status: 'answered' },
      { phone: '+79123456789', direction: 'in', duration_s: 5, status: 'answered', started_at: 'yesterday-ish' },
      { phone: '+79123456789', direction: 'in', duration_s: 5, status: 'answered', responsible_user_id: 999 },
    ]) {
      const res = await c.call('log_call', args);
      expect(res.isError, text(res)).toBe(true);
    }
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    await c.close();
  });

  it('read-only mode refuses it with nothing sent', async () => {
    const c = await connectKommo(emu, { flags: READ_ONLY });
    const before = emu.requests.length;
    // Hidden at registration (a create in read-only mode), and refused when called anyway.
    expect((await c.client.listTools()).tools.map((t) => t.name)).not.toContain('log_call');
    await expect(c.call('log_call', { phone: '+79123456789', direction: 'in', duration_s: 5, status: 'answered' })).rejects.toThrow(/log_call/);
    expect(emu.requests.slice(before)).toEqual([]);
    await c.close();
  });

  it('a CRM failure is a clear error and nothing is logged', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    emu.injectFault(
      { kind: 'status', status: 402, body: JSON.stringify({ title: 'Payment Required', status: 402, detail: 'Payment required' }) },
      { match: { method: 'POST', path: '/api/v4/calls' } },
    );
    const res = await c.call('log_call', { phone: '+79123456789', direction: 'in', duration_s: 5, status: 'answered' });
    expect(res.isError).toBe(true);
    expect(callsOf(emu.state).calls).toHaveLength(0);
    await c.close();
  });
});

describe('the Kommo emulator: POST /api/v4/calls', () => {
  let emu: KommoEmulator;
  beforeEach(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterEach(async () => {
    await emu.close();
  });
  const post = (body: unknown) =>
    fetch(`${emu.url}/api/v4/calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emu.createLongLivedToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('requires direction, duration, source and phone (400 validation errors)', async () => {
    const r = await post([{ uniq: 'x' }]);
    expect(r.status).toBe(400);
    const paths = ((await r.json()) as { 'validation-errors': Array<{ errors: Array<{ path: string }> }> })['validation-errors'][0]!.errors.map((e) => e.path);
    expect(paths.sort()).toEqual(['direction', 'duration', 'phone', 'source']);
    expect(callsOf(emu.state).calls).toHaveLength(0);
  });

  it('drops an unknown number (200, no call) and reads a string call_responsible as a name', async () => {
    const r = await post([{ direction: 'inbound', duration: 3, source: 's', phone: '+79990004455', uniq: 'u1' }]);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { _embedded: { calls: unknown[] } })._embedded.calls).toEqual([]);
    const asText = await post([
      { direction: 'inbound', duration: 3, source: 's', phone: '+79123456789', uniq: 'u2', call_responsible: String(DEMO.userIds[1]) },
    ]);
    expect(asText.status).toBe(200);
    // "6500102" is nobody's name: the call stays with the token's user, not with user 6500102.
    expect(callsOf(emu.state).calls[0]!.responsible_user_id).not.toBe(DEMO.userIds[1]);
  });
});

describe('log_call on Bitrix24', () => {
  let emu: BitrixEmulator;
  beforeEach(async () => {
    emu = await startBitrix({ rateLimit: false, oauth: { clientId: 'app.1', clientSecret: 'app-secret-123456' } });
  });
  afterEach(async () => {
    await emu.close();
  });

  it('with a webhook: a completed call activity on the contact or its one open deal (via "activity")', async () => {
    const c = await connectBitrix(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const res = await c.call('log_call', {
      phone: '+7 912 345 67 89',
      direction: 'out',
      duration_s: 60,
      status: 'answered',
      started_at: STARTED,
      note: 'Agreed on Friday',
    });
    const out = structured<{ via: string; call_id: number; person: { id: number }; lead: { id: number } | null }>(res);
    expect(out.via).toBe('activity');
    expect(out.person.id).toBe(BX.ivan.contactId);
    expect(out.lead?.id).toBe(BX.ivan.dealId);
    const methods = bitrixMethods(emu.requests.slice(before));
    expect(methods.filter((m) => !['batch', 'profile'].includes(m))).toEqual(['crm.activity.add']);
    const sent = emu.requests.slice(before).find((r) => r.path.includes('crm.activity.add'))!;
    const fields = (JSON.parse(sent.body) as { fields: Record<string, unknown> }).fields;
    expect(fields).toMatchObject({
      TYPE_ID: 2,
      DIRECTION: 2,
      COMPLETED: 'Y',
      OWNER_TYPE_ID: 2,
      OWNER_ID: BX.ivan.dealId,
      COMMUNICATIONS: [{ VALUE: '+79123456789', ENTITY_ID: BX.ivan.contactId, ENTITY_TYPE_ID: 3 }],
      DESCRIPTION: 'Agreed on Friday',
    });
    const act = emu.state.activities.get(out.call_id)!;
    expect(act).toMatchObject({ TYPE_ID: '2', OWNER_ID: String(BX.ivan.dealId), COMPLETED: 'Y', DIRECTION: '2' });
    expect(emu.state.outbox).toEqual([]);
    await c.close();
  });

  it('the emulator answers telephony.externalCall.register on a webhook with WRONG_AUTH_TYPE', async () => {
    const r = await fetch(`${emu.webhookUrl}telephony.externalCall.register.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ USER_ID: 1, PHONE_NUMBER: '+79123456789', TYPE: 2 }),
    });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toBe('WRONG_AUTH_TYPE');
    expect(externalCallsOf(emu.state)).toEqual([]);
  });

  it('with an OAuth app: register, finish and attachRecord (via "telephony"); the same call again is not logged twice', async () => {
    const t = await emu.issueOAuthTokens();
    const c = await connectBitrix(emu, {
      flags: CREATE_ONLY,
      connection: { oauth: { clientId: 'app.1', clientSecret: 'app-secret-123456', refreshToken: t.refresh_token, portal: emu.url, oauthServer: emu.url } },
    });
    const args = {
      phone: '+79123456789',
      direction: 'in',
      duration_s: 42,
      status: 'answered',
      started_at: STARTED,
      recording_url: 'https://rec.example.com/b.mp3',
    };
    const before = emu.requests.length;
    const out = structured<{ via: string; call_id: string; already_logged: boolean }>(await c.call('log_call', args));
    expect(out.via).toBe('telephony');
    const methods = bitrixMethods(emu.requests.slice(before)).filter((m) => m.startsWith('telephony.'));
    expect(methods).toEqual(['telephony.externalcall.register', 'telephony.externalcall.finish', 'telephony.externalcall.attachrecord']);
    const reg = JSON.parse(emu.requests.slice(before).find((r) => r.path.includes('register'))!.body) as Record<string, unknown>;
    expect(reg).toMatchObject({
      USER_ID: 1,
      PHONE_NUMBER: '+79123456789',
      TYPE: 2,
      CRM_CREATE: 0,
      SHOW: 0,
      CRM_ENTITY_TYPE: 'CONTACT',
      CRM_ENTITY_ID: BX.ivan.contactId,
    });
    expect(String(reg.EXTERNAL_CALL_ID)).toMatch(/^crm-mcp-[0-9a-f]{32}$/);
    const calls = externalCallsOf(emu.state);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ CALL_ID: out.call_id, finished: true, recordUrl: 'https://rec.example.com/b.mp3' });
    const again = structured<{ call_id: string; already_logged: boolean }>(await c.call('log_call', args));
    expect(again).toMatchObject({ call_id: out.call_id, already_logged: true });
    expect(externalCallsOf(emu.state)).toHaveLength(1);
    expect([...emu.state.activities.values()].filter((a) => String(a.ORIGIN_ID ?? '') === `VI_${out.call_id}`)).toHaveLength(1);
    await c.close();
  });

  it('an unknown number writes nothing; read-only refuses with nothing sent', async () => {
    const c = await connectBitrix(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const e = errorOf(await c.call('log_call', { phone: UNKNOWN, direction: 'in', duration_s: 1, status: 'no_answer' }));
    expect(e.code).toBe('not_found');
    expect(e.message).toContain('create_contact');
    expect(bitrixMethods(emu.requests.slice(before)).filter((m) => m.includes('add') || m.startsWith('telephony'))).toEqual([]);
    const ro = await connectBitrix(emu, { flags: READ_ONLY });
    const mark = emu.requests.length;
    expect((await ro.client.listTools()).tools.map((t) => t.name)).not.toContain('log_call');
    await expect(ro.call('log_call', { phone: '+79123456789', direction: 'in', duration_s: 1, status: 'answered' })).rejects.toThrow(/log_call/);
    expect(emu.requests.slice(mark)).toEqual([]);
    await c.close();
    await ro.close();
  });
});
