/**
 * Bitrix24 batched lead creates for a bulk import (capabilities.ts BulkApi): the commands create_lead builds
 * for one lead (company add, contact add, then the lead or deal add referencing them as `$result[…]`, §4.2),
 * renamed per row and packed into one `batch` of at most 50 commands, `halt: 0` so one refused row does not stop
 * the others. Plain `crm.*.add` inside `batch` fires the portal's robots and workflows, as create_lead does.
 * With run_automations false the new companies and contacts still go in a `batch`, and the leads or deals by
 * `crm.item.batchImport` (§7.9: ≤ 20 a call, automations skipped, the import permission needed).
 */
import { CrmError } from '../../domain/errors.js';
import type { BulkApi, BulkOptions, BulkOutcome, CallContext, PlannedRequest } from '../types.js';
import { bitrixError } from './adapter.js';
import { commCommands } from './duplicates.js';
import { recordUrl } from './map.js';
import type { LeadBatch } from './leads.js';
import type { BitrixParts } from './metadata.js';

/** A positive integer id from a batch result, else undefined. */
function idOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** Commands in one `batch` (§4.2). */
const BATCH_MAX = 50;
/** At most three commands a row (company, contact, lead): 16 rows always fit one batch. */
export const BITRIX_BULK_SIZE = 16;

/** One row's commands under its own keys, its references renamed to them. */
function rowCommands(r: LeadBatch, i: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(r.cmd)) {
    out[`r${i}_${key}`] = v.replaceAll('$result[company]', `$result[r${i}_company]`).replaceAll('$result[contact]', `$result[r${i}_contact]`);
  }
  return out;
}

/** Rows packed in order into batches of at most 50 commands. */
function pack(rows: LeadBatch[]): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let n = 0;
  rows.forEach((r, i) => {
    const c = Object.keys(r.cmd).length;
    if (n + c > BATCH_MAX && cur.length) {
      out.push(cur);
      cur = [];
      n = 0;
    }
    cur.push(i);
    n += c;
  });
  if (cur.length) out.push(cur);
  return out;
}

async function createLeads(b: BitrixParts, ctx: CallContext, rows: LeadBatch[]): Promise<BulkOutcome[]> {
  const out: BulkOutcome[] = [];
  for (const group of pack(rows)) {
    const cmd: Record<string, string> = {};
    for (const i of group) Object.assign(cmd, rowCommands(rows[i]!, i));
    // A lost answer throws (ambiguous): the caller looks for each lead before sending again.
    const res = await b.api.batch(ctx, cmd, false);
    for (const i of group) {
      const r = rows[i]!;
      // What this row already made stays made: a resend of the row links it instead of making it again.
      const company = idOf(res.result[`r${i}_company`]);
      const contact = idOf(res.result[`r${i}_contact`]);
      for (const [key, id] of [
        ['company', company],
        ['contact', contact],
      ] as const) {
        if (id === undefined) continue;
        if (key === 'company') r.companyId = id;
        else r.contactId = id;
        delete r.cmd[key];
        for (const k of Object.keys(r.cmd)) r.cmd[k] = r.cmd[k]!.replaceAll(`$result[${key}]`, String(id));
      }
      const errKey = ['company', 'contact', 'item'].map((k) => `r${i}_${k}`).find((k) => res.errors[k]);
      const item = idOf(res.result[`r${i}_item`]);
      if (errKey || item === undefined) {
        const err = errKey ? res.errors[errKey]! : { error: 'error', error_description: 'no id in the answer' };
        const e = bitrixError(err.error, err.error_description, 400);
        out[i] = { ok: false, message: `Bitrix24 refused the ${errKey?.split('_')[1] === 'item' || !errKey ? r.entity : errKey.split('_')[1]}: ${e.message}` };
      } else out[i] = { ok: true, id: item, contact_id: r.contactId ?? null, company_id: r.companyId ?? null };
    }
  }
  return out;
}

/** §7.9: at most 20 items per `crm.item.batchImport`. */
const IMPORT_MAX = 20;

const camel = (k: string) => k.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The lead's or deal's fields as `crm.item.*` names, references replaced by the ids made; custom fields as they are. */
function itemFields(r: LeadBatch): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r.fields)) {
    const value = k === 'CONTACT_ID' ? r.contactId : k === 'COMPANY_ID' ? r.companyId : v;
    if (value !== undefined) out[k.startsWith('UF_CRM_') ? k : camel(k)] = value;
  }
  return out;
}

const importParams = (entity: 'lead' | 'deal', rows: LeadBatch[]) => ({
  entityTypeId: entity === 'lead' ? 1 : 2,
  useOriginalUfNames: 'Y',
  data: rows.map(itemFields),
});

/** Rows without their lead/deal command: the companies and contacts a `batch` makes first. */
const prerequisites = (rows: LeadBatch[]): LeadBatch[] =>
  rows.map((r) => ({ ...r, cmd: Object.fromEntries(Object.entries(r.cmd).filter(([k]) => k !== 'item')) }));

/** run_automations false: companies and contacts in `batch`, then the leads or deals by crm.item.batchImport. */
async function importLeads(b: BitrixParts, ctx: CallContext, rows: LeadBatch[]): Promise<BulkOutcome[]> {
  const out: Array<BulkOutcome | undefined> = rows.map(() => undefined);
  const pre = prerequisites(rows);
  for (const group of pack(pre)) {
    const cmd: Record<string, string> = {};
    for (const i of group) Object.assign(cmd, rowCommands(pre[i]!, i));
    if (!Object.keys(cmd).length) continue;
    const res = await b.api.batch(ctx, cmd, false);
    for (const i of group) {
      const r = rows[i]!;
      const company = idOf(res.result[`r${i}_company`]);
      const contact = idOf(res.result[`r${i}_contact`]);
      // What is made stays made: a resend links it instead of making it again.
      if (company !== undefined) {
        r.companyId = company;
        delete r.cmd.company;
      }
      if (contact !== undefined) {
        r.contactId = contact;
        delete r.cmd.contact;
      }
      const errKey = ['company', 'contact'].map((k) => `r${i}_${k}`).find((k) => res.errors[k]);
      if (errKey)
        out[i] = {
          ok: false,
          message: `Bitrix24 refused the ${errKey.split('_')[1]}: ${bitrixError(res.errors[errKey]!.error, res.errors[errKey]!.error_description, 400).message}`,
        };
    }
  }
  for (const entity of ['lead', 'deal'] as const) {
    const todo = rows.map((_, i) => i).filter((i) => !out[i] && rows[i]!.entity === entity);
    for (let k = 0; k < todo.length; k += IMPORT_MAX) {
      const part = todo.slice(k, k + IMPORT_MAX);
      let answer: unknown;
      try {
        answer = (
          await b.api.call<unknown>(
            ctx,
            'crm.item.batchImport',
            importParams(
              entity,
              part.map((i) => rows[i]!),
            ),
            'create',
          )
        ).result;
      } catch (e) {
        if (e instanceof CrmError && !e.ambiguous && e.code === 'forbidden')
          throw new CrmError({
            code: 'forbidden',
            message: `${e.message} run_automations: false imports through crm.item.batchImport, which needs the CRM "import" access permission for ${entity}s (Bitrix24 → CRM → Settings → Access permissions). Nothing of this batch was imported; give the permission, or import with run_automations: true (the portal's automations then run).`,
          });
        throw e;
      }
      const items = (answer as { items?: unknown[] } | undefined)?.items ?? [];
      part.forEach((i, j) => {
        const it = items[j] as { item?: { id?: unknown }; error?: string; error_description?: string } | undefined;
        const id = idOf(it?.item?.id);
        const r = rows[i]!;
        out[i] =
          id !== undefined
            ? { ok: true, id, contact_id: r.contactId ?? null, company_id: r.companyId ?? null }
            : {
                ok: false,
                message: `Bitrix24 refused the ${entity}: ${bitrixError(it?.error ?? 'error', it?.error_description ?? 'no id in the answer', 400).message}`,
              };
      });
    }
  }
  return out.map((o) => o ?? { ok: false, message: 'Bitrix24 answered nothing for this row.' });
}

function plan(b: BitrixParts, rows: LeadBatch[], o?: BulkOptions): PlannedRequest[] {
  if (o?.runAutomations === false) {
    const pre = prerequisites(rows);
    const cmd: Record<string, string> = {};
    pre.forEach((r, i) => Object.assign(cmd, rowCommands(r, i)));
    const out = Object.keys(cmd).length ? [b.api.plan('batch', { halt: 0, cmd })] : [];
    for (const entity of ['lead', 'deal'] as const) {
      const mine = rows.filter((r) => r.entity === entity);
      for (let k = 0; k < mine.length; k += IMPORT_MAX) out.push(b.api.plan('crm.item.batchImport', importParams(entity, mine.slice(k, k + IMPORT_MAX))));
    }
    return out;
  }
  return pack(rows).map((group) => {
    const cmd: Record<string, string> = {};
    for (const i of group) Object.assign(cmd, rowCommands(rows[i]!, i));
    return b.api.plan('batch', { halt: 0, cmd });
  });
}

/**
 * The people the portal may already have: the findbycomm commands of each person's search (duplicates.ts), for
 * as many people as fit one `batch` of 50 commands. A hit sends the person through the full look-up.
 */
async function mayExist(b: BitrixParts, ctx: CallContext, people: ReadonlyArray<{ e164?: string; email?: string }>): Promise<boolean[]> {
  const { leadsEnabled } = await b.meta.lookups(ctx);
  const out = people.map(() => false);
  const cmds = people.map((p) => (p.e164 || p.email ? commCommands({ phoneE164: p.e164, email: p.email }, leadsEnabled) : {}));
  let batch: Record<string, string> = {};
  let owners: number[] = [];
  const flush = async () => {
    if (!owners.length) return;
    const res = await b.api.batch(ctx, batch);
    for (const i of owners) {
      const prefix = `p${i}_`;
      const hit = Object.entries(res.result).some(
        ([k, v]) =>
          k.startsWith(prefix) && v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).some((ids) => Array.isArray(ids) && ids.length > 0),
      );
      // A command the portal refused proves nothing: look that person up in full.
      out[i] = hit || Object.keys(res.errors).some((k) => k.startsWith(prefix));
    }
    batch = {};
    owners = [];
  };
  for (const [i, cmd] of cmds.entries()) {
    const n = Object.keys(cmd).length;
    if (!n) continue;
    if (Object.keys(batch).length + n > BATCH_MAX) await flush();
    for (const [k, v] of Object.entries(cmd)) batch[`p${i}_${k}`] = v;
    owners.push(i);
  }
  await flush();
  return out;
}

/** The bulk group of a Bitrix24 provider. */
export function bitrixBulk(b: BitrixParts): BulkApi {
  return {
    bulkBatchSize: BITRIX_BULK_SIZE,
    bulkCanSkipAutomations: true,
    bulkCreateLeads: (ctx, requests, o) => (o?.runAutomations === false ? importLeads : createLeads)(b, ctx, requests as LeadBatch[]),
    bulkPlan: (requests, o) => plan(b, requests as LeadBatch[], o),
    bulkMayExist: (ctx, people) => mayExist(b, ctx, people),
    // The configured origin only, never the webhook's path (its secret), as map.ts's lookups do.
    bulkUrl: (entity, id) => recordUrl(new URL(b.api.http.origin).origin, entity, id),
  };
}
