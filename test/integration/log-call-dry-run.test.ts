/**
 * log_call with dry_run, on both emulators: the number is still looked up (reads), and the answer carries the
 * exact requests each path would send (Kommo `POST /api/v4/calls` or an incoming sip lead; Bitrix24 a call
 * activity on a webhook, the three telephony steps with an app), while the emulator receives no write and
 * holds no new call.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bitrixMethods, connectBitrix, connectKommo, CREATE_ONLY, startBitrix, startKommo, structured, writesTo } from '../helpers/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import { callsOf } from '../../src/sandbox/kommo/calls.js';
import { unsortedOf } from '../../src/sandbox/kommo/unsorted.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { DEMO as BX } from '../../src/sandbox/bitrix24/demo-data.js';
import { externalCallsOf } from '../../src/sandbox/bitrix24/telephony.js';

const STARTED = '2026-03-02T10:15:00Z';

interface Planned {
  dry_run?: boolean;
  via: string;
  call_id: unknown;
  person: { id: number } | null;
  requests?: Array<{ method: string; url: string; body: unknown }>;
}

describe('log_call dry_run on Kommo', () => {
  let emu: KommoEmulator;
  beforeEach(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterEach(async () => emu.close());

  it('a known number: the POST /api/v4/calls it would send, nothing sent', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const args = { phone: '8 (912) 345-67-89', direction: 'in', duration_s: 95, status: 'answered', started_at: STARTED, dry_run: true };
    const out = structured<Planned>(await c.call('log_call', args));
    expect(out).toMatchObject({ dry_run: true, via: 'calls', call_id: null, person: { id: DEMO.ivanContactId } });
    expect(out.requests).toHaveLength(1);
    expect(out.requests![0]).toMatchObject({ method: 'POST', url: `${emu.url}/api/v4/calls` });
    expect((out.requests![0]!.body as Array<Record<string, unknown>>)[0]).toMatchObject({
      direction: 'inbound',
      duration: 95,
      phone: '+79123456789',
      call_status: 4,
    });
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    expect(callsOf(emu.state).calls).toEqual([]);
    await c.close();
  });

  it('an unknown number with if_unknown "incoming_lead": the sip lead it would make, nothing sent', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const incoming = unsortedOf(emu.state).size;
    const out = structured<Planned>(
      await c.call('log_call', { phone: '+7 999 000-44-55', direction: 'in', duration_s: 5, status: 'answered', if_unknown: 'incoming_lead', dry_run: true }),
    );
    expect(out).toMatchObject({ dry_run: true, via: 'incoming_lead' });
    expect(out.requests!.map((r) => `${r.method} ${r.url}`)).toEqual([`POST ${emu.url}/api/v4/leads/unsorted/sip`]);
    expect(writesTo(emu.requests.slice(before))).toEqual([]);
    expect(unsortedOf(emu.state).size).toBe(incoming);
    await c.close();
  });
});

describe('log_call dry_run on Bitrix24', () => {
  let emu: BitrixEmulator;
  beforeEach(async () => {
    emu = await startBitrix({ rateLimit: false, oauth: { clientId: 'app.1', clientSecret: 'app-secret-123456' } });
  });
  afterEach(async () => emu.close());

  const args = { phone: '+7 912 345 67 89', direction: 'out', duration_s: 60, status: 'answered', started_at: STARTED, dry_run: true };

  it('a webhook: the crm.activity.add it would send, nothing added', async () => {
    const c = await connectBitrix(emu, { flags: CREATE_ONLY });
    const before = emu.requests.length;
    const activities = emu.state.activities.size;
    const out = structured<Planned>(await c.call('log_call', args));
    expect(out).toMatchObject({ dry_run: true, via: 'activity', person: { id: BX.ivan.contactId } });
    expect(out.requests).toHaveLength(1);
    expect(out.requests![0]!.url).toMatch(/\/crm\.activity\.add\.json$/);
    expect((out.requests![0]!.body as { fields: Record<string, unknown> }).fields).toMatchObject({ TYPE_ID: 2, OWNER_ID: BX.ivan.dealId, COMPLETED: 'Y' });
    expect(bitrixMethods(emu.requests.slice(before)).filter((m) => m.includes('add') || m.startsWith('telephony'))).toEqual([]);
    expect(emu.state.activities.size).toBe(activities);
    await c.close();
  });

  it('an OAuth app: register, finish and attachRecord it would send, no call registered', async () => {
    const t = await emu.issueOAuthTokens();
    const c = await connectBitrix(emu, {
      flags: CREATE_ONLY,
      connection: { oauth: { clientId: 'app.1', clientSecret: 'app-secret-123456', refreshToken: t.refresh_token, portal: emu.url, oauthServer: emu.url } },
    });
    const before = emu.requests.length;
    const out = structured<Planned>(await c.call('log_call', { ...args, recording_url: 'https://rec.example.com/b.mp3' }));
    expect(out).toMatchObject({ dry_run: true, via: 'telephony' });
    expect(out.requests!.map((r) => r.url.replace(/^.*\//, ''))).toEqual([
      'telephony.externalCall.register.json',
      'telephony.externalCall.finish.json',
      'telephony.externalCall.attachRecord.json',
    ]);
    expect(bitrixMethods(emu.requests.slice(before)).filter((m) => m.startsWith('telephony'))).toEqual([]);
    expect(externalCallsOf(emu.state)).toEqual([]);
    await c.close();
  });
});
