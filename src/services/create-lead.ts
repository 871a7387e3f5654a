/**
 * Dedupe-then-create for leads, written once over provider primitives: validate everything before any write
 * (no partial records) → look the contact up by email/phone → the duplicate rule (dedupe.ts: only an open
 * lead of the kind asked for is a duplicate) → name the lead → find the company → build and send the create
 * → when the answer was lost, look before sending again (a create is never blindly re-sent) → report what
 * was created, merged or linked. A provider supplies the CRM's own steps (its stage rules, its request
 * shape, how it finds a lead it may just have made); the order and the words are the same on every CRM.
 */
import { CrmError } from '../domain/errors.js';
import type { CallContext, ContactInput, CreateLeadInput, CreateLeadResult, Id, Lead, PlannedRequest, SearchResult } from '../crms/types.js';
import type { NormalizedPhone } from '../util/phone.js';
import { decideLeadDuplicate } from '../domain/dedupe.js';
import { splitName, type PersonName } from '../domain/names.js';
import { checkEmail, checkPhone, requireLeadName } from '../domain/validate.js';

/** What a provider's own checks produce before any write: its fields for the create, plus these. */
export interface LeadDraft {
  /** The kind of record made ('lead' or 'deal'): only an open one of this kind is a duplicate. */
  entity?: 'lead' | 'deal';
  /** The account's country (ISO 3166 alpha-2), for phones typed without a country code. */
  country: string | undefined;
}

/** Everything decided about the new lead, handed to the provider to build its request. */
export interface NewLead<D extends LeadDraft> {
  draft: D;
  input: CreateLeadInput;
  title: string;
  contact: ContactInput | undefined;
  person: PersonName;
  /** The new contact's name: its full name, else its email or phone. */
  contactName: string | undefined;
  phone: NormalizedPhone | undefined;
  /** The existing contact to link instead of creating one. */
  contactId: number | undefined;
  /** The existing company (same name) to link; when a name was given and none matched, the create makes one. */
  companyId: number | undefined;
}

/** What the CRM answered to a create: the new (or merged-into) lead and the records linked to it. */
export interface SentLead {
  id: Id;
  contact_id: Id | null;
  company_id: Id | null;
  /** Set when the CRM merged the lead into an existing one (nothing new was made): why, for the agent. */
  mergedReason?: string;
}

export interface LeadPrimitives<D extends LeadDraft, R> {
  /** The CRM's own checks and reads (stage, user, custom fields, modes); throws before any write. */
  prepare(ctx: CallContext, input: CreateLeadInput): Promise<D>;
  searchByContact(ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult>;
  /** The id of the company with exactly this name (case and spaces aside), if there is one. */
  findCompany(ctx: CallContext, name: string): Promise<number | undefined>;
  build(lead: NewLead<D>): R;
  /** The request(s) a dry run shows, in the order they would be sent. */
  plan(request: R): PlannedRequest | PlannedRequest[];
  /** Sends the create; a lost answer is a CrmError with `ambiguous` set. */
  send(ctx: CallContext, request: R): Promise<SentLead>;
  /** After a lost answer: the lead the create may have made (`startedAt`: ms, just before it was sent). */
  findJustCreated(ctx: CallContext, lead: NewLead<D>, startedAt: number): Promise<Lead | undefined>;
  getLead(ctx: CallContext, id: Id, entity?: 'lead' | 'deal'): Promise<{ lead: Lead }>;
}

export async function createLead<D extends LeadDraft, R>(p: LeadPrimitives<D, R>, ctx: CallContext, input: CreateLeadInput): Promise<CreateLeadResult> {
  const contact = input.contact;
  const draft = await p.prepare(ctx, input);
  const phone = checkPhone('contact.phone', contact?.phone, draft.country);
  checkEmail('contact.email', contact?.email);

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
  const person = splitName(contact);
  const contactName = person.full || contact?.email || contact?.phone;
  // The description promises the contact's name as the default title.
  const title = requireLeadName(input.name?.trim() || contactName || undefined);
  const companyId = input.company?.name ? await p.findCompany(ctx, input.company.name) : undefined;

  const lead: NewLead<D> = { draft, input, title, contact, person, contactName, phone, contactId, companyId };
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
