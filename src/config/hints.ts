/**
 * doctor's fix for each configuration problem: a CRM wing's advice for its own settings first (its module's
 * `connection.fix`), then advice for a particular message, then the variable's own hint from the env table,
 * then one generated from its type (true/false, the range of a number, the choices, an https address). Pure;
 * test/env-table.test.ts provokes a problem with every variable and checks that none is left with the catch-all.
 */
import { defaultRegistry } from '../crms/registry.js';
import { ENV_TABLE, envVar, type EnvVar } from './env-table.js';

/** The fix when nothing better is known. */
export const GENERIC_FIX = 'Correct the setting named above (see README → Configuration).';

/** What a problem is about: `NAME: …` (a variable), or `file.json: [connections.x: ]key: …` (a config file key). */
function subject(p: string): { v: EnvVar; label: string } | undefined {
  const name = /^([A-Z][A-Z0-9_]+)\b/.exec(p)?.[1];
  if (name) {
    const v = envVar(name);
    return v ? { v, label: name } : undefined;
  }
  const key = /^.+?: (?:connections\.[^:.]+[:.] ?)?([a-z_]+(?:\.[a-z_]+)?):/.exec(p)?.[1];
  const v = key ? ENV_TABLE.find((x) => x.fileKey === key) : undefined;
  return v && key ? { v, label: key } : undefined;
}

/** The generic fix for a malformed value, from the variable's type. */
export function typeHint(v: EnvVar, label = v.name): string {
  const orDefault = v.default !== undefined ? ` (or remove it to get the default: ${v.default})` : '';
  switch (v.type) {
    case 'boolean':
      return `Set ${label} to true or false${orDefault}.`;
    case 'int':
      return `Set ${label} to a whole number from ${v.min} to ${v.max}${orDefault}.`;
    case 'enum':
      return `Set ${label} to ${v.choices.length === 1 ? v.choices[0] : `one of ${v.choices.join(', ')}`}${orDefault}.`;
    case 'url':
      return `Set ${label} to an https:// address without a user name or password (plain http only for 127.0.0.1/localhost).`;
    default:
      return `Correct ${label}: ${v.description.replace(/`/g, '')} (see README → Configuration).`;
  }
}

export function configFix(p: string): string {
  const s = subject(p);
  const label = s?.label ?? 'the setting named above';
  // A CRM's own advice first (its wing knows its settings), then the generic rules.
  for (const m of defaultRegistry.modules()) {
    const fix = m.connection.fix?.(p, s?.v, label);
    if (fix !== undefined) return fix;
  }
  if (s && /is not a boolean|is not a whole number|out of range/.test(p)) return typeHint(s.v, s.label);
  if (/must use https/.test(p)) return `Use the https:// address of the account in ${label}.`;
  if (/No CRM configured/.test(p))
    return `Set ${defaultRegistry
      .modules()
      .map((m) => m.connection.setup)
      .join(', or ')}, or pass --config FILE (see README → Configuration).`;
  if (/: set only one/.test(p)) return `Keep one of ${p.slice(0, p.indexOf(': set only one'))} and remove the others.`;
  if (/required/.test(p)) return `Set the variables named above (see README → Configuration).`;
  if (s) return s.v.hint ?? typeHint(s.v, s.label);
  if (/--config/.test(p)) return 'Fix the config file at the path and key named above (see README → Configuration).';
  return GENERIC_FIX;
}
