/**
 * A bulk import of leads, written once over the wing's create_lead steps (createLeadSteps: the same checks,
 * the same request shape) and its batched creates (BulkApi), with a journal (src/import/journal.ts) that makes it
 * resumable without duplicates:
 *
 * 1. Every row is checked first (create_lead's rules: a name, a valid phone and email, the CRM's own checks of
 *    stage, user, fields); a bad row is that row's `error` and is never sent.
 * 2. A batch left `pending` by an interrupted run (crash, timeout, lost answer) is resolved first: each of its
 *    rows' leads is looked for (made since the batch started) before anything is sent again.
 * 3. People are grouped across the rows (same phone or email): the first row of a person goes through the dedupe
 *    of create_lead (an open lead in the CRM → `existing`; only closed ones → a new lead linked to the contact);
 *    a later row of the same person is `existing`, pointing at the first row's lead, or (if_open_lead_exists:
 *    "create") a new lead linked to the same contact. Kommo's duplicate control never compares leads within one
 *    request, nor a contact attached by id: this is the only place they are compared.
 * 4. Batches of the CRM's size go out under the person locks of all their rows (one sorted, bounded take, the
 *    locks create_lead uses), lookups and creates inside; the batch is journalled as pending before it is sent
 *    and its outcomes are recorded before the next one.
 */
import { CrmError } from '../domain/errors.js';
import type { BulkApi, BulkOutcome, CallContext, LeadDraft, LeadPrimitives, NewLead, PlannedRequest } from '../crms/types.js';
import type { CompanyPrimitives } from '../crms/create-steps.js';
import { decideLeadDuplicate } from '../domain/dedupe.js';
import { splitName } from '../domain/names.js';
import { checkEmail, checkPhone, requireLeadName } from '../domain/validate.js';
import { personKeys, type PersonLock } from '../store/identity-lock.js';
import type { ImportJournal, ImportMeta, RowResult } from '../import/journal.js';
import type { ProgressListener } from '../import/jobs.js';
import { groupPeople, parseRow, type ImportCompany } from '../import/rows.js';
import { createCompany } from './create-company.js';

export interface ImportRun {
  steps: LeadPrimitives;
  bulk: BulkApi;
  /** The import's own context: the grant of the call that started it, no abort signal (it outlives the call). */
  ctx: CallContext;
  lock: PersonLock;
  journal: ImportJournal;
  progress?: ProgressListener;
  /** create_company's steps, for a row's company given with a phone or email (found or made as create_company does). */
  companies?: CompanyPrimitives;
}

/** A checked row, ready for the dedupe. */
interface Ready {
  row: number;
  known: Omit<NewLead<LeadDraft>, 'contactId' | 'companyId'>;
  keys: string[];
  /** The company as given, when it has a phone or email (then found or made like create_company). */
  company?: ImportCompany;
}

/** A row going out in the current batch. */
interface Sending {
  ready: Ready;
  lead: NewLead<LeadDraft>;
  request: unknown;
  note?: string;
}

/** Rows whose check failed for a reason of the row (not of the CRM being down, which stops the import). */
function rowError(e: unknown): string | undefined {
  if (e instanceof CrmError && !e.retryable && ['validation', 'not_found', 'conflict'].includes(e.code)) return e.message;
  return undefined;
}

async function check(p: LeadPrimitives, ctx: CallContext, row: number, raw: unknown, meta: ImportMeta, companies: boolean): Promise<Ready | string> {
  const parsed = parseRow(raw, meta.options.if_open_lead_exists);
  if ('error' in parsed) return parsed.error;
  const input = parsed.input;
  const company = parsed.company?.phone || parsed.company?.email ? parsed.company : undefined;
  if (company && !companies) return "company.phone/company.email: this connection cannot create companies; give the company's name only.";
  try {
    const contact = input.contact;
    const person = splitName(contact);
    const contactName = person.full || contact?.email || contact?.phone;
    const named = [contact?.first_name, contact?.last_name, contact?.name, contact?.email, contact?.phone].some((v) => v?.trim());
    const title = requireLeadName(input.name?.trim() || (named ? contactName : undefined));
    const draft = await p.prepare(ctx, input);
    const phone = checkPhone('contact.phone', contact?.phone, draft.country);
    checkEmail('contact.email', contact?.email);
    checkPhone('company.phone', company?.phone, draft.country);
    checkEmail('company.email', company?.email);
    return {
      row,
      known: { draft, input, title, contact, person, contactName, phone },
      keys: personKeys({ e164: phone?.e164, email: contact?.email }),
      ...(company ? { company } : {}),
    };
  } catch (e) {
    const why = rowError(e);
    if (why === undefined) throw e;
    return why;
  }
}

/** `request_id`s in a built request (Kommo's echo pairs answers with rows); none for a CRM without them. */
function requestIds(request: unknown): string[] {
  return [...JSON.stringify(request).matchAll(/"request_id":"([^"]+)"/g)].map((m) => m[1]!);
}

async function eachLimited<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function runImport(r: ImportRun): Promise<{ requests: PlannedRequest[] }> {
  const { steps: p, bulk, ctx, journal } = r;
  const meta = (await journal.meta())!;
  const raw = await journal.rows();
  const results = await journal.results();
  const dry = meta.options.dry_run;
  // run_automations false: every lead goes through the wing's automation-free path, never create_lead's send.
  const bulkOptions = meta.options.run_automations === false ? { runAutomations: false } : {};
  const planned: PlannedRequest[] = [];
  const report = () => r.progress?.({ done: Object.keys(results).length, total: meta.total });
  const ready = new Map<number, Ready>();
  // Every result with a lead or contact carries its page in the CRM, so a person can click through.
  const url = (entity: Parameters<BulkApi['bulkUrl']>[0], id: RowResult['lead_id']) => (id === null || id === undefined ? undefined : bulk.bulkUrl(entity, id));
  const set = (x: RowResult) =>
    (results[x.row] = {
      ...x,
      url: x.url ?? url(ready.get(x.row)?.known.draft.entity ?? 'lead', x.lead_id) ?? null,
      contact_url: x.contact_url ?? url('contact', x.contact_id) ?? null,
    });

  // 1. Check every row (also those done before a resume: their people still group the rows after them).
  for (let i = 0; i < raw.length; i++) {
    const c = await check(p, ctx, i + 1, raw[i], meta, r.companies !== undefined);
    if (typeof c === 'string') results[i + 1] ??= { row: i + 1, status: 'error', reason: c };
    else ready.set(i + 1, c);
  }
  if (!dry) await journal.setResults(results);
  report();

  // 2. A batch an interrupted run left pending: look for each row's lead before anything is sent again.
  const pending = dry ? undefined : await journal.pending();
  if (pending) {
    for (const n of pending.rows) {
      const rd = ready.get(n);
      if (results[n] || !rd) continue;
      const landed = await p.findJustCreated(ctx, { ...rd.known, contactId: undefined, companyId: undefined }, pending.started);
      if (landed)
        set({
          row: n,
          status: 'created',
          lead_id: landed.id,
          contact_id: landed.contact_ids[0] ?? null,
          company_id: landed.company?.id ?? null,
          reason: 'Created by the interrupted run (found before sending again).',
        });
    }
    await journal.setResults(results);
    await journal.setPending(null);
    report();
  }

  // 3. Rounds: each takes the first unresolved row of every person; a later row of a person waits for the earlier.
  const companies = new Map<string, Promise<number | undefined>>();
  const companyOf = (name: string) => {
    const key = name.trim().toLowerCase();
    if (!companies.has(key)) companies.set(key, p.findCompany(ctx, name));
    return companies.get(key)!;
  };
  // A company with a phone or email: create_company's rule (one with that phone/email, else one with that name,
  // else a new one with them), once per company per import, before the rows' person locks are taken.
  const withContacts = new Map<string, Promise<number | undefined>>();
  const companyFor = (c: ImportCompany): Promise<number | undefined> => {
    const key = [c.email?.trim().toLowerCase() ?? '', c.phone?.replace(/\D/g, '') ?? '', c.name.trim().toLowerCase()].join('|');
    if (!withContacts.has(key))
      withContacts.set(
        key,
        (async () => {
          const cp = r.companies!;
          const q = { email: c.email, phone: c.phone };
          const id = (await cp.findExisting(ctx, q))?.id ?? (await companyOf(c.name));
          if (id !== undefined) return Number(id);
          const made = await createCompany(cp, ctx, { name: c.name, phone: c.phone, email: c.email }, r.lock);
          if (made.requests) planned.push(...made.requests);
          return made.company ? Number(made.company.id) : undefined;
        })(),
      );
    return withContacts.get(key)!;
  };
  const groups = groupPeople([...ready.values()].map((x) => ({ row: x.row, keys: x.keys })));
  for (;;) {
    const todo: Array<{ ready: Ready; contactId?: number }> = [];
    for (const g of groups) {
      const at = g.findIndex((n) => !results[n]);
      if (at < 0) continue;
      const n = g[at]!;
      const first = g
        .slice(0, at)
        .map((x) => results[x]!)
        .find((x) => x.status !== 'error');
      if (first && meta.options.if_open_lead_exists === 'skip') {
        set({
          row: n,
          status: 'existing',
          lead_id: first.lead_id ?? null,
          contact_id: first.contact_id ?? null,
          reason: `Same person as row ${first.row} of this import (matched by phone or email): ${first.lead_id ? `its lead ${first.lead_id}` : 'the lead that row makes'}.`,
        });
        continue;
      }
      todo.push({ ready: ready.get(n)!, ...(first?.contact_id ? { contactId: Number(first.contact_id) } : {}) });
    }
    if (!todo.length) break;
    for (let i = 0; i < todo.length; i += bulk.bulkBatchSize) {
      await batch(todo.slice(i, i + bulk.bulkBatchSize));
      report();
    }
  }

  async function batch(all: Array<{ ready: Ready; contactId?: number }>): Promise<void> {
    const items: Array<{ ready: Ready; contactId?: number; companyId?: number }> = [];
    for (const t of all) {
      if (!t.ready.company) {
        items.push(t);
        continue;
      }
      try {
        items.push({ ...t, companyId: await companyFor(t.ready.company) });
      } catch (e) {
        const why = rowError(e);
        if (why === undefined) throw e;
        set({ row: t.ready.row, status: 'error', reason: `company: ${why}` });
      }
    }
    const keys = items.flatMap((t) => t.ready.keys);
    await r.lock(keys, async () => {
      const sends: Sending[] = [];
      // One batched pre-check where the CRM has one: the full look-up only for people it may already hold.
      const asked = items.filter((t) => t.contactId === undefined && t.ready.keys.length);
      const may = await bulk.bulkMayExist(
        ctx,
        asked.map((t) => ({ e164: t.ready.known.phone?.e164, email: t.ready.known.contact?.email })),
      );
      const unknown = new Set(asked.filter((_, i) => !may[i]).map((t) => t.ready.row));
      await eachLimited(items, 4, async ({ ready: rd, contactId: sameAs, companyId: given }) => {
        const { contact, input } = rd.known;
        let contactId = sameAs;
        let note = sameAs !== undefined ? `Same person as an earlier row of this import: linked to its contact ${sameAs}.` : undefined;
        if (sameAs === undefined && !unknown.has(rd.row) && (contact?.email || contact?.phone)) {
          const found = await p.searchByContact(ctx, { email: contact.email, phone: contact.phone });
          const d = decideLeadDuplicate(found, {
            entity: rd.known.draft.entity,
            ifOpenLeadExists: input.if_open_lead_exists,
            matchedBy: contact.email ? 'email' : 'phone',
          });
          if (d.kind === 'return') {
            set({
              row: rd.row,
              status: 'existing',
              lead_id: d.lead.id,
              url: d.lead.url,
              contact_id: d.contactId,
              company_id: d.lead.company?.id ?? null,
              reason: d.reason,
            });
            return;
          }
          if (d.contactId !== undefined) contactId = Number(d.contactId);
          note = d.note;
        }
        const companyId = given ?? (input.company?.name ? await companyOf(input.company.name) : undefined);
        const lead: NewLead<LeadDraft> = { ...rd.known, contactId, companyId };
        sends.push({ ready: rd, lead, request: p.build(lead), ...(note ? { note } : {}) });
      });
      if (!sends.length) return;
      sends.sort((a, b) => a.ready.row - b.ready.row);
      meta.batches++;
      if (dry) {
        planned.push(
          ...bulk.bulkPlan(
            sends.map((s) => s.request),
            bulkOptions,
          ),
        );
        for (const s of sends)
          set({
            row: s.ready.row,
            status: 'would_create',
            contact_id: s.lead.contactId ?? null,
            company_id: s.lead.companyId ?? null,
            ...(s.note ? { reason: s.note } : {}),
          });
        return;
      }
      const started = Date.now();
      await journal.setPending({ rows: sends.map((s) => s.ready.row), request_ids: sends.flatMap((s) => requestIds(s.request)), started });
      const outcomes = await send(sends, started);
      outcomes.forEach((o, i) => {
        const s = sends[i]!;
        if (!o.ok) return set({ row: s.ready.row, status: 'error', reason: o.message });
        if (o.company_id !== null && s.lead.input.company?.name)
          companies.set(s.lead.input.company.name.trim().toLowerCase(), Promise.resolve(Number(o.company_id)));
        set({ row: s.ready.row, status: 'created', lead_id: o.id, contact_id: o.contact_id, company_id: o.company_id, ...(s.note ? { reason: s.note } : {}) });
      });
      await journal.setResults(results);
      await journal.setPending(null);
      await journal.setMeta({ ...meta, state: 'running' });
    });
  }

  /** The batch; after a lost answer each lead is looked for before it is sent again, alone. */
  async function send(sends: Sending[], started: number): Promise<BulkOutcome[]> {
    try {
      return await bulk.bulkCreateLeads(
        ctx,
        sends.map((s) => s.request),
        bulkOptions,
      );
    } catch (e) {
      if (!(e instanceof CrmError) || (e.retryable && !e.ambiguous)) throw e;
      if (bulkOptions.runAutomations === false) return withoutAutomations(sends, started, e);
      // Lost answer: look first. Refused as a whole (one item the CRM would not take): each row alone, so a bad
      // row fails only itself; what the batch already made is on the requests (never made twice).
      const out: BulkOutcome[] = [];
      for (const s of sends) out.push(await alone(s, started, e.ambiguous));
      return out;
    }
  }

  /**
   * A lost answer without automations: each lead is looked for, and what is not found is sent again through the
   * same path (create_lead's own send would run the automations). A refusal of the whole call (no import
   * permission) is no row's fault: it stops the import, which says why.
   */
  async function withoutAutomations(sends: Sending[], started: number, e: CrmError): Promise<BulkOutcome[]> {
    if (!e.ambiguous) throw e;
    const out = new Map<Sending, BulkOutcome>();
    for (const s of sends) {
      const found = await p.findJustCreated(ctx, s.lead, started);
      if (found) out.set(s, { ok: true, id: found.id, contact_id: found.contact_ids[0] ?? null, company_id: found.company?.id ?? null });
    }
    const again = sends.filter((s) => !out.has(s));
    if (again.length)
      (
        await bulk.bulkCreateLeads(
          ctx,
          again.map((s) => s.request),
          bulkOptions,
        )
      ).forEach((o, i) => out.set(again[i]!, o));
    return sends.map((s) => out.get(s)!);
  }

  async function alone(s: Sending, started: number, look: boolean): Promise<BulkOutcome> {
    const found = look ? await p.findJustCreated(ctx, s.lead, started) : undefined;
    if (found) return { ok: true, id: found.id, contact_id: found.contact_ids[0] ?? null, company_id: found.company?.id ?? null };
    try {
      const sent = await p.send(ctx, s.request);
      return { ok: true, id: sent.id, contact_id: sent.contact_id, company_id: sent.company_id };
    } catch (e) {
      if (!(e instanceof CrmError)) throw e;
      // Lost again: stop here; the batch stays pending and the resume looks for the lead first.
      if (e.ambiguous || e.retryable) throw e;
      return { ok: false, message: e.message };
    }
  }

  await journal.setResults(results);
  await journal.setMeta({ ...meta, state: 'done' });
  return { requests: planned };
}
