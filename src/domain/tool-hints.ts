/**
 * How an error points at another tool. A tool outside the default toolsets is not listed on a fresh install,
 * so "call list_users" alone sends the agent after a tool it does not have: the pointer also names the
 * toolset and the setting that lists it. The domain does not import the tool registry (src/tools/), so the
 * words live here as data; test/unit/tool-hints.test.ts checks them against tools/toolsets.ts and the tools.
 */

/** The toolsets a fresh install lists (tools/toolsets.ts `DEFAULT_TOOLSETS`). */
export const DEFAULT_TOOLSET_NAMES: readonly string[] = ['core', 'activity'];

/** The setting that lists more toolsets (config/env-server.ts). */
const SETTING = 'CRM_TOOLSETS';

/** The CRM-neutral tools the domain's and the wings' messages point at that are off by default, by toolset. */
export const OFF_BY_DEFAULT: Readonly<Record<string, string>> = {
  list_users: 'metadata',
  get_custom_fields: 'metadata',
  list_tags: 'metadata',
  get_audit_log: 'audit',
};

/**
 * `list_users (toolset metadata: add it to CRM_TOOLSETS, e.g. CRM_TOOLSETS=core,activity,metadata)`, or the
 * bare name for a tool listed by default. A wing names its own tools' toolset (`toolRef('…_request', 'raw')`).
 */
export function toolRef(name: string, toolset: string | undefined = OFF_BY_DEFAULT[name]): string {
  if (!toolset || DEFAULT_TOOLSET_NAMES.includes(toolset)) return name;
  return `${name} (toolset ${toolset}: add it to ${SETTING}, e.g. ${SETTING}=${[...DEFAULT_TOOLSET_NAMES, toolset].join(',')})`;
}
