/**
 * The steps of the duplicate-safe creates that are each CRM's own. The order and the words are written once, in
 * src/services/create-lead.ts and create-contact.ts, which the tools call; a wing supplies only these named
 * primitives (its stage rules, its request shape, how it finds a record it may just have made), as the
 * `createLeadSteps` / `createContactSteps` members of its provider (capabilities.ts). Being named members, each
 * step can be wrapped from above (a journal around `send`, an approval before it) without the wing knowing.
 */
import type { ContactInput, CreateCompanyInput, CreateContactInput, CreateLeadInput } from '../domain/inputs.js';
import type { PersonName } from '../domain/names.js';
import type { Company, Contact, Id, Lead, PlannedRequest, SearchResult } from '../domain/records.js';
import type { NormalizedPhone } from '../util/phone.js';
import type { CallContext } from './call-context.js';

// ---------------------------------------------------------------- create_lead

/** What a CRM's own checks produce before any write: its fields for the create, plus these. */
export interface LeadDraft {
  /** The kind of record made ('lead' or 'deal'): only an open one of this kind is a duplicate. */
  entity?: 'lead' | 'deal';
  /** The account's country (ISO 3166 alpha-2), for phones typed without a country code. */
  country: string | undefined;
}

/** Everything decided about the new lead, handed to the CRM to build its request. */
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

/** The CRM's steps of create_lead, run in order by services/create-lead.ts. `D`: its draft; `R`: its request. */
export interface LeadPrimitives<D extends LeadDraft = LeadDraft, R = unknown> {
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

// ---------------------------------------------------------------- create_contact

export interface NewContact<D> {
  draft: D;
  input: CreateContactInput;
  person: PersonName;
  /** The full name (first + last, or `name`). */
  name: string;
  phone: NormalizedPhone | undefined;
  companyId: number | undefined;
}

/** The CRM's steps of create_contact, run in order by services/create-contact.ts. `D`: its draft; `R`: its request. */
export interface ContactPrimitives<D = unknown, R = unknown> {
  /** The account's country (ISO 3166 alpha-2), for phones typed without a country code. */
  country(ctx: CallContext): Promise<string | undefined>;
  /** Input this CRM cannot take at all (e.g. tags where there are none); pure. */
  refuse?(input: CreateContactInput): void;
  /** The CRM's own checks and reads (responsible user, custom fields); throws before any write. */
  prepare(ctx: CallContext, input: CreateContactInput): Promise<D>;
  /** An existing contact with this email or phone, as the tool returns it. */
  findExisting(ctx: CallContext, q: { email?: string; phone?: string }): Promise<Contact | undefined>;
  findCompany(ctx: CallContext, name: string): Promise<number | undefined>;
  /** Words after `company_name: no company named "…".` (what to do instead), if any. */
  noCompanyHint?: string;
  build(contact: NewContact<D>): R;
  plan(request: R): PlannedRequest;
  /** Sends the create and returns the new contact's id; a lost answer is a CrmError with `ambiguous` set. */
  send(ctx: CallContext, request: R): Promise<Id>;
  /** After a lost answer: the contact the create may have made, found by email/phone. */
  findJustCreated(ctx: CallContext, q: { email?: string; phone?: string }): Promise<Contact | undefined>;
  getContact(ctx: CallContext, id: Id): Promise<Contact>;
}

// ---------------------------------------------------------------- create_company

export interface NewCompany<D> {
  draft: D;
  input: CreateCompanyInput;
  /** The name, trimmed. */
  name: string;
  phone: NormalizedPhone | undefined;
}

/** The CRM's steps of create_company, run in order by services/create-company.ts. `D`: its draft; `R`: its request. */
export interface CompanyPrimitives<D = unknown, R = unknown> {
  /** The account's country (ISO 3166 alpha-2), for phones typed without a country code. */
  country(ctx: CallContext): Promise<string | undefined>;
  /** Input this CRM cannot take at all (e.g. tags where there are none); pure. */
  refuse?(input: CreateCompanyInput): void;
  /** The CRM's own checks and reads (responsible user, custom fields, tags); throws before any write. */
  prepare(ctx: CallContext, input: CreateCompanyInput): Promise<D>;
  /** An existing company (companies only, not people) with this email or phone, as the tool returns it. */
  findExisting(ctx: CallContext, q: { email?: string; phone?: string }): Promise<Company | undefined>;
  build(company: NewCompany<D>): R;
  plan(request: R): PlannedRequest;
  /** Sends the create and returns the new company's id; a lost answer is a CrmError with `ambiguous` set. */
  send(ctx: CallContext, request: R): Promise<Id>;
  /** After a lost answer: the company the create may have made, found by email/phone. */
  findJustCreated(ctx: CallContext, q: { email?: string; phone?: string }): Promise<Company | undefined>;
  getCompany(ctx: CallContext, id: Id): Promise<Company>;
}
