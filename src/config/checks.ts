/**
 * Checks of a configuration beyond its syntax: tool names that do not exist (errors), and settings that are
 * valid but do nothing (warnings). Pure; the names come from the tool registry.
 */
import { ALL_TOOLS } from '../crms/registry.js';
import type { ConnectionBase } from '../crms/contract.js';

/** A misspelt tool name would silently drop (or keep) a tool: refuse it, listing the names that exist. */
export function checkToolNames(source: string, names: string[] | undefined, problems: string[]): void {
  if (!names?.length) return;
  const known = ALL_TOOLS.map((t) => t.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    problems.push(`${source}: unknown tool name${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')}; the tools are ${known.join(', ')}`);
  }
}

/**
 * Settings that are valid but do nothing, so the operator probably meant something else (e.g.
 * CRM_ALLOW_DELETE=true while the server is read-only). Not errors: they never widen access. `serve` logs
 * them at start and `doctor` reports them as warnings.
 */
export function configWarnings(config: { connections: readonly ConnectionBase[] }): string[] {
  const groups = new Map<string, string[]>();
  const add = (message: string, connection: string) => groups.set(message, [...(groups.get(message) ?? []), connection]);
  for (const c of config.connections) {
    const f = c.policy;
    if (f.allowDelete && !f.allowWrites)
      add('CRM_ALLOW_DELETE=true has no effect without CRM_ALLOW_WRITES=true (and CRM_SAFE_MODE=false): deletes stay off', c.name);
    else if (f.allowDelete && f.safeMode)
      add('CRM_ALLOW_DELETE=true has no effect while safe mode is on (set CRM_SAFE_MODE=false too): deletes stay off', c.name);
    if (!f.safeMode && !f.allowWrites) add('CRM_SAFE_MODE=false has no effect without CRM_ALLOW_WRITES=true: the server stays read-only', c.name);
    if (f.allowAdmin && (!f.allowWrites || f.safeMode))
      add('CRM_ALLOW_ADMIN=true has no effect without CRM_ALLOW_WRITES=true and CRM_SAFE_MODE=false: admin operations stay off', c.name);
    if (f.safeUpdates?.length && (!f.allowWrites || !f.safeMode))
      add(
        `CRM_SAFE_UPDATES has no effect ${f.allowWrites ? 'while safe mode is off: every update is allowed already' : 'without CRM_ALLOW_WRITES=true: the server stays read-only'}`,
        c.name,
      );
  }
  return [...groups].map(([message, names]) => `${message} (connection${names.length > 1 ? 's' : ''} ${names.join(', ')})`);
}
