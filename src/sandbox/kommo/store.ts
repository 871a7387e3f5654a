/** State helpers shared by the seeders and the handlers: events, closest tasks, derived relations. */
import type { EntityType, KEvent, KommoState } from './types.js';

const SINGULAR: Record<EntityType | 'tasks', KEvent['entity_type']> = { leads: 'lead', contacts: 'contact', companies: 'company', tasks: 'task' };

/** §9: appends an event (ids are opaque strings on the real API). */
export function recordEvent(
  s: KommoState,
  type: string,
  entity: EntityType | 'tasks',
  entityId: number,
  by: number,
  at: number,
  after: unknown[] = [],
  before: unknown[] = [],
): void {
  const n = s.nextId.event++;
  s.events.push({
    id: `01${n.toString(36).padStart(22, '0')}`,
    type,
    entity_id: entityId,
    entity_type: SINGULAR[entity],
    created_by: by,
    created_at: at,
    value_after: after,
    value_before: before,
    account_id: s.account.id,
  });
}

/** Keeps `closest_task_at` (the nearest open task's deadline) in step with the tasks. */
export function refreshClosestTask(s: KommoState, entity: EntityType, id: number): void {
  const rec = entity === 'leads' ? s.leads.get(id) : entity === 'contacts' ? s.contacts.get(id) : s.companies.get(id);
  if (!rec) return;
  let best: number | null = null;
  for (const t of s.tasks.values()) {
    if (t.entity_type === entity && t.entity_id === id && !t.is_completed && (best === null || t.complete_till < best)) best = t.complete_till;
  }
  rec.closest_task_at = best;
}

/** Leads linked to a contact or company (the reverse of `lead._embedded.contacts/companies`). */
export function leadsOf(s: KommoState, entity: 'contacts' | 'companies', id: number): number[] {
  const out: number[] = [];
  for (const l of s.leads.values()) {
    const refs = entity === 'contacts' ? l._embedded.contacts : l._embedded.companies;
    if (refs.some((r) => r.id === id)) out.push(l.id);
  }
  return out;
}

/** Contacts of a company (the reverse of `contact._embedded.companies`). */
export function contactsOf(s: KommoState, companyId: number): number[] {
  const out: number[] = [];
  for (const c of s.contacts.values()) if (c._embedded.companies.some((r) => r.id === companyId)) out.push(c.id);
  return out;
}

export const nowSec = () => Math.floor(Date.now() / 1000);
