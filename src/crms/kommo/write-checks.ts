/**
 * Checks the typed update tools make before sending: the HTTP core classifies a PATCH that removes data
 * (tags detached, a field cleared) as a delete (effects-body.ts) and would refuse it with a bare message;
 * here the agent learns which argument needs what, before any request.
 */
import { CrmError } from '../../domain/errors.js';
import { toolRef } from '../../domain/tool-hints.js';
import type { CallContext } from '../types.js';

export { clearsCustomField } from './effects-body.js';

export function removalNeedsDelete(ctx: CallContext, field: string, what: string): void {
  if (ctx.grant.has('delete')) return;
  throw new CrmError({
    code: 'policy_denied',
    message:
      `${field}: ${what} removes data, which counts as a delete, and this call may only change records; nothing was sent. ` +
      `Leave it out, or send the change with ${toolRef('kommo_request', 'raw')} on a server running with CRM_SAFE_MODE=false and CRM_ALLOW_DELETE=true.`,
  });
}
