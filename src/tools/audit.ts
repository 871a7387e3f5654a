import * as z from 'zod';
import { defineTool } from './define.js';
import { AuditEntry } from '../audit/audit-log.js';

export const getAuditLog = defineTool({
  name: 'get_audit_log',
  title: 'Show the audit log of writes',
  description:
    'Lists recent write decisions on this connection, newest first: which tool ran, allowed or refused and why, the target ids, the prior values of fields an update changed, and the outcome. Use it to review or undo what an agent changed. Free text is shown only as a prefix and a hash.',
  effect: 'read',
  toolset: 'audit',
  requires: [],
  input: z.object({
    limit: z.number().int().min(1).max(200).default(20).describe('Entries to return (default 20).'),
    tool: z.string().max(64).optional().describe('Only entries of this tool, e.g. update_lead.'),
    decision: z.enum(['allow', 'deny']).optional().describe('Only allowed or only refused calls.'),
  }),
  output: z.object({ enabled: z.boolean().describe('False when this server keeps no audit log.'), entries: z.array(AuditEntry) }),
  async handler({ limit, tool, decision }, { provider, audit }) {
    if (!audit) return { enabled: false, entries: [] };
    return { enabled: true, entries: await audit.recent({ limit, tool, decision, connection: provider.connection }) };
  },
});
