/**
 * The duplicate rule both CRMs share: what counts as "this person already has a lead". Only an open lead of
 * the requested kind does (a returning customer whose leads are all won or lost gets a new lead, linked to
 * the existing contact), and the caller can ask for a new lead even then.
 */
import type { Id, Lead, SearchResult } from './records.js';

export type IfOpenLeadExists = 'return' | 'create';

export type DuplicateDecision =
  { kind: 'return'; lead: Lead; contactId: Id | null; reason: string } | { kind: 'create'; contactId: Id | undefined; note?: string };

/** A lead is open unless its stage says won or lost (an unknown stage counts as open: better no copy). */
export function isOpen(lead: Lead): boolean {
  return lead.stage?.type !== 'won' && lead.stage?.type !== 'lost';
}

export function decideLeadDuplicate(
  found: SearchResult,
  o: { entity?: 'lead' | 'deal'; ifOpenLeadExists?: IfOpenLeadExists; matchedBy: 'email' | 'phone' },
): DuplicateDecision {
  const contactId = found.contacts[0]?.id;
  const sameKind = found.leads.filter((l) => !o.entity || l.entity === o.entity);
  const open = sameKind.find(isOpen);
  const what = o.entity === 'deal' ? 'deal' : 'lead';
  if (open && (o.ifOpenLeadExists ?? 'return') === 'return') {
    // The open lead's own contact, if the search found it, else the first contact found.
    const own = found.contacts.find((c) => open.contact_ids.some((id) => String(id) === String(c.id)))?.id ?? contactId ?? null;
    return {
      kind: 'return',
      lead: open,
      contactId: own,
      reason: `An open ${what} for this contact already exists (matched by ${o.matchedBy}): returning it instead of creating a duplicate. Pass if_open_lead_exists: "create" to add another.`,
    };
  }
  const note =
    contactId === undefined
      ? undefined
      : open
        ? `Created another ${what} as asked, linked to the existing contact ${contactId}.`
        : sameKind.length
          ? `The contact's earlier ${what}s are closed: created a new ${what}, linked to the existing contact ${contactId}.`
          : `Linked the new ${what} to the existing contact ${contactId}.`;
  return { kind: 'create', contactId, note };
}

/** Search results in the order an agent wants them: open leads first, then the most recently updated. */
export function byOpenThenRecent(a: Lead, b: Lead): number {
  const closed = (l: Lead) => (isOpen(l) ? 0 : 1);
  return closed(a) - closed(b) || (b.updated_at ?? '').localeCompare(a.updated_at ?? '');
}
