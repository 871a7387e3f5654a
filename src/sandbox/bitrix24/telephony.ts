/**
 * External-line telephony (`telephony.externalCall.*`; the calls fact sheet, events-calls-bulk-hosting.md
 * 3.3; §2.1, §6): application (OAuth) context only, so an inbound webhook gets 403 `WRONG_AUTH_TYPE`, and
 * scope `telephony`. `register` opens a call (a re-registration with the same phone, type, user, line and
 * EXTERNAL_CALL_ID within 30 minutes returns the call it already has); `finish` closes it and creates its CRM
 * call activity (a finished call is no longer an active call, so finishing it again is "not found");
 * `attachRecord` attaches a wav or mp3 after `finish`. Errors are `ERROR_CORE` with the documented texts.
 */
import type { CallCtx, MethodResult, Registry } from './context.js';
import { BxError, errors } from './errors.js';
import { param, type Params } from './params.js';
import { matchCode } from './phone.js';
import { nextId, table, type BitrixState, type BRecord } from './state.js';
import { parseBxDate, phpDate } from './time.js';

export interface ExternalCall {
  CALL_ID: string;
  USER_ID: number;
  PHONE_NUMBER: string;
  TYPE: number;
  LINE_NUMBER: string;
  EXTERNAL_CALL_ID: string;
  CRM_ENTITY_TYPE: string | null;
  CRM_ENTITY_ID: number | null;
  startedAt: number;
  registeredAt: number;
  finished: boolean;
  activityId?: number;
  recordUrl?: string;
}

const stores = new WeakMap<BitrixState, { calls: ExternalCall[] }>();

/** Every external call the portal registered (tests read it). */
export function externalCallsOf(s: BitrixState): ExternalCall[] {
  let t = stores.get(s);
  if (!t) stores.set(s, (t = { calls: [] }));
  return t.calls;
}

const REREGISTER_MS = 30 * 60 * 1000;
const core = (text: string) => new BxError(400, 'ERROR_CORE', text);

function int(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

function activeUser(ctx: CallCtx, p: Params): number {
  const id = int(param(p, 'USER_ID'));
  if (id === undefined && param(p, 'USER_PHONE_INNER') === undefined) throw core('USER_ID or USER_PHONE_INNER should be set');
  if (id === undefined) throw errors.unsupported('USER_PHONE_INNER is not emulated; send USER_ID.');
  const u = ctx.portal.state.users.find((x) => Number(x.ID) === id);
  if (!u || !u.ACTIVE) throw core('User is not found or is not active');
  return id;
}

const ENTITY_TYPES: Record<string, 'contact' | 'company' | 'lead'> = { CONTACT: 'contact', COMPANY: 'company', LEAD: 'lead' };
const OWNER_TYPE_ID: Record<string, number> = { LEAD: 1, CONTACT: 3, COMPANY: 4 };

function register(p: Params, ctx: CallCtx): MethodResult {
  const user = activeUser(ctx, p);
  const phone = String(param(p, 'PHONE_NUMBER') ?? '').trim();
  if (!phone || phone.replace(/\D+/g, '').length < 3) throw core('Unsupported phone number format');
  const type = int(param(p, 'TYPE'));
  if (type === undefined || type < 1 || type > 5) throw core('Unknown TYPE');
  if (int(param(p, 'CRM_CREATE')) === 1) throw errors.unsupported('CRM_CREATE=1 (creating a lead for an unknown number) is not emulated.');
  const started = param(p, 'CALL_START_DATE');
  const startedAt = started === undefined ? ctx.portal.now() : parseBxDate(started);
  if (startedAt === undefined) throw core('Wrong CALL_START_DATE format');
  const line = String(param(p, 'LINE_NUMBER') ?? '');
  const ext = String(param(p, 'EXTERNAL_CALL_ID') ?? '');
  const now = ctx.portal.now();
  const calls = externalCallsOf(ctx.portal.state);
  const again = calls.find(
    (c) =>
      c.PHONE_NUMBER === phone &&
      c.TYPE === type &&
      c.USER_ID === user &&
      c.LINE_NUMBER === line &&
      c.EXTERNAL_CALL_ID === ext &&
      now - c.registeredAt < REREGISTER_MS,
  );
  let call = again;
  if (!call) {
    let entityType = param(p, 'CRM_ENTITY_TYPE') === undefined ? null : String(param(p, 'CRM_ENTITY_TYPE')).toUpperCase();
    let entityId = int(param(p, 'CRM_ENTITY_ID')) ?? null;
    if (entityType !== null) {
      const kind = ENTITY_TYPES[entityType];
      if (!kind || entityId === null || !table(ctx.portal.state, kind).has(entityId)) throw core('CRM entity is not found');
    } else {
      // Without an entity the portal looks the number up among contacts (§7.7 match code).
      const code = matchCode('PHONE', phone);
      const hit = [...ctx.portal.state.contacts.values()].find((c) =>
        ((c.PHONE as Array<{ VALUE: string }> | undefined) ?? []).some((v) => matchCode('PHONE', String(v.VALUE)) === code),
      );
      entityType = hit ? 'CONTACT' : null;
      entityId = hit ? Number(hit.ID) : null;
    }
    call = {
      CALL_ID: `externalCall.${Math.random().toString(16).slice(2, 18)}.${Math.floor(now / 1000)}`,
      USER_ID: user,
      PHONE_NUMBER: phone,
      TYPE: type,
      LINE_NUMBER: line,
      EXTERNAL_CALL_ID: ext,
      CRM_ENTITY_TYPE: entityType,
      CRM_ENTITY_ID: entityId,
      startedAt,
      registeredAt: now,
      finished: false,
    };
    calls.push(call);
  }
  return {
    result: {
      CALL_ID: call.CALL_ID,
      CRM_CREATED_LEAD: null,
      CRM_CREATED_ENTITIES: [],
      CRM_ENTITY_TYPE: call.CRM_ENTITY_TYPE,
      CRM_ENTITY_ID: call.CRM_ENTITY_ID,
      LEAD_CREATION_ERROR: null,
    },
  };
}

function activeCall(ctx: CallCtx, p: Params): ExternalCall | undefined {
  const id = String(param(p, 'CALL_ID') ?? '');
  return externalCallsOf(ctx.portal.state).find((c) => c.CALL_ID === id);
}

const STATUS_CODES = new Set(['200', '304', '603', '603-S', '403', '404', '486', '484', '503', '480', '402', '423', 'OTHER']);

function finish(p: Params, ctx: CallCtx): MethodResult {
  const call = activeCall(ctx, p);
  if (!call || call.finished) throw core('Call is not found (call should be registered prior to finishing)');
  const user = activeUser(ctx, p);
  const duration = int(param(p, 'DURATION')) ?? 0;
  const rawStatus = param(p, 'STATUS_CODE');
  const status = rawStatus === undefined ? (duration > 0 ? '200' : '304') : String(rawStatus);
  if (!STATUS_CODES.has(status)) throw core('Unknown STATUS_CODE');
  const state = ctx.portal.state;
  let activityId: number | null = null;
  if (call.CRM_ENTITY_TYPE && call.CRM_ENTITY_ID !== null) {
    activityId = nextId(state, 'activity');
    const now = phpDate(ctx.portal.now());
    const incoming = call.TYPE !== 1;
    const rec: BRecord = {
      ID: String(activityId),
      OWNER_ID: String(call.CRM_ENTITY_ID),
      OWNER_TYPE_ID: String(OWNER_TYPE_ID[call.CRM_ENTITY_TYPE] ?? 3),
      TYPE_ID: '2',
      PROVIDER_ID: 'VOXIMPLANT_CALL',
      PROVIDER_TYPE_ID: 'CALL',
      SUBJECT: `${incoming ? 'Incoming' : 'Outgoing'} call ${call.PHONE_NUMBER}`,
      DESCRIPTION: '',
      DESCRIPTION_TYPE: '1',
      DIRECTION: incoming ? '1' : '2',
      PRIORITY: '2',
      RESPONSIBLE_ID: String(user),
      AUTHOR_ID: String(user),
      EDITOR_ID: String(user),
      CREATED: now,
      LAST_UPDATED: now,
      START_TIME: phpDate(call.startedAt),
      END_TIME: phpDate(call.startedAt + duration * 1000),
      DEADLINE: phpDate(call.startedAt),
      COMPLETED: 'Y',
      STATUS: '2',
      ORIGIN_ID: `VI_${call.CALL_ID}`,
    };
    state.activities.set(activityId, rec);
  }
  call.finished = true;
  call.activityId = activityId ?? undefined;
  return {
    result: {
      CALL_ID: call.CALL_ID,
      EXTERNAL_CALL_ID: call.EXTERNAL_CALL_ID,
      USER_ID: user,
      PHONE_NUMBER: call.PHONE_NUMBER,
      INCOMING: call.TYPE === 1 ? 1 : 2,
      CALL_DURATION: duration,
      CALL_START_DATE: phpDate(call.startedAt),
      CALL_FAILED_CODE: status,
      CRM_ACTIVITY_ID: activityId,
      CRM_ENTITY_TYPE: call.CRM_ENTITY_TYPE,
      CRM_ENTITY_ID: call.CRM_ENTITY_ID,
    },
  };
}

function attachRecord(p: Params, ctx: CallCtx): MethodResult {
  const call = activeCall(ctx, p);
  if (!call) throw core('Call is not found');
  // The fact sheet: call it after finish.
  if (!call.finished) throw core('Call is not finished yet; attach the record after telephony.externalCall.finish');
  const url = param(p, 'RECORD_URL');
  const name = param(p, 'FILENAME');
  const target = url !== undefined ? String(url) : name !== undefined ? String(name) : '';
  if (!target) throw core('RECORD_URL or FILENAME should be set');
  if (!/\.(wav|mp3)(\?.*)?$/i.test(target)) throw core('Unsupported file type: only wav and mp3 records are supported');
  if (url === undefined && param(p, 'FILE_CONTENT') === undefined) {
    return { result: { uploadUrl: `${ctx.portal.url}/rest/upload/${call.CALL_ID}`, fieldName: 'FILE' } };
  }
  call.recordUrl = target;
  return { result: { FILE_ID: call.activityId ?? 1 } };
}

export function registerTelephony(reg: Registry): void {
  reg.set('telephony.externalcall.register', { scope: 'telephony', appOnly: true, handler: register });
  reg.set('telephony.externalcall.finish', { scope: 'telephony', appOnly: true, handler: finish });
  reg.set('telephony.externalcall.attachrecord', { scope: 'telephony', appOnly: true, handler: attachRecord });
}
