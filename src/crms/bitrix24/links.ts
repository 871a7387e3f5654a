/**
 * The links of listed and embedded records, read in batches so that a link field never shows an empty list
 * that only means "not read":
 * - company names beside company ids: one `crm.company.list` by `@ID` per 50 companies;
 * - every contact of a deal or lead: the compat rows carry `CONTACT_ID`, the primary contact only, and
 *   `crm.deal.list` cannot select `CONTACT_IDS` (§7.2), so `crm.item.list` with `@id` and `contactIds` in the
 *   select (crm-item-list: "Can contain only field names", `contactIds` is a deal/lead field) gives them, 50
 *   items a command;
 * - a company's contacts (`crm.company.contact.items.get`, every binding) and its deals and leads
 *   (`crm.deal.list`/`crm.lead.list` by `COMPANY_ID`, which is single on deals and leads, §7.2).
 */
import type { CallContext, Id } from '../types.js';
import { bitrixError } from './adapter.js';
import { num, phpQuery } from './map.js';
import { rowsOf } from './schemas.js';

const PAGE = 50;
const MAX_COMMANDS = 50;

interface BatchAnswer {
  result: Record<string, unknown>;
  errors: Record<string, { error: string; error_description: string }>;
}

export interface LinkDeps {
  batch(ctx: CallContext, cmd: Record<string, string>): Promise<BatchAnswer>;
}

function chunks<T>(list: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

/**
 * Independent commands in as many batches as they need; a failed command fails the read, except those
 * `optional` names (left out of the result, e.g. a bound record that is gone).
 */
export async function batchAll(
  d: LinkDeps,
  ctx: CallContext,
  cmd: Record<string, string>,
  optional: (key: string) => boolean = () => false,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const keys of chunks(Object.keys(cmd), MAX_COMMANDS)) {
    const b = await d.batch(ctx, Object.fromEntries(keys.map((k) => [k, cmd[k]!])));
    for (const k of keys) {
      const err = b.errors[k];
      if (err && !optional(k)) throw bitrixError(err.error, err.error_description, 400);
    }
    Object.assign(out, b.result);
  }
  return out;
}

function ids(list: Array<Id | null | undefined>): number[] {
  return [...new Set(list.map((x) => Number(x)).filter((n) => Number.isSafeInteger(n) && n > 0))];
}

export interface LinkQuery {
  /** Companies to name. */
  companyIds?: Array<Id | null | undefined>;
  /** Deals (2) and leads (1) whose contacts to list. */
  deals?: Array<Id | null | undefined>;
  leads?: Array<Id | null | undefined>;
}

/** Commands naming companies (`TITLE`) and listing the contacts of deals and leads. */
export function linkCommands(q: LinkQuery): Record<string, string> {
  const cmd: Record<string, string> = {};
  chunks(ids(q.companyIds ?? []), PAGE).forEach((chunk, i) => {
    cmd[`co${i}`] = `crm.company.list?${phpQuery({ filter: { '@ID': chunk }, select: ['ID', 'TITLE'], start: -1 })}`;
  });
  for (const [entityTypeId, list] of [
    [2, q.deals],
    [1, q.leads],
  ] as const) {
    chunks(ids(list ?? []), PAGE).forEach((chunk, i) => {
      cmd[`ic${entityTypeId}_${i}`] = `crm.item.list?${phpQuery({ entityTypeId, filter: { '@id': chunk }, select: ['id', 'contactIds'] })}`;
    });
  }
  return cmd;
}

export interface Links {
  /** Company TITLE by company id. */
  titles: Map<string, string | null>;
  /** Contact ids by `deal:<id>` / `lead:<id>`. */
  contacts: Map<string, Id[]>;
}

/** Reads what linkCommands asked. */
export function readLinks(result: Record<string, unknown>): Links {
  const titles = new Map<string, string | null>();
  const contacts = new Map<string, Id[]>();
  for (const [k, v] of Object.entries(result)) {
    if (/^co\d+$/.test(k)) for (const r of rowsOf(v, 'crm.company.list')) titles.set(String(r.ID), typeof r.TITLE === 'string' ? r.TITLE : null);
    const m = /^ic([12])_\d+$/.exec(k);
    if (m && v && typeof v === 'object' && Array.isArray((v as { items?: unknown }).items)) {
      for (const it of (v as { items: Array<{ id?: unknown; contactIds?: unknown }> }).items) {
        const list = Array.isArray(it.contactIds) ? it.contactIds.map((x) => num(x)).filter((x): x is Id => x !== null && x !== 0) : [];
        contacts.set(`${m[1] === '2' ? 'deal' : 'lead'}:${String(it.id)}`, list);
      }
    }
  }
  return { titles, contacts };
}

/** Company titles and item contacts in one go (skips the request when nothing needs naming). */
export async function fetchLinks(d: LinkDeps, ctx: CallContext, q: LinkQuery): Promise<Links> {
  const cmd = linkCommands(q);
  if (!Object.keys(cmd).length) return { titles: new Map(), contacts: new Map() };
  return readLinks(await batchAll(d, ctx, cmd));
}

/** One page of the ID-only list of `method` under `filter`, newest first, below `before` when given. */
function idPage(method: string, filter: Record<string, unknown>, before?: number | string): string {
  return `${method}?${phpQuery({ order: { ID: 'DESC' }, filter: before !== undefined ? { ...filter, '<ID': before } : filter, select: ['ID'], start: -1 })}`;
}

/** Commands for a company's links, to ride in a batch with other reads (`prefix` keeps their keys apart). */
export function companyLinkCommands(id: number, leadsEnabled: boolean, prefix = ''): Record<string, string> {
  return {
    [`${prefix}contacts`]: `crm.company.contact.items.get?${phpQuery({ id })}`,
    [`${prefix}deals`]: idPage('crm.deal.list', { COMPANY_ID: id }),
    ...(leadsEnabled ? { [`${prefix}leads`]: idPage('crm.lead.list', { COMPANY_ID: id }) } : {}),
  };
}

const rowIds = (v: unknown): number[] =>
  rowsOf(v, 'crm.*.list')
    .map((r) => Number(r.ID))
    .filter((n) => Number.isSafeInteger(n) && n > 0);

/** The rest of an ID list whose first page was full: pages chained by `$result` in batches of 50 (§4.1). */
async function restOfIds(d: LinkDeps, ctx: CallContext, method: string, filter: Record<string, unknown>, after: number): Promise<number[]> {
  const out: number[] = [];
  let last = after;
  for (;;) {
    const cmd: Record<string, string> = {};
    for (let i = 0; i < MAX_COMMANDS; i++) cmd[`p${i}`] = idPage(method, filter, i === 0 ? last : `$result[p${i - 1}][${PAGE - 1}][ID]`);
    const b = await d.batch(ctx, cmd);
    for (let i = 0; i < MAX_COMMANDS; i++) {
      const err = b.errors[`p${i}`];
      if (err) throw bitrixError(err.error, err.error_description, 400);
      const page = rowIds(b.result[`p${i}`]);
      out.push(...page);
      if (page.length < PAGE) return out;
      last = page.at(-1)!;
    }
  }
}

/** A company's contact ids and its deal and lead ids (deals first), from companyLinkCommands' answers. */
export async function companyLinks(d: LinkDeps, ctx: CallContext, id: number, b: BatchAnswer, prefix = ''): Promise<{ contact_ids: Id[]; lead_ids: Id[] }> {
  for (const k of ['contacts', 'deals', 'leads']) {
    const err = b.errors[`${prefix}${k}`];
    if (err) throw bitrixError(err.error, err.error_description, 400);
  }
  const contacts = rowsOf(b.result[`${prefix}contacts`], 'crm.company.contact.items.get')
    .map((x) => num(x.CONTACT_ID))
    .filter((x): x is Id => x !== null && x !== 0);
  const all = async (key: string, method: string) => {
    const first = rowIds(b.result[`${prefix}${key}`]);
    return first.length < PAGE ? first : [...first, ...(await restOfIds(d, ctx, method, { COMPANY_ID: id }, first.at(-1)!))];
  };
  const deals = await all('deals', 'crm.deal.list');
  const leads = `${prefix}leads` in b.result ? await all('leads', 'crm.lead.list') : [];
  return { contact_ids: [...new Set(contacts)], lead_ids: [...deals, ...leads] };
}
