/**
 * The toolsets: every tool belongs to one. The default toolsets are what a fresh install lists; the others
 * are turned on with CRM_TOOLSETS (comma list, or `all`). New groups (import, events, analytics, calls) get
 * their own toolset, off by default, so the default tool list stays within its context budget.
 */
export interface ToolsetDef {
  name: string;
  description: string;
  /** Listed on a fresh install. */
  default: boolean;
}

export const TOOLSETS = [
  { name: 'core', description: 'leads/deals, contacts, companies, pipelines: search, read, create, update (and delete where allowed)', default: true },
  { name: 'activity', description: 'notes and tasks on records', default: true },
  { name: 'followup', description: "a record's notes, task lists (today's, overdue) and completing tasks", default: false },
  { name: 'metadata', description: 'custom field definitions, users, tags', default: false },
  { name: 'audit', description: 'the audit log of write decisions', default: false },
  { name: 'companies', description: 'companies on their own: create, update, link a contact to a company', default: false },
  { name: 'calls', description: 'logging phone calls against the person who has the number', default: false },
  { name: 'incoming', description: 'incoming (unsorted) leads: list, accept, decline', default: false },
  { name: 'import', description: 'bulk import of leads with a resumable journal', default: false },
  { name: 'events', description: "what changed in the CRM (the change feed from its webhooks and offline events) and a record's history", default: false },
  { name: 'raw', description: 'raw API requests (kommo_request, bitrix_call) for what the typed tools do not cover', default: false },
] as const satisfies readonly ToolsetDef[];

export type Toolset = (typeof TOOLSETS)[number]['name'];

export const TOOLSET_NAMES: readonly string[] = TOOLSETS.map((t) => t.name);
export const DEFAULT_TOOLSETS: string[] = TOOLSETS.filter((t) => t.default).map((t) => t.name);

/** CRM_TOOLSETS → the enabled toolsets; `all` enables every one. Unknown names are reported by the caller. */
export function parseToolsets(raw: string[] | undefined): { toolsets: string[]; unknown: string[] } {
  if (!raw || raw.length === 0) return { toolsets: [...DEFAULT_TOOLSETS], unknown: [] };
  if (raw.includes('all')) return { toolsets: [...TOOLSET_NAMES], unknown: raw.filter((n) => n !== 'all' && !TOOLSET_NAMES.includes(n)) };
  return { toolsets: raw.filter((n) => TOOLSET_NAMES.includes(n)), unknown: raw.filter((n) => !TOOLSET_NAMES.includes(n)) };
}
