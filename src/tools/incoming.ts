import * as z from 'zod';
import { defineTool, pageOf, UNTRUSTED } from './define.js';
import { AcceptIncomingArgs, IncomingLead, IncomingOutcome, ListIncomingArgs } from '../domain/calls.js';

export const listIncomingLeads = defineTool({
  name: 'list_incoming_leads',
  title: 'List incoming leads',
  description: `Lists incoming (unsorted) leads waiting to be accepted or declined: calls, form submissions, chats and mail, with their contact and call or form details. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'incoming',
  requires: ['incoming'],
  input: ListIncomingArgs,
  output: pageOf(IncomingLead),
  async handler(args, { provider, ctx }) {
    return provider.listIncomingLeads(ctx, args);
  },
});

export const acceptIncomingLead = defineTool({
  name: 'accept_incoming_lead',
  title: 'Accept an incoming lead',
  description:
    "Accepts an incoming lead: it becomes a regular lead in the given stage (default: the pipeline's first stage) with its contact, and user_id becomes responsible. It changes an existing record, so safe mode refuses it.",
  effect: 'update',
  toolset: 'incoming',
  requires: ['incoming'],
  input: AcceptIncomingArgs,
  output: IncomingOutcome,
  async handler(args, { provider, ctx }) {
    return provider.acceptIncomingLead(ctx, args);
  },
});

export const declineIncomingLead = defineTool({
  name: 'decline_incoming_lead',
  title: 'Decline an incoming lead',
  description: 'Declines an incoming lead: the CRM removes it (and its not-yet-accepted contact). A delete: it needs CRM_ALLOW_DELETE=true.',
  effect: 'delete',
  toolset: 'incoming',
  requires: ['incoming'],
  input: z.object({ uid: AcceptIncomingArgs.shape.uid }),
  output: IncomingOutcome,
  async handler(args, { provider, ctx }) {
    return provider.declineIncomingLead(ctx, args.uid);
  },
});
