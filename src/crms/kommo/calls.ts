/**
 * log_call on Kommo: `POST /api/v4/calls` (§12; the calls fact sheet, events-calls-bulk-hosting.md 3.1).
 * Kommo matches a call on the last 10 digits of a contact's or company's phone and files it on that record's
 * one open lead, and silently drops a call nobody's number matches: so the number is looked up first, and an
 * unknown one is refused (nothing sent) or, when asked, recorded as an incoming call lead
 * (`POST /api/v4/leads/unsorted/sip`). A call carries a `uniq` derived from what identifies it, and a call
 * whose answer was lost is looked for (its call note, which carries the `uniq`) before anything is re-sent.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { CallStatus, LogCallInput, LoggedCall } from '../../domain/calls.js';
import { parseDateInput } from '../../domain/dates.js';
import { CrmError, validationError } from '../../domain/errors.js';
import { normalizePhone, samePhone } from '../../util/phone.js';
import type { CallContext } from '../types.js';
import { PAGE_MAX } from './api.js';
import { LOST, WON, detailUrl, webOf } from './map.js';
import type { KommoParts } from './metadata.js';
import { KContact, KLead, parseKommo } from './schemas.js';
import { phoneQueries, searchContacts } from './search.js';

/** Kommo's `call_status` codes (amocrm-api-php CallInterface, fact sheet 3.1). */
const CALL_STATUS: Record<CallStatus, number> = {
  voicemail: 1,
  call_back_later: 2,
  unavailable: 3,
  answered: 4,
  wrong_number: 5,
  no_answer: 6,
  busy: 7,
  unknown: 8,
};

const SOURCE = 'crm-mcp';

const KCallsAnswer = z.looseObject({
  _embedded: z
    .looseObject({
      calls: z.array(z.looseObject({ id: z.number(), entity_id: z.number().nullish(), entity_type: z.string().nullish() })).nullish(),
    })
    .nullish(),
});
const KCallNote = z.looseObject({ id: z.number(), note_type: z.string().nullish(), params: z.looseObject({ uniq: z.unknown() }).nullish() });
const KUnsortedAnswer = z.looseObject({
  _embedded: z.looseObject({ unsorted: z.array(z.looseObject({ uid: z.string() })).nullish() }).nullish(),
});

interface Owner {
  entity: 'contacts' | 'companies';
  rec: KContact;
}

/** A company holding the number (Kommo matches companies too): searched like contacts, by `query` then an exact check. */
async function companyWithPhone(k: KommoParts, ctx: CallContext, e164: string, national: string, country?: string): Promise<KContact | undefined> {
  for (const text of phoneQueries(e164, national)) {
    const q = new URLSearchParams({ query: text, with: 'leads', limit: String(PAGE_MAX) });
    const hit = (await k.api.page(ctx, '/api/v4/companies', 'companies', q, KContact)).items.find((c) =>
      ((c.custom_fields_values ?? []).find((f) => f.field_code === 'PHONE')?.values ?? []).some((v) => samePhone(String(v.value ?? ''), e164, country)),
    );
    if (hit) return hit;
  }
  return undefined;
}

/** Who has the number: a contact first, then a company (the order Kommo's matching is documented in). */
async function ownerOf(k: KommoParts, ctx: CallContext, phone: string, e164: string | undefined, national: string | undefined): Promise<Owner | undefined> {
  const { contacts } = await searchContacts(k, ctx, { phone });
  if (contacts[0]) return { entity: 'contacts', rec: contacts[0] };
  if (!e164 || !national) return undefined;
  const company = await companyWithPhone(k, ctx, e164, national, await k.meta.defaultCountry(ctx));
  return company ? { entity: 'companies', rec: company } : undefined;
}

/** The lead Kommo files the call on: the record's one open lead, if it has exactly one. */
async function theOpenLead(k: KommoParts, ctx: CallContext, owner: Owner): Promise<{ id: number; name: string | null; url: string } | null> {
  const ids = (owner.rec._embedded?.leads ?? []).map((l) => l.id);
  if (!ids.length) return null;
  const open = (await k.api.byIds(ctx, 'leads', ids, KLead)).filter((l) => l.status_id !== WON && l.status_id !== LOST);
  const lead = open.length === 1 ? open[0]! : undefined;
  return lead ? { id: lead.id, name: lead.name ?? null, url: detailUrl(webOf(k.api.baseUrl), 'leads', lead.id) } : null;
}

/**
 * The call's `uniq`: a digest of what identifies the physical call (number, direction, start, duration, who),
 * so logging the same call again sends the same `uniq`. Without a start time nothing identifies it, and a
 * per-call random part keeps two real calls apart.
 */
export function callUniq(phone: string, input: LogCallInput, startedSec: number, responsible: number | undefined): string {
  const basis = JSON.stringify([phone, input.direction, input.started_at !== undefined ? startedSec : randomUUID(), input.duration_s, responsible ?? null]);
  return `${SOURCE}-${createHash('sha256').update(basis).digest('hex').slice(0, 32)}`;
}

/** The call note that carries this `uniq` on the lead or the record, if the call was already logged. */
async function findLogged(k: KommoParts, ctx: CallContext, targets: Array<[string, number]>, uniq: string): Promise<number | undefined> {
  for (const [entity, id] of targets) {
    const q = new URLSearchParams({ limit: String(PAGE_MAX) });
    q.append('filter[note_type][]', 'call_in');
    q.append('filter[note_type][]', 'call_out');
    const notes = (await k.api.page(ctx, `/api/v4/${entity}/${id}/notes`, 'notes', q, KCallNote)).items;
    const hit = notes.find((n) => n.params?.uniq === uniq);
    if (hit) return hit.id;
  }
  return undefined;
}

function personOf(k: KommoParts, owner: Owner): LoggedCall['person'] {
  const url = detailUrl(webOf(k.api.baseUrl), owner.entity, owner.rec.id);
  return { entity: owner.entity === 'contacts' ? 'contact' : 'company', id: owner.rec.id, name: owner.rec.name ?? null, url };
}

export async function logCall(k: KommoParts, ctx: CallContext, input: LogCallInput): Promise<LoggedCall> {
  const country = await k.meta.defaultCountry(ctx);
  const n = normalizePhone(input.phone, country);
  if (!n && input.phone.replace(/\D+/g, '').length < 7) throw validationError(`phone: "${input.phone.slice(0, 64)}" is not a phone number.`);
  const startedSec = Math.floor((input.started_at !== undefined ? parseDateInput(input.started_at, 'started_at') : Date.now()) / 1000);
  const acc = await k.meta.account(ctx);
  // call_responsible must be a user id (a number): a string is read by Kommo as a user's *name*.
  const responsible = (await k.meta.checkUser(ctx, input.responsible_user_id)) ?? (typeof acc.current_user_id === 'number' ? acc.current_user_id : undefined);
  const phone = n?.e164 ?? input.phone.trim();
  const uniq = callUniq(phone, input, startedSec, responsible);
  const owner = await ownerOf(k, ctx, input.phone, n?.e164, n?.national);

  if (!owner) {
    if (input.if_unknown !== 'incoming_lead') {
      throw new CrmError({
        code: 'not_found',
        message:
          `Nobody in Kommo has the number ${phone}, and Kommo drops a call for an unknown number, so nothing was logged. ` +
          'Create the person first (create_contact with this phone) and log the call again, or call log_call with if_unknown: "incoming_lead" to record it as an incoming call lead.',
      });
    }
    return incomingCallLead(k, ctx, input, { phone, uniq, startedSec, responsible });
  }

  const lead = await theOpenLead(k, ctx, owner);
  const targets: Array<[string, number]> = [...(lead ? [['leads', lead.id] as [string, number]] : []), [owner.entity, owner.rec.id]];
  const result = (callId: number | null, already: boolean): LoggedCall => ({
    call_id: callId,
    via: 'calls',
    person: personOf(k, owner),
    lead,
    incoming_lead_uid: null,
    already_logged: already,
  });
  // The same call logged before (a repeat with the same start time): found, not sent again.
  if (input.started_at !== undefined) {
    const prior = await findLogged(k, ctx, targets, uniq);
    if (prior !== undefined) return { ...result(prior, true), ...(ctx.dryRun ? { dry_run: true, requests: [] } : {}) };
  }
  const body = [
    {
      direction: input.direction === 'in' ? 'inbound' : 'outbound',
      uniq,
      duration: input.duration_s,
      source: SOURCE,
      phone,
      call_status: CALL_STATUS[input.status],
      ...(input.note ? { call_result: input.note } : {}),
      ...(input.recording_url ? { link: input.recording_url } : {}),
      ...(responsible !== undefined ? { call_responsible: responsible, responsible_user_id: responsible } : {}),
      created_at: startedSec,
      request_id: uniq,
    },
  ];
  if (ctx.dryRun) return { ...result(null, false), dry_run: true, requests: [k.api.plan('POST', '/api/v4/calls', body)] };
  let data: unknown;
  try {
    data = await k.api.call<unknown>(ctx, 'POST', '/api/v4/calls', { body, op: 'create' });
  } catch (e) {
    // The answer was lost: the call may be logged. Look for its note before anyone sends it again.
    if (!(e instanceof CrmError && e.ambiguous)) throw e;
    const found = await findLogged(k, ctx, targets, uniq);
    if (found !== undefined) return result(found, false);
    throw new CrmError({
      code: e.code,
      retryable: true,
      message: `${e.message} The call was looked for afterwards and is not logged; it is safe to call log_call again.`,
    });
  }
  const call = parseKommo(KCallsAnswer, data ?? {}, 'POST /api/v4/calls')._embedded?.calls?.[0];
  if (!call) {
    throw new CrmError({
      code: 'upstream',
      message: `Kommo accepted the call but logged none (it drops a call no contact or company number matches, or one the user may not see). ${phone} belongs to ${owner.rec.name ?? owner.rec.id}; check the number there.`,
    });
  }
  return result(call.id, false);
}

/** An unknown number's call as an incoming (unsorted) "sip" lead, with a contact holding the number. */
async function incomingCallLead(
  k: KommoParts,
  ctx: CallContext,
  input: LogCallInput,
  c: { phone: string; uniq: string; startedSec: number; responsible: number | undefined },
): Promise<LoggedCall> {
  const body = [
    {
      source_name: SOURCE,
      source_uid: c.uniq,
      created_at: c.startedSec,
      request_id: c.uniq,
      metadata: {
        is_call_event_needed: true,
        uniq: c.uniq,
        duration: input.duration_s,
        service_code: SOURCE,
        ...(input.recording_url ? { link: input.recording_url } : {}),
        phone: c.phone,
        called_at: c.startedSec,
        from: c.phone,
      },
      _embedded: {
        leads: [
          {
            name: `${input.direction === 'in' ? 'Call from' : 'Call to'} ${c.phone}`,
            ...(c.responsible !== undefined ? { responsible_user_id: c.responsible } : {}),
          },
        ],
        contacts: [{ name: c.phone, custom_fields_values: [{ field_code: 'PHONE', values: [{ value: c.phone, enum_code: 'WORK' }] }] }],
      },
    },
  ];
  if (ctx.dryRun)
    return {
      call_id: null,
      via: 'incoming_lead',
      via_reason: `nobody has ${c.phone}: would be recorded as an incoming call lead`,
      person: null,
      lead: null,
      incoming_lead_uid: null,
      already_logged: false,
      dry_run: true,
      requests: [k.api.plan('POST', '/api/v4/leads/unsorted/sip', body)],
    };
  const data = await k.api.call<unknown>(ctx, 'POST', '/api/v4/leads/unsorted/sip', { body, op: 'create' });
  const uid = parseKommo(KUnsortedAnswer, data ?? {}, 'POST /api/v4/leads/unsorted/sip')._embedded?.unsorted?.[0]?.uid;
  if (!uid) throw new CrmError({ code: 'upstream', message: 'Kommo accepted the incoming call lead but returned no uid.' });
  return {
    call_id: null,
    via: 'incoming_lead',
    via_reason: `nobody has ${c.phone}: recorded as an incoming call lead (accept_incoming_lead or decline_incoming_lead it)`,
    person: null,
    lead: null,
    incoming_lead_uid: uid,
    already_logged: false,
  };
}
