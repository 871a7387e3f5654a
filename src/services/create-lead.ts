/**
 * Dedupe-then-create for leads, written once over provider primitives: validate everything before any write
 * (no partial records) → look the contact up by email/phone → the duplicate rule (dedupe.ts: only an open
 * lead of the kind asked for is a duplicate) → name the lead → find the company → build and send the create
 * → when the answer was lost, look before sending again (a create is never blindly re-sent) → report what
 * was created, merged or linked. A provider supplies the CRM's own steps (its stage rules, its request
 * shape, how it finds a lead it may just have made: crms/create-steps.ts); the order and the words are the same
 * on every CRM. The create_lead tool calls this with its connection's `createLeadSteps`, so whatever wraps a
 * tool call (audit, approval, a journal: tools/invoke.ts) wraps the whole workflow. From the lookup until the
 * create is confirmed it holds the person's lock (store/identity-lock.ts), so callers racing on one person
 * (five identical calls at once, two instances) create one record: the later ones find it.
 */
import { CrmError } from '../domain/errors.js';
import type { CallContext, CreateLeadInput, CreateLeadResult } from '../crms/types.js';
import type { LeadDraft, LeadPrimitives, NewLead, SentLead } from '../crms/create-steps.js';
import { decideLeadDuplicate } from '../domain/dedupe.js';
import { splitName } from '../domain/names.js';
import { checkEmail, checkPhone, requireLeadName } from '../domain/validate.js';
import { personKeys, processIdentityLocks, type PersonLock } from '../store/identity-lock.js';

export type { LeadDraft, LeadPrimitives, NewLead, SentLead } from '../crms/create-steps.js';

/** Whether the create could look for a duplicate first: without a phone or an email there is nothing to look by. */
export type DuplicateCheck = 'done' | 'not possible: no phone or email';
export const NO_DUPLICATE_CHECK: DuplicateCheck = 'not possible: no phone or email';

const localLock = processIdentityLocks.for({ kind: 'local', connection: 'default' });

export async function createLead<D extends LeadDraft, R>(
  p: LeadPrimitives<D, R>,
  ctx: CallContext,
  input: CreateLeadInput,
  lock: PersonLock = localLock,
): Promise<CreateLeadResult & { duplicate_check: DuplicateCheck }> {
  const contact = input.contact;
  const person = splitName(contact);
  const contactName = person.full || contact?.email || contact?.phone;
  // The lead-name rule, checked once and before any request: a lead needs a name, or a contact to name it
  // after; the title then defaults to the contact's name, as the tool's description promises.
  const named = [contact?.first_name, contact?.last_name, contact?.name, contact?.email, contact?.phone].some((v) => v?.trim());
  const title = requireLeadName(input.name?.trim() || (named ? contactName : undefined));
  const draft = await p.prepare(ctx, input);
  const phone = checkPhone('contact.phone', contact?.phone, draft.country);
  checkEmail('contact.email', contact?.email);
  const keys = personKeys({ e164: phone?.e164, email: contact?.email });
  const duplicate_check: DuplicateCheck = keys.length ? 'done' : NO_DUPLICATE_CHECK;
  const r = await lock(keys, () => lookThenCreate(p, ctx, input, { draft, title, contact, person, contactName, phone }));
  return { ...r, duplicate_check };
}

/** The part under the person's lock: the lookup, then the create and its confirmation. */
async function lookThenCreate<D extends LeadDraft, R>(
  p: LeadPrimitives<D, R>,
  ctx: CallContext,
  input: CreateLeadInput,
  known: Pick<NewLead<D>, 'draft' | 'title' | 'contact' | 'person' | 'contactName' | 'phone'>,
): Promise<CreateLeadResult> {
  const { draft, contact } = known;
  let contactId: number | undefined;
  let linkNote: string | undefined;
  if (contact?.email || contact?.phone) {
    const found = await p.searchByContact(ctx, { email: contact.email, phone: contact.phone });
    const d = decideLeadDuplicate(found, { entity: draft.entity, ifOpenLeadExists: input.if_open_lead_exists, matchedBy: contact.email ? 'email' : 'phone' });
    if (d.kind === 'return') return { created: false, lead: d.lead, contact_id: d.contactId, company_id: d.lead.company?.id ?? null, reason: d.reason };
    // The contact exists (without an open lead): link it rather than create a second contact.
    if (d.contactId !== undefined) contactId = Number(d.contactId);
    linkNote = d.note;
  }
  const companyId = input.company?.name ? await p.findCompany(ctx, input.company.name) : undefined;

  const lead: NewLead<D> = { ...known, input, contactId, companyId };
  const request = p.build(lead);
  if (ctx.dryRun)
    return { created: false, dry_run: true, lead: null, contact_id: contactId ?? null, company_id: companyId ?? null, requests: [p.plan(request)].flat() };

  const startedAt = Date.now();
  let sent: SentLead;
  try {
    sent = await p.send(ctx, request);
  } catch (e) {
    if (!(e instanceof CrmError && e.ambiguous)) throw e;
    // The create may or may not have happened: look before creating again, so a retry never duplicates.
    const landed = await p.findJustCreated(ctx, lead, startedAt);
    if (landed)
      return {
        created: true,
        lead: landed,
        contact_id: landed.contact_ids[0] ?? null,
        company_id: landed.company?.id ?? null,
        ...(linkNote ? { reason: linkNote } : {}),
      };
    sent = await p.send(ctx, request);
  }
  const { lead: created } = await p.getLead(ctx, sent.id, draft.entity);
  if (sent.mergedReason) return { created: false, lead: created, contact_id: sent.contact_id, company_id: sent.company_id, reason: sent.mergedReason };
  return { created: true, lead: created, contact_id: sent.contact_id, company_id: sent.company_id, ...(linkNote ? { reason: linkNote } : {}) };
}
