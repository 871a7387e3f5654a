/**
 * What a Kommo provider can do, in a file of its own so the module (what the registry reads) and the provider
 * (what it builds) both read it without importing each other. The raw API is not a capability: kommo_request
 * is this module's own tool (raw-tool.ts).
 */
import type { Capability } from '../types.js';

/** The CrmModule kind, and the `kind` of every provider this wing builds. */
export const KOMMO_KIND = 'kommo';

/** A Kommo lead is the sales opportunity (no separate deals); leads, contacts and companies carry tags; the typed tools never delete. */
export const KOMMO_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  'leads',
  'contacts',
  'companies',
  'pipelines',
  'custom_fields',
  'users',
  'tags',
  'notes',
  'tasks',
  'calls',
  'bulk',
  'incoming',
  'history',
]);
