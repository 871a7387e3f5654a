/**
 * Calls and incoming leads in the CRM-neutral language: the inputs log_call and the incoming-lead tools take
 * (the tools extend them) and the results the wings return (also the tools' output schemas).
 */
import * as z from 'zod';
import { Id, LinkRef, PlannedRequest, Ref } from './records.js';

/**
 * How a call ended, in words an agent uses; each wing maps them to its own codes (Kommo `call_status` 1–8,
 * Bitrix24 `STATUS_CODE`).
 */
export const CALL_STATUSES = ['answered', 'no_answer', 'busy', 'voicemail', 'call_back_later', 'unavailable', 'wrong_number', 'unknown'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

export const LogCallArgs = z.object({
  phone: z.string().min(1).max(64).describe("The other party's number as the dialer shows it (matched on its digits)."),
  direction: z.enum(['in', 'out']).describe('in: they called; out: we called.'),
  duration_s: z.number().int().min(0).max(86_400).describe('Talk time in seconds (0 for a missed call).'),
  status: z.enum(CALL_STATUSES).describe('How the call ended.'),
  started_at: z
    .string()
    .max(40)
    .optional()
    .describe('ISO 8601 start time (default: now). Give it: the same call logged again is then recognised and not logged twice.'),
  recording_url: z.string().url().max(2000).optional().describe('Link to the recording (Bitrix24: wav or mp3).'),
  note: z.string().max(4000).optional().describe('What was said, kept with the call.'),
  responsible_user_id: Id.optional().describe("The user who took or made the call (default: the token's user)."),
  if_unknown: z
    .enum(['fail', 'incoming_lead'])
    .optional()
    .describe('When nobody has the number: fail (default; nothing is logged) or incoming_lead (Kommo: record it as an incoming call lead).'),
});
export type LogCallInput = z.infer<typeof LogCallArgs>;

export const LoggedCall = z.object({
  call_id: Id.nullable().describe("The CRM's id of the call record (Bitrix24 activity path: the activity id)."),
  via: z
    .enum(['calls', 'incoming_lead', 'telephony', 'activity'])
    .describe('calls: Kommo call log; incoming_lead: an incoming call lead; telephony: Bitrix24 external call; activity: Bitrix24 call activity.'),
  via_reason: z.string().optional(),
  person: z
    .object({ entity: z.enum(['contact', 'company']), id: Id, name: z.string().nullable(), url: z.string() })
    .nullable()
    .describe('Who has the number.'),
  lead: LinkRef.nullable().describe('The lead (or deal) the call went to, when it went to one.'),
  incoming_lead_uid: z.string().nullable(),
  already_logged: z.boolean().describe('True when this call was found already logged (a repeat), so nothing was sent.'),
  dry_run: z.boolean().optional(),
  requests: z.array(PlannedRequest).optional().describe('With dry_run: the exact requests that would be sent (nothing was).'),
});
export type LoggedCall = z.infer<typeof LoggedCall>;

export const INCOMING_CATEGORIES = ['sip', 'forms', 'chats', 'mail'] as const;

export const ListIncomingArgs = z.object({
  category: z.array(z.enum(INCOMING_CATEGORIES)).max(4).optional().describe('Only these kinds: sip (calls), forms, chats, mail.'),
  pipeline_id: Id.optional().describe('Only this pipeline (get_pipelines).'),
  limit: z.number().int().min(1).max(250).optional().describe('Page size (default 50, max 250).'),
  cursor: z.string().max(2000).optional().describe('From a previous page.'),
});
export type ListIncomingInput = z.infer<typeof ListIncomingArgs>;

export const IncomingLead = z.object({
  uid: z.string(),
  category: z.string(),
  source_name: z.string().nullable(),
  pipeline: Ref.nullable(),
  created_at: z.string().nullable(),
  lead: LinkRef.nullable(),
  contacts: z.array(LinkRef),
  companies: z.array(LinkRef),
  /** sip: the call; forms: the form. */
  call: z.object({ phone: z.string().nullable(), called_at: z.string().nullable(), duration_s: z.number().nullable(), link: z.string().nullable() }).nullable(),
  form: z.object({ name: z.string().nullable(), page: z.string().nullable() }).nullable(),
});
export type IncomingLead = z.infer<typeof IncomingLead>;

export const AcceptIncomingArgs = z.object({
  uid: z.string().min(1).max(100).describe('The incoming lead (list_incoming_leads).'),
  status_id: Id.optional().describe("Stage to accept it into (default: the pipeline's first stage after incoming)."),
  user_id: Id.optional().describe("Who accepts it and becomes responsible (default: the token's user)."),
});
export type AcceptIncomingInput = z.infer<typeof AcceptIncomingArgs>;

export const IncomingOutcome = z.object({
  uid: z.string(),
  outcome: z.enum(['accepted', 'declined']),
  lead: LinkRef.extend({ status_id: Id.nullable().optional() }).nullable(),
  contacts: z.array(LinkRef),
  companies: z.array(LinkRef),
});
export type IncomingOutcome = z.infer<typeof IncomingOutcome>;
