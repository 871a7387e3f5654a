/**
 * move_lead: the stage move a salesperson makes most, as a narrow update. Its request changes the stage and
 * nothing else, so an operator can admit it under safe mode (CRM_SAFE_UPDATES=stage) without admitting any
 * other update: the policy admits the call by its `safeUpdate`, and the HTTP core admits only a request the
 * wing classifies as a stage move (policy.ts Grant.narrowUpdate).
 */
import * as z from 'zod';
import { Id, Lead } from '../domain/records.js';
import { MoveLeadArgs, PlannedRequests } from '../domain/inputs.js';
import { defineTool, dryRunField } from './define.js';

const Named = z.object({ id: Id, name: z.string().nullable() });
const StagePoint = z.object({ pipeline: Named.nullable(), stage: Named.nullable() });

export const moveLead = defineTool({
  name: 'move_lead',
  title: 'Move a lead to a stage',
  description:
    'Moves a lead/deal to another stage, or closes it as won or lost (Kommo: with a loss reason), changing nothing else. Returns the stage before and after by name. An unknown stage is refused with the valid ones. Use dry_run to preview.',
  effect: 'update',
  safeUpdate: 'stage',
  toolset: 'core',
  requires: ['leads'],
  input: MoveLeadArgs.extend({ dry_run: dryRunField }),
  output: z.object({
    dry_run: z.boolean().optional(),
    lead: Lead.nullable(),
    from: StagePoint,
    to: StagePoint,
    moved: z.string().describe('E.g. "moved from Qualification to Proposal".'),
    requests: PlannedRequests,
  }),
  audit: {
    prior: async (args, provider, ctx) => {
      const { lead } = await provider.getLead(ctx, args.id, args.entity);
      return { stage: lead.stage?.id ?? null, pipeline: lead.pipeline?.id ?? null };
    },
  },
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    return provider.moveLead(ctx, input);
  },
});
