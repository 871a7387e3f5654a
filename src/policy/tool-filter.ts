/**
 * Which tools a server lists: toolsets first (CRM_TOOLSETS), then names (CRM_TOOLS / CRM_EXCLUDE_TOOLS). Pure.
 *
 * Toolsets keep what the model reads small however many tools exist (github-mcp-server's toolsets): the
 * default set is the everyday CRM work; the rest are turned on by name. An explicit CRM_TOOLS list names
 * tools directly and wins over toolsets; CRM_EXCLUDE_TOOLS always removes.
 */
export interface ToolFilter {
  include?: string[];
  exclude?: string[];
  /** Enabled toolsets; undefined means every toolset (servers built in code, tests). */
  toolsets?: string[];
}

export function toolSelected(name: string, filter: ToolFilter, toolset?: string): boolean {
  if (filter.exclude?.includes(name)) return false;
  if (filter.include && filter.include.length > 0) return filter.include.includes(name);
  if (filter.toolsets && toolset !== undefined && !filter.toolsets.includes(toolset)) return false;
  return true;
}
