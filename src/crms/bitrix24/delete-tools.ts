/**
 * delete_lead and delete_contact: permanent deletes of Bitrix24 deals, leads and contacts. They are this
 * module's own tools (module.ts `tools`), not general ones: their words and their `entity` default (the portal's, as
 * every lead tool: a lead where the portal has leads, else a deal) are Bitrix24's, and a Kommo lead is never deleted by a typed tool. They still require the `delete`
 * capability (DeleteApi `deleteRecord`), so the registry's member check covers them.
 */
import * as z from 'zod';
import { defineTool, dryRunField } from '../../tools/define.js';
import { BITRIX24_KIND } from './capabilities.js';

const deleteOutput = z.object({
  dry_run: z.boolean().optional(),
  deleted: z.object({ id: z.union([z.number(), z.string()]), entity: z.string() }).nullable(),
  requests: z.array(z.unknown()).optional(),
});

export const deleteLead = defineTool({
  name: 'delete_lead',
  title: 'Delete a lead or deal',
  description:
    'Permanently deletes a Bitrix24 lead or deal by id (default: lead where the portal has leads, else deal, as create_lead). Irreversible: registered only when deletes are allowed; use dry_run to preview.',
  effect: 'delete',
  toolset: 'core',
  requires: ['leads', 'delete'],
  crmKind: BITRIX24_KIND,
  input: z.object({
    id: z.union([z.number().int().positive(), z.string().min(1).max(20)]).describe('Record id.'),
    entity: z.enum(['lead', 'deal']).optional().describe('Lead or deal (default: lead where the portal has leads, else deal).'),
    dry_run: dryRunField,
  }),
  output: deleteOutput,
  async handler({ id, entity }, { provider, ctx }) {
    // Omitted, the wing picks the portal's default (activity.ts deleteRecord), the same one create_lead used.
    const r = await provider.deleteRecord(ctx, entity as 'lead' | 'deal', id);
    return { ...(r.dry_run ? { dry_run: true } : {}), deleted: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});

export const deleteContact = defineTool({
  name: 'delete_contact',
  title: 'Delete a contact',
  description: 'Permanently deletes a Bitrix24 contact by id. Irreversible: registered only when deletes are allowed; use dry_run to preview.',
  effect: 'delete',
  toolset: 'core',
  requires: ['contacts', 'delete'],
  crmKind: BITRIX24_KIND,
  input: z.object({ id: z.union([z.number().int().positive(), z.string().min(1).max(20)]).describe('Contact id.'), dry_run: dryRunField }),
  output: deleteOutput,
  async handler({ id }, { provider, ctx }) {
    const r = await provider.deleteRecord(ctx, 'contact', id);
    return { ...(r.dry_run ? { dry_run: true } : {}), deleted: r.item, ...(r.requests ? { requests: r.requests } : {}) };
  },
});
