/**
 * The findings of `doctor --deep` (doctor-deep.ts): each built-in assumption, whether it holds on the account
 * probed, and what crm-mcp does about it. Pure functions over the probe's counts: ids and counts only.
 */
import { OPERATING_LIMIT_SEC } from '../providers/bitrix24/readahead.js';
/** How a user may type a stored number. `digits`: the national significant number, Kommo only (crm-mcp's first query). */
export type FormatName = 'as_stored' | 'e164' | 'national' | 'digits';
/** The formats crm-mcp's duplicate check is tried with (what a user types). */
export const FORMATS: readonly FormatName[] = ['as_stored', 'e164', 'national'];

export interface FormatCount {
  found: number;
  of: number;
}

export interface Finding {
  /** A stable id, e.g. `phone.duplicate_check.national`. */
  id: string;
  assumption: string;
  /** true: holds here; false: does not; null: could not be checked (no data, or an error). */
  holds: boolean | null;
  detail: string;
  /** What crm-mcp does about it (when it does not hold, the fix shown by `doctor`). */
  action: string;
}

export interface ListCount {
  /** Items crm-mcp read through its own paging. */
  read: number | null;
  /** Items the CRM says there are (`_total_items`, `total`). */
  total: number | null;
  /** Requests crm-mcp's paging spent on the list (Kommo; Bitrix24 reads pages inside batches). */
  pages: number | null;
}

export interface BudgetRow {
  method: string;
  /** Seconds of the method's 480 s spent in the 10-minute window (`time.operating`). */
  operating_sec: number;
  left_sec: number;
  /** Recent processing seconds per call (`time.processing`). */
  per_call_sec: number;
  reset_in_sec: number | null;
  paused: boolean;
}
/** Users and fields read through paging, per list. */
export interface DeepLists {
  users: ListCount;
  lead_fields: ListCount;
  contact_fields: ListCount;
}

const LABEL: Record<FormatName, string> = { as_stored: 'as stored', e164: 'in E.164', national: 'in national format', digits: 'as its national digits' };

function counted(c: FormatCount | undefined): string {
  return !c || c.of === 0 ? 'no sampled contact could be tried' : `${c.found} of ${c.of} sampled contacts found`;
}

function verdict(c: FormatCount | undefined): boolean | null {
  return !c || c.of === 0 ? null : c.found === c.of;
}

export function phoneFindings(
  kind: 'kommo' | 'bitrix24',
  crm: Partial<Record<FormatName, FormatCount>>,
  mine: Partial<Record<FormatName, FormatCount>>,
): Finding[] {
  const out: Finding[] = [];
  if (kind === 'kommo') {
    // The one search crm-mcp relies on first (provider searchContacts): the national digits.
    out.push({
      id: 'phone.crm_search.digits',
      assumption: "Kommo's `query` finds a stored phone by its national digits, however it is formatted",
      holds: verdict(crm.digits),
      detail: `${counted(crm.digits)} (by E.164 ${crm.e164?.found ?? 0}/${crm.e164?.of ?? 0}, as stored ${crm.as_stored?.found ?? 0}/${crm.as_stored?.of ?? 0}, national ${crm.national?.found ?? 0}/${crm.national?.of ?? 0})`,
      action:
        verdict(crm.digits) === false
          ? 'crm-mcp also searches the part after the area code as people format it (345-67-89, 345 67 89, 3456789) when the digits find nobody, then compares the numbers itself: a duplicate check of a new number costs up to 3 more requests here'
          : 'none needed',
    });
  } else {
    out.push({
      id: 'phone.crm_search.normalised',
      assumption: 'crm.duplicate.findbycomm compares normalised phones, so any spelling with the country code or trunk prefix finds the number',
      holds: crm.e164?.of && crm.national?.of ? crm.e164.found === crm.e164.of && crm.national.found === crm.national.of : null,
      detail: `as stored ${crm.as_stored?.found ?? 0}/${crm.as_stored?.of ?? 0}, E.164 ${crm.e164?.found ?? 0}/${crm.e164?.of ?? 0}, national ${crm.national?.found ?? 0}/${crm.national?.of ?? 0}`,
      action:
        'crm-mcp does not rely on it: each search sends the number in the common spellings (E.164, digits, international and national layouts) in one request, and a spelling outside those is only found if the portal normalises',
    });
  }
  for (const f of FORMATS) {
    const holds = verdict(mine[f]);
    out.push({
      id: `phone.duplicate_check.${f}`,
      assumption: `crm-mcp's duplicate check finds an existing contact by a phone typed ${LABEL[f]}`,
      holds,
      detail: counted(mine[f]),
      action:
        holds === false
          ? 'please report this with the phone shapes above: create_contact/create_lead could make a duplicate of a contact stored this way'
          : 'none needed',
    });
  }
  return out;
}

export function listFindings(kind: 'kommo' | 'bitrix24', lists: DeepLists): Finding[] {
  const pages = (c: ListCount) => (c.pages !== null ? ` in ${c.pages} page${c.pages === 1 ? '' : 's'}` : '');
  const of = (c: ListCount, what: string) =>
    c.read === null ? `could not list ${what}` : `${c.read}${c.total !== null ? ` of ${c.total}` : ''} ${what} read${pages(c)}`;
  const holds = (...cs: ListCount[]) => (cs.some((c) => c.read === null) ? null : cs.every((c) => c.total === null || c.read === c.total));
  const u = lists.users;
  const out: Finding[] = [
    {
      id: 'paging.users',
      assumption:
        kind === 'kommo' ? 'every user is read, however many pages the user list has' : 'every user is read, beyond the first page of 50 `user.get` answers',
      holds: holds(u),
      detail: `${of(u, 'users')}${u.read !== null && u.read > 50 ? ' (more than one page of 50)' : ''}`,
      action:
        holds(u) === false
          ? 'please report it: crm-mcp would show ids without names for the users it missed, and refuse them as responsible users'
          : 'users are paged to the end and cached with the other metadata',
    },
  ];
  const lf = lists.lead_fields;
  const cf = lists.contact_fields;
  out.push({
    id: 'paging.custom_fields',
    assumption:
      kind === 'kommo'
        ? 'every custom field is read, although Kommo returns at most 50 fields a page whatever `limit` asks'
        : 'every field is read (crm.*.fields is not paged)',
    holds: holds(lf, cf),
    detail: `${of(lf, kind === 'kommo' ? 'lead fields' : 'deal custom fields')}; ${of(cf, kind === 'kommo' ? 'contact fields' : 'contact custom fields')}`,
    action:
      holds(lf, cf) === false
        ? 'please report it: custom fields crm-mcp missed cannot be read or written by name'
        : 'field lists are paged until `_links.next` ends, not until a short page',
  });
  return out;
}

export function filterFinding(f: { account_flag: boolean | null; applied: boolean | null }): Finding {
  const flag = f.account_flag === null ? 'the account does not state is_api_filter_enabled' : `the account says is_api_filter_enabled=${f.account_flag}`;
  return {
    id: 'filters.kommo',
    assumption: 'Kommo applies `filter[...]` parameters on lead, contact and company lists',
    holds: f.applied,
    detail:
      f.applied === null
        ? `not tried (fewer than 2 contacts, or the request failed); ${flag}`
        : `${f.applied ? 'a filter by id returned only that contact' : 'a filter by id returned other contacts too'}; ${flag}`,
    action:
      f.applied === false
        ? 'when crm-mcp reads records by id (the leads of a found contact, a lead’s contacts and companies) it keeps only those it asked for, though on an account with more than 250 of them some may be missing; list_leads filters (stage, pipeline, responsible user, dates) are not applied by this account, so their results are unfiltered: ask Kommo support to enable API filters, and please report it'
        : 'none needed',
  };
}

export function rateFinding(kind: 'kommo' | 'bitrix24', profile: string, throttled: number): Finding {
  return {
    id: 'rate_limit',
    assumption: kind === 'kommo' ? `Kommo accepts ${profile} (HTTP 429 beyond)` : `Bitrix24 accepts a leaky bucket of ${profile} (QUERY_LIMIT_EXCEEDED beyond)`,
    holds: throttled === 0,
    detail:
      throttled === 0 ? 'no request was throttled during the probe' : `${throttled} request${throttled === 1 ? ' was' : 's were'} throttled during the probe`,
    action:
      throttled === 0
        ? 'none needed'
        : kind === 'kommo'
          ? 'crm-mcp paces requests at 7/s and retries a 429 after a pause; another integration on this account may be using the same budget (share the limiter through Redis when several crm-mcp run: CRM_MCP_STORE=redis://…)'
          : 'crm-mcp mirrors the bucket and retries after a pause; another application on this portal may be spending it, or the plan is not the one configured (BITRIX_PLAN)',
  };
}

export function budgetFindings(rows: BudgetRow[]): Finding[] {
  const busiest = rows[0];
  const half = OPERATING_LIMIT_SEC / 2;
  return [
    {
      id: 'budget.reported',
      assumption: 'the portal reports each method’s operating time (`time.operating`, cloud portals)',
      holds: rows.length > 0,
      detail: rows.length ? `reported for ${rows.length} methods` : 'no response carried `time.operating`',
      action: rows.length
        ? 'none needed'
        : 'crm-mcp cannot size list read-ahead by the budget here: it reads full batches and pauses a method only when the portal answers OPERATION_TIME_LIMIT',
    },
    {
      id: 'budget.headroom',
      assumption: `every method has more than half of its ${OPERATING_LIMIT_SEC} s operating budget per 10 minutes left`,
      holds: busiest ? busiest.operating_sec < half && !busiest.paused : null,
      detail: busiest
        ? `busiest: ${busiest.method}, ${busiest.operating_sec} s spent, ${busiest.left_sec} s left${busiest.reset_in_sec !== null ? `, oldest spending leaves the window in ${busiest.reset_in_sec} s` : ''}`
        : 'no figures',
      action:
        busiest && (busiest.operating_sec >= half || busiest.paused)
          ? `crm-mcp reads no further ahead than needed on ${busiest.method} while more than half its budget is spent, and pauses it until the reset on OPERATION_TIME_LIMIT; other integrations using this webhook or app spend the same budget`
          : 'none needed',
    },
  ];
}
