/**
 * `crm.activity.add` (fact sheet §7.8): a system activity on a lead, deal, contact or company. Calls (TYPE_ID
 * 2), meetings (1) and e-mails (4) are emulated. An outgoing e-mail (DIRECTION 2) marked `COMPLETED: "Y"` is
 * sent at once from the portal's mailbox — the emulator records the letter in `state.outbox`, so a test can
 * see that nothing was sent. Providers that deliver their own messages (`PROVIDER_ID`: SMS, open lines,
 * applications) are not emulated and refused loudly.
 */
import type { CallCtx, MethodResult, Registry } from './context.js';
import { BxError, errors } from './errors.js';
import { flag, isObject, param, type Params } from './params.js';
import { ENTITY_BY_TYPE_ID } from './schema.js';
import { nextId, table, type BRecord } from './state.js';
import { parseBxDate, phpDate } from './time.js';

const EMAIL_RE = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/** The compat methods answer with an empty code and the message as description (§6). */
const fail = (text: string) => new BxError(400, '', text);

function intField(f: Record<string, unknown>, name: string): number | undefined {
  const v = f[name];
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

function communications(v: unknown): Array<Record<string, unknown>> {
  const list = Array.isArray(v) ? v : isObject(v) ? Object.values(v) : [];
  return list.filter(isObject);
}

function addActivity(p: Params, ctx: CallCtx): MethodResult {
  const raw = param(p, 'fields', false, 'array');
  if (!isObject(raw)) throw errors.mustBeArray('fields');
  // Field names inside `fields` are UPPER_CASE (§1.4).
  const f = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toUpperCase(), v]));
  const state = ctx.portal.state;
  if (f.PROVIDER_ID !== undefined || f.PROVIDER_TYPE_ID !== undefined)
    throw errors.unsupported('crm.activity.add with PROVIDER_ID/PROVIDER_TYPE_ID is not emulated (providers deliver their own messages, §7.8).');
  const type = intField(f, 'TYPE_ID');
  if (type === undefined || type <= 0) throw fail('The field TYPE_ID is not defined or invalid.');
  if (![1, 2, 4].includes(type)) throw errors.unsupported(`crm.activity.add with TYPE_ID ${type} is not emulated (1 meeting, 2 call, 4 e-mail).`);
  const subject = f.SUBJECT === undefined || f.SUBJECT === null ? '' : String(f.SUBJECT);
  if (!subject.trim()) throw fail('The field SUBJECT is not defined or empty.');
  const responsible = intField(f, 'RESPONSIBLE_ID');
  if (responsible === undefined || !state.users.some((u) => Number(u.ID) === responsible)) throw fail('The field RESPONSIBLE_ID is not defined or invalid.');
  const comms = communications(f.COMMUNICATIONS);
  if (!comms.length || comms.some((c) => c.VALUE === undefined || String(c.VALUE).trim() === ''))
    throw fail('The field COMMUNICATIONS is not defined or invalid.');
  if (type === 2 && comms.length > 1) throw fail('The only one communication is allowed for activity of specified type.');
  const ownerKind = ENTITY_BY_TYPE_ID[intField(f, 'OWNER_TYPE_ID') ?? 0];
  const ownerId = intField(f, 'OWNER_ID');
  if (!ownerKind || ownerId === undefined || !table(state, ownerKind).has(ownerId))
    throw fail('Could not build binding. Please ensure that owner info and communications are defined correctly.');
  const direction = intField(f, 'DIRECTION') ?? (type === 1 ? 0 : 1);
  const completed = flag(f.COMPLETED, false);
  const outgoingMail = type === 4 && direction === 2;
  if (outgoingMail && comms.some((c) => !EMAIL_RE.test(String(c.VALUE).trim()))) throw fail('Email send error. Invalid email is specified');

  const id = nextId(state, 'activity');
  const now = phpDate(ctx.portal.now());
  const when = (v: unknown) => {
    const t = v === undefined || v === '' ? undefined : parseBxDate(v);
    return t === undefined ? now : phpDate(t);
  };
  const rec: BRecord = {
    ID: String(id),
    OWNER_ID: String(ownerId),
    OWNER_TYPE_ID: String(f.OWNER_TYPE_ID),
    TYPE_ID: String(type),
    PROVIDER_ID: type === 2 ? 'VOXIMPLANT_CALL' : type === 4 ? 'CRM_EMAIL' : 'CRM_MEETING',
    PROVIDER_TYPE_ID: type === 2 ? 'CALL' : type === 4 ? 'EMAIL' : 'MEETING',
    SUBJECT: subject,
    DESCRIPTION: f.DESCRIPTION === undefined ? '' : String(f.DESCRIPTION),
    DESCRIPTION_TYPE: String(f.DESCRIPTION_TYPE ?? '1'),
    DIRECTION: String(direction),
    PRIORITY: String(f.PRIORITY ?? '2'),
    RESPONSIBLE_ID: String(responsible),
    AUTHOR_ID: String(ctx.auth.userId),
    EDITOR_ID: String(ctx.auth.userId),
    CREATED: now,
    LAST_UPDATED: now,
    START_TIME: when(f.START_TIME),
    END_TIME: when(f.END_TIME),
    DEADLINE: when(f.START_TIME),
    COMPLETED: completed ? 'Y' : 'N',
    STATUS: completed ? '2' : '1',
  };
  state.activities.set(id, rec);
  // §7.8: an outgoing e-mail marked completed is sent now; left open (COMPLETED N) it is not sent.
  if (outgoingMail && completed) {
    const settings = isObject(f.SETTINGS) ? f.SETTINGS : {};
    const user = state.users.find((u) => Number(u.ID) === responsible);
    state.outbox.push({
      activityId: id,
      from: String(settings.MESSAGE_FROM ?? user?.EMAIL ?? ''),
      to: comms.map((c) => String(c.VALUE).trim()),
      subject,
      body: String(rec.DESCRIPTION),
      sentAt: now,
    });
  }
  return { result: id };
}

export function registerActivities(reg: Registry): void {
  reg.set('crm.activity.add', { scope: 'crm', handler: addActivity });
}
