import { defineTool, dryRunField } from './define.js';
import { LogCallArgs, LoggedCall } from '../domain/calls.js';

export const logCall = defineTool({
  name: 'log_call',
  title: 'Log a phone call',
  description:
    'Logs a finished phone call against the contact or company that has the number (and its one open lead or deal). The number is looked up first: when nobody has it nothing is logged and you are told so (create_contact, or if_unknown "incoming_lead" on Kommo). Give started_at so the same call logged again is recognised and not logged twice; the result says which path the CRM used. Use dry_run to preview.',
  effect: 'create',
  toolset: 'calls',
  requires: ['calls'],
  input: LogCallArgs.extend({ dry_run: dryRunField }),
  output: LoggedCall,
  async handler(args, { provider, ctx }) {
    const { dry_run: _d, ...input } = args;
    return provider.logCall(ctx, input);
  },
});
