/** CRM_TOOLS / CRM_EXCLUDE_TOOLS: narrowing the tool list by name. Pure. */
export interface ToolFilter {
  include?: string[];
  exclude?: string[];
}

export function toolSelected(name: string, filter: ToolFilter): boolean {
  if (filter.include && filter.include.length > 0 && !filter.include.includes(name)) return false;
  if (filter.exclude?.includes(name)) return false;
  return true;
}
