/**
 * The portal's automation rules and workflows, as far as the emulator shows them: which new leads and deals
 * started them. A plain `crm.lead.add` / `crm.deal.add` (also inside `batch`) does; `crm.item.batchImport`
 * does not (§7.9; calls/bulk fact sheet 3.4), so a test can tell an import that skipped them.
 */
import type { EntityKind } from './schema.js';
import type { BitrixState } from './state.js';

export interface Automations {
  runs: Array<{ entity: EntityKind; id: number }>;
}

const automations = new WeakMap<BitrixState, Automations>();

export function automationsOf(s: BitrixState): Automations {
  let a = automations.get(s);
  if (!a) automations.set(s, (a = { runs: [] }));
  return a;
}
