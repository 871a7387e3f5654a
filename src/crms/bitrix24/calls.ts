/**
 * log_call on Bitrix24. The telephony methods (`telephony.externalCall.register` → `finish` →
 * `attachRecord`) work only under application (OAuth) auth; an inbound webhook gets `WRONG_AUTH_TYPE` (§2.1,
 * §6). So an app connection registers and finishes an external call (which creates the CRM call activity),
 * and a webhook connection records a completed call activity (`crm.activity.add` TYPE_ID 2, §7.8) on the
 * contact or its one open deal. The result says which path was taken. The number is looked up first
 * (`crm.duplicate.findbycomm`, §7.7): a call is filed on a person, never on nobody.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { CallStatus, LogCallInput, LoggedCall } from '../../domain/calls.js';
import { parseDateInput } from '../../domain/dates.js';
import { CrmError, validationError } from '../../domain/errors.js';
import type { OperationKind } from '../../http/retry.js';
import { normalizePhone } from '../../util/phone.js';
import type { CallContext } from '../types.js';
import { num, recordUrl } from './map.js';
import type { BitrixParts } from './metadata.js';
import { classifyCall } from './methods.js';
import { findByComm } from './records.js';
import { BRow, parseBitrix } from './schemas.js';

/** `telephony.externalCall.finish` STATUS_CODE (SIP codes; the calls fact sheet, events-calls-bulk-hosting.md 3.3). */
const STATUS_CODE: Record<CallStatus, string> = {
  answered: '200',
  no_answer: '304',
  busy: '486',
  unavailable: '480',
  wrong_number: '404',
  voicemail: 'OTHER',
  call_back_later: 'OTHER',
  unknown: 'OTHER',
};

type Row = Record<string, unknown>;

/** An id the same physical call always gets (number, direction, start, duration, who); random without a start. */
function externalCallId(e164: string, input: LogCallInput, startedMs: number, user: number): string {
  const basis = JSON.stringify([e164, input.direction, input.started_at !== undefined ? startedMs : randomUUID(), input.duration_s, user]);
  return `crm-mcp-${createHash('sha256').update(basis).digest('hex').slice(0, 32)}`;
}

const isOpenDeal = (d: Row) => String(d.CLOSED ?? 'N').toUpperCase() !== 'Y';

async function send(b: BitrixParts, ctx: CallContext, method: string, params: Record<string, unknown>, op: OperationKind = 'create'): Promise<unknown> {
  return (await b.api.call<unknown>(ctx, method, params, op)).result;
}

/** Why the telephony path cannot run for this call, or undefined when it can. */
function telephonyBlocked(b: BitrixParts, ctx: CallContext, plan: Array<[string, Record<string, unknown>]>): string | undefined {
  if (b.conn.webhookUrl) return 'an inbound webhook cannot use telephony.externalCall.* (WRONG_AUTH_TYPE, application auth only)';
  const outside = plan.filter(([m, p]) => !ctx.grant.has(classifyCall(m, p)));
  // Decided before anything is sent, so a refusal at the HTTP core can never leave a registered, unfinished call.
  if (outside.length) return `${outside.map(([m]) => m).join(', ')} ${outside.length > 1 ? 'are' : 'is'} not covered by this call's grant`;
  return undefined;
}

export async function logCall(b: BitrixParts, ctx: CallContext, input: LogCallInput): Promise<LoggedCall> {
  const l = await b.meta.lookups(ctx);
  const n = normalizePhone(input.phone, l.country);
  if (!n) throw validationError(`phone: "${input.phone.slice(0, 64)}" is not a phone number.`);
  if (input.if_unknown === 'incoming_lead') {
    // Checked before any lookup: the option exists for Kommo's incoming leads, which Bitrix24 has not.
    throw validationError(
      'if_unknown: "incoming_lead" is a Kommo incoming lead; Bitrix24 has none. Create the person (create_contact) or a lead (create_lead) instead.',
    );
  }
  const startedMs = input.started_at !== undefined ? parseDateInput(input.started_at, 'started_at') : Date.now();
  const me = parseBitrix(BRow, (await b.api.call<unknown>(ctx, 'profile')).result ?? {}, 'profile');
  const user = (await b.meta.checkUser(ctx, input.responsible_user_id)) ?? Number(me.ID);

  const found = await findByComm(b, ctx, { phone: input.phone });
  const contact = found.contacts[0];
  if (!contact) {
    throw new CrmError({
      code: 'not_found',
      message: `Nobody in Bitrix24 has the number ${n.e164}, so nothing was logged (a call is filed on a person). Create the person first (create_contact with this phone) and log the call again.`,
    });
  }
  const contactId = Number(contact.ID);
  const contactName = [contact.NAME, contact.LAST_NAME].filter((x) => typeof x === 'string' && x.trim()).join(' ') || null;
  const linked = new Set(found.linksOf.get(contactId) ?? []);
  const openDeals = found.deals.filter((d) => isOpenDeal(d) && linked.has(Number(d.ID)));
  const deal = openDeals.length === 1 ? openDeals[0]! : undefined;
  const person = { entity: 'contact' as const, id: contactId, name: contactName, url: recordUrl(l.web, 'contact', contactId) };
  const lead = deal ? { id: Number(deal.ID), name: typeof deal.TITLE === 'string' ? deal.TITLE : null, url: recordUrl(l.web, 'deal', Number(deal.ID)) } : null;
  const callId = externalCallId(n.e164, input, startedMs, user);

  const register = {
    USER_ID: user,
    PHONE_NUMBER: n.e164,
    TYPE: input.direction === 'out' ? 1 : 2,
    CALL_START_DATE: new Date(startedMs).toISOString(),
    CRM_CREATE: 0,
    CRM_ENTITY_TYPE: 'CONTACT',
    CRM_ENTITY_ID: contactId,
    SHOW: 0,
    ADD_TO_CHAT: 0,
    EXTERNAL_CALL_ID: callId,
  };
  const finish = (id: string) => ({ CALL_ID: id, USER_ID: user, DURATION: input.duration_s, STATUS_CODE: STATUS_CODE[input.status], ADD_TO_CHAT: 0 });
  const attach = (id: string) => ({ CALL_ID: id, RECORD_URL: input.recording_url });
  const plan: Array<[string, Record<string, unknown>]> = [
    ['telephony.externalcall.register', register],
    ['telephony.externalcall.finish', finish('x')],
    ...(input.recording_url ? [['telephony.externalcall.attachrecord', attach('x')] as [string, Record<string, unknown>]] : []),
  ];
  const blocked = telephonyBlocked(b, ctx, plan);
  const planned = (requests: Array<[string, Record<string, unknown>]>, via: LoggedCall['via']): LoggedCall => ({
    call_id: null,
    via,
    ...(blocked ? { via_reason: blocked } : {}),
    person,
    lead,
    incoming_lead_uid: null,
    already_logged: false,
    dry_run: true,
    requests: requests.map(([m, p]) => b.api.plan(m, p)),
  });
  if (!blocked && ctx.dryRun) {
    const later = '<CALL_ID from telephony.externalCall.register>';
    const steps: Array<[string, Record<string, unknown>]> = [
      ['telephony.externalCall.register', register],
      ['telephony.externalCall.finish', finish(later)],
      ...(input.recording_url ? [['telephony.externalCall.attachRecord', attach(later)] as [string, Record<string, unknown>]] : []),
    ];
    return planned(steps, 'telephony');
  }
  if (!blocked) {
    const reg = parseBitrix(BRow, (await send(b, ctx, 'telephony.externalCall.register', register)) ?? {}, 'telephony.externalCall.register');
    const id = typeof reg.CALL_ID === 'string' ? reg.CALL_ID : undefined;
    if (!id) throw new CrmError({ code: 'upstream', message: 'Bitrix24 registered the call but returned no CALL_ID.' });
    let done: Row;
    try {
      done = parseBitrix(BRow, (await send(b, ctx, 'telephony.externalCall.finish', finish(id))) ?? {}, 'telephony.externalCall.finish');
    } catch (e) {
      // A re-registration of the same EXTERNAL_CALL_ID returns the call it already has; once finished, that
      // call is gone from the active calls, so "not found" here means this call was logged before.
      if (e instanceof CrmError && /call is not found/i.test(e.message)) {
        return { call_id: id, via: 'telephony', person, lead, incoming_lead_uid: null, already_logged: true };
      }
      throw e;
    }
    if (input.recording_url) await send(b, ctx, 'telephony.externalCall.attachRecord', attach(id), 'idempotent');
    void done;
    return { call_id: id, via: 'telephony', person, lead, incoming_lead_uid: null, already_logged: false };
  }

  const text = [input.note, input.recording_url ? `Recording: ${input.recording_url}` : undefined].filter(Boolean).join('\n');
  const fields = {
    OWNER_TYPE_ID: deal ? 2 : 3,
    OWNER_ID: deal ? Number(deal.ID) : contactId,
    TYPE_ID: 2,
    DIRECTION: input.direction === 'in' ? 1 : 2,
    SUBJECT: `${input.direction === 'in' ? 'Incoming' : 'Outgoing'} call ${n.e164} (${input.status.replace(/_/g, ' ')}, ${input.duration_s} s)`,
    COMPLETED: 'Y',
    RESPONSIBLE_ID: user,
    START_TIME: new Date(startedMs).toISOString(),
    END_TIME: new Date(startedMs + input.duration_s * 1000).toISOString(),
    COMMUNICATIONS: [{ VALUE: n.e164, ENTITY_ID: contactId, ENTITY_TYPE_ID: 3 }],
    ...(text ? { DESCRIPTION: text } : {}),
  };
  if (ctx.dryRun) return planned([['crm.activity.add', { fields }]], 'activity');
  const activityId = num(await send(b, ctx, 'crm.activity.add', { fields }));
  return { call_id: activityId ?? null, via: 'activity', via_reason: blocked, person, lead, incoming_lead_uid: null, already_logged: false };
}
