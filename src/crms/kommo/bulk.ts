/**
 * Kommo batched lead creates for a bulk import (capabilities.ts BulkApi). Not `POST /api/v4/leads/complex`:
 * with the account's duplicate control on (an integration setting the API does not show, §5.5) it merges a
 * lead into a contact's existing open lead, and it never compares leads within one request. The import's own
 * dedupe runs first (services/import-leads.ts), then plain batched creates, which never merge: the new
 * companies (`POST /api/v4/companies`), the new contacts (`POST /api/v4/contacts`, linked to their company),
 * then the leads (`POST /api/v4/leads`) linked by id to existing or just-made contacts and companies. One
 * request holds at most 50 (250 is the hard cap, 50 the recommended size, §3). Each item carries a
 * `request_id`, echoed in the answer, which pairs answers with rows.
 */
import { CrmError } from '../../domain/errors.js';
import type { BulkApi, BulkOutcome, CallContext, PlannedRequest } from '../types.js';
import type { KommoParts } from './metadata.js';
import { withLinks, type LeadPlan } from './leads.js';
import { findCompany, searchContacts } from './search.js';
import { detailUrl, webOf } from './map.js';

/** The recommended batch size of Kommo's batch writes (§3). */
export const KOMMO_BULK_SIZE = 50;

/** The ids a batch create answered, by the `request_id` each item carried (§5.3: echoed unchanged). */
function idsByRequest(data: unknown, key: string): Map<string, number> {
  const out = new Map<string, number>();
  const list = (data as { _embedded?: Record<string, unknown> } | undefined)?._embedded?.[key];
  if (Array.isArray(list))
    for (const x of list as Array<{ id?: unknown; request_id?: unknown }>) if (typeof x.id === 'number') out.set(String(x.request_id), x.id);
  return out;
}

const rid = (body: Record<string, unknown>): string => String(body.request_id);

/**
 * One batched create of prerequisites (companies or contacts). A lost answer: each item is looked up (by name,
 * or phone/email); what is found is taken, what is not is sent once more; an item that cannot be looked up is
 * not resent (it may exist) and its rows fail with that said.
 */
async function prerequisites(
  k: KommoParts,
  ctx: CallContext,
  entity: 'companies' | 'contacts',
  items: Array<{ body: Record<string, unknown>; lookup?: () => Promise<number | undefined>; set: (id: number) => void; fail: (m: string) => void }>,
): Promise<void> {
  if (!items.length) return;
  const send = async (list: typeof items) => {
    const ids = idsByRequest(await k.api.call<unknown>(ctx, 'POST', `/api/v4/${entity}`, { body: list.map((i) => i.body), op: 'create' }), entity);
    for (const i of list) {
      const id = ids.get(rid(i.body));
      if (id !== undefined) i.set(id);
      else i.fail(`Kommo accepted the ${entity} but returned no id for it.`);
    }
  };
  try {
    await send(items);
  } catch (e) {
    if (!(e instanceof CrmError && e.ambiguous)) throw e;
    const again: typeof items = [];
    for (const i of items) {
      const found = i.lookup ? await i.lookup() : undefined;
      if (found !== undefined) i.set(found);
      else if (i.lookup) again.push(i);
      else i.fail(`The answer to the ${entity} create was lost and it cannot be looked up: it may exist; not sent again.`);
    }
    try {
      await send(again);
    } catch (e2) {
      if (!(e2 instanceof CrmError && e2.ambiguous)) throw e2;
      for (const i of again) i.fail(`${e2.message} The new record may exist; the lead was not created.`);
    }
  }
}

async function createLeads(k: KommoParts, ctx: CallContext, plans: LeadPlan[]): Promise<BulkOutcome[]> {
  const failed = new Map<LeadPlan, string>();
  // Companies: one create per distinct new name in the batch (two rows naming one new company share it).
  const byName = new Map<string, LeadPlan[]>();
  for (const p of plans) {
    if (!p.company || p.companyId !== undefined) continue;
    const key = p.company.name.trim().toLowerCase();
    byName.set(key, [...(byName.get(key) ?? []), p]);
  }
  await prerequisites(
    k,
    ctx,
    'companies',
    [...byName.values()].map((group) => ({
      body: group[0]!.company!.body,
      lookup: () => findCompany(k, ctx, group[0]!.company!.name),
      set: (id) => group.forEach((p) => (p.companyId = id)),
      fail: (m) => group.forEach((p) => failed.set(p, m)),
    })),
  );
  await prerequisites(
    k,
    ctx,
    'contacts',
    plans
      .filter((p) => p.contact && p.contactId === undefined && !failed.has(p))
      .map((p) => {
        const { email, phone } = p.contact!;
        return {
          body: { ...p.contact!.body, ...(p.companyId !== undefined ? { _embedded: { companies: [{ id: p.companyId }] } } : {}) },
          lookup: email || phone ? async () => (await searchContacts(k, ctx, { email, phone })).contacts[0]?.id : undefined,
          set: (id: number) => (p.contactId = id),
          fail: (m: string) => failed.set(p, m),
        };
      }),
  );
  const ready = plans.filter((p) => !failed.has(p));
  // A lost answer here is the caller's to resolve (it looks for each lead before sending again).
  const ids = ready.length
    ? idsByRequest(
        await k.api.call<unknown>(ctx, 'POST', '/api/v4/leads', { body: ready.map((p) => withLinks(p.lead, p.contactId, p.companyId)), op: 'create' }),
        'leads',
      )
    : new Map<string, number>();
  return plans.map((p): BulkOutcome => {
    const why = failed.get(p);
    if (why) return { ok: false, message: why };
    const id = ids.get(rid(p.lead));
    return id === undefined
      ? { ok: false, message: 'Kommo accepted the batch but returned no id for this lead.' }
      : { ok: true, id, contact_id: p.contactId ?? null, company_id: p.companyId ?? null };
  });
}

function plan(k: KommoParts, plans: LeadPlan[]): PlannedRequest[] {
  const out: PlannedRequest[] = [];
  const companies = plans.filter((p) => p.company && p.companyId === undefined).map((p) => p.company!.body);
  const contacts = plans.filter((p) => p.contact && p.contactId === undefined).map((p) => p.contact!.body);
  if (companies.length) out.push(k.api.plan('POST', '/api/v4/companies', companies));
  if (contacts.length) out.push(k.api.plan('POST', '/api/v4/contacts', contacts));
  out.push(
    k.api.plan(
      'POST',
      '/api/v4/leads',
      plans.map((p) =>
        withLinks(
          p.lead,
          p.contactId ?? (p.contact ? '<id of the new contact>' : undefined),
          p.companyId ?? (p.company ? '<id of the new company>' : undefined),
        ),
      ),
    ),
  );
  return out;
}

/** The bulk group of a Kommo provider. */
export function kommoBulk(k: KommoParts): BulkApi {
  return {
    bulkBatchSize: KOMMO_BULK_SIZE,
    // Kommo's API has no switch that keeps a new lead from its pipeline's automations (digital pipeline, bots).
    bulkCanSkipAutomations: false,
    bulkCreateLeads: (ctx, requests) => createLeads(k, ctx, requests as LeadPlan[]),
    bulkPlan: (requests) => plan(k, requests as LeadPlan[]),
    // Kommo's search takes one text per request (§6): no batched pre-check, every person is looked up.
    bulkMayExist: async (_ctx, people) => people.map(() => true),
    bulkUrl: (entity, id) => detailUrl(webOf(k.api.baseUrl), entity === 'contact' ? 'contacts' : entity === 'company' ? 'companies' : 'leads', id),
  };
}
