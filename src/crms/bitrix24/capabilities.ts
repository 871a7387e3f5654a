/**
 * What a Bitrix24 provider can do, in a file of its own so the module (what the registry reads) and the provider
 * (what it builds) both read it without importing each other. The raw API is not a capability: bitrix_call is
 * this module's own tool (raw-tool.ts), as are delete_lead and delete_contact (delete-tools.ts).
 */
import type { Capability } from '../types.js';

/** The CrmModule kind, and the `kind` of every provider this wing builds. */
export const BITRIX24_KIND = 'bitrix24';

/** Bitrix24 has deals besides leads and deletes, and no tag list (its records carry no tags). */
export const BITRIX24_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  'leads',
  'deals',
  'contacts',
  'companies',
  'pipelines',
  'custom_fields',
  'users',
  'notes',
  'tasks',
  'delete',
  'calls',
  'bulk',
  'history',
]);
