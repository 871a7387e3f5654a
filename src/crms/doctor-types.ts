/**
 * What `crm-mcp doctor` and a CRM wing's doctor part share (contract.ts `DoctorPart`): the report's shapes,
 * the limits it warns at, and the small helpers every wing's checks use. The general command
 * (src/commands/doctor*.ts) runs the checks and renders the report; each wing fills in its CRM's checks and
 * the CRM-specific parts of the `--deep` probe. Low level on purpose: wings may import it, it imports no wing.
 */
import { Grant } from '../policy/policy.js';
import type { Store } from '../store/store.js';
import type { TokenRecord } from './oauth.js';
import type { CallContext, CrmProvider } from './types.js';

export const DAY = 86_400_000;
/** A token this close to expiry is a warning. */
export const WARN_DAYS = 7;

export type Severity = 'ok' | 'warn' | 'error' | 'skipped';

export interface Check {
  check: string;
  status: Severity;
  detail: string;
  fix?: string;
}

export interface ConnectionReport {
  name: string;
  /** The CrmModule kind that serves the connection (its `label` is how the report names it). */
  provider: string;
  address: string;
  auth: {
    type: 'long-lived' | 'oauth' | 'webhook' | 'unknown';
    expires_at: string | null;
    days_left: number | null;
    refresh_expires_at?: string | null;
    scopes: string[] | null;
  };
  account: { id: number | string | null; name: string | null } | null;
  policy: string;
  rate_limit: string;
  checks: Check[];
  /** `--deep` only: what the read-only probe found on the account (null: not run, the account was not reached). */
  deep?: DeepReport | null;
}

export interface Problem {
  connection: string;
  check: string;
  severity: 'error' | 'warn';
  message: string;
  fix: string;
}

export interface DoctorReport {
  version: string;
  ok: boolean;
  exit_code: number;
  store: string | null;
  connections: ConnectionReport[];
  problems: Problem[];
}

export const ctx = (): CallContext => ({ grant: Grant.readOnly() });

export function daysLeft(expiresAtMs: number): number {
  return Math.floor((expiresAtMs - Date.now()) / DAY);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function day(ms: number): string {
  return iso(ms).slice(0, 10);
}

/** True when start-up replaces the stored chain with the configured seed (a code or refresh token not used yet). */
export function reseeds(rec: TokenRecord, seed: string | undefined): boolean {
  return seed !== undefined && seed !== rec.seed;
}

/** The CRM refused the stored refresh token (spent, e.g. after a refresh whose answer was lost, or revoked). */
export function refusedCheck(crm: string, rec: TokenRecord, reauth: string): Check {
  return {
    check: 'token',
    status: 'error',
    detail: `the stored refresh token was refused by ${crm} on ${day(rec.refused_at!)} (spent or revoked: e.g. the answer to a refresh was lost, or the app was disabled); it is not sent again`,
    fix: `Sign in again: ${reauth}.`,
  };
}

/** The checks every connection ends with: policy, rate-limit profile and the token store. */
export function pushCommon(checks: Check[], report: ConnectionReport, store: Store, oauth: boolean): void {
  checks.push({ check: 'policy', status: 'ok', detail: report.policy });
  checks.push({ check: 'rate limit', status: 'ok', detail: report.rate_limit });
  if (oauth && store.description.startsWith('memory')) {
    checks.push({
      check: 'store',
      status: 'error',
      detail: `${store.description}: rotated OAuth tokens would be lost at exit`,
      fix: 'Unset CRM_MCP_STORE (default file ~/.crm-mcp/store.json) or point it at a file.',
    });
  } else checks.push({ check: 'store', status: 'ok', detail: store.description });
}

// ---------------------------------------------------------------- --deep

/** How a user may type a stored number. `digits`: the national significant number (a CRM's own search may want it). */
export type FormatName = 'as_stored' | 'e164' | 'national' | 'digits';

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
  /** Requests crm-mcp's paging spent on the list (null: the CRM's pages are read inside batches). */
  pages: number | null;
}

export interface BudgetRow {
  method: string;
  /** Seconds of the method's budget spent in the window (`time.operating`). */
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

/** Whether a CRM applies list filters: its account switch, and what a filter by one id really did. */
export interface FilterCheck {
  account_flag: boolean | null;
  applied: boolean | null;
}

export interface DeepReport {
  connection: string;
  /** The CrmModule kind. */
  provider: string;
  /** Requests the probe sent (every attempt), and the ceiling it keeps to. */
  requests: number;
  request_limit: number;
  /** Ids of the contacts tried and the shape of the phone used (digits as `#`). */
  sampled: Array<{ id: number | string; phone_shape: string }>;
  phone_search: {
    /** What the CRM's own search returns for each input format (raw API). */
    crm: Partial<Record<FormatName, FormatCount>>;
    /** What crm-mcp's duplicate check (search_lead_by_contact) finds for each format. */
    crm_mcp: Partial<Record<FormatName, FormatCount>>;
  };
  lists: DeepLists;
  /** CRMs whose list filters can be off (DeepProbe.filters): the account flag and what a filter by id really did. */
  filters: FilterCheck | null;
  rate_limit: { profile: string; throttled: number; limiter_wait_ms: number };
  /** CRMs that meter operating time (DeepProbe.budget): the budget per method, as reported (busiest first). */
  operating_budget: BudgetRow[] | null;
  findings: Finding[];
}

/** One step of the probe: undefined when it failed or the request budget is spent; a policy refusal is raised. */
export type Attempt = <T>(fn: () => Promise<T>) => Promise<T | undefined>;

/** A contact as the provider lists it. */
export type ProbeContact = Awaited<ReturnType<NonNullable<CrmProvider['listContacts']>>>['items'][number];

/** What the CRM says its lists hold: one small read each, compared with what paging read. */
export interface ListTotals {
  users: number | null;
  leadFields: number | null;
  contactFields: number | null;
}

/**
 * A wing's part of `doctor --deep`, bound to a provider its module built: what differs per CRM in the
 * read-only probe (the general loop, the request ceiling and the generic findings are the command's).
 */
export interface DeepProbe {
  /** The account's country: numbers without a country code are read in it, as the provider does. */
  country?(ctx: CallContext): Promise<string | undefined>;
  /** The formats the CRM's own search is tried with. */
  readonly searchFormats: readonly FormatName[];
  /** Does the CRM's own search, given this text, return contact `id`? */
  crmFinds(ctx: CallContext, text: string, id: number | string): Promise<boolean>;
  /** The finding about the CRM's own phone search, from what each format found. */
  searchFinding(crm: Partial<Record<FormatName, FormatCount>>): Finding;
  /** The entity whose custom fields are read as "lead fields". */
  readonly leadFields: 'leads' | 'deals';
  totals(ctx: () => CallContext): Promise<ListTotals>;
  /** Request paths whose requests, while the lists are read, are the pages spent (absent: pages come in batches). */
  readonly pagePaths?: { users: string; leadFields: string; contactFields: string };
  /** How the paging findings are worded for this CRM. */
  readonly listWording: { users: string; customFields: string; leadFields: string; contactFields: string };
  /** CRMs whose list filters can be off: check, and the finding about it. */
  readonly filters?: {
    read(ctx: () => CallContext, attempt: Attempt, seen: readonly ProbeContact[]): Promise<FilterCheck>;
    finding(f: FilterCheck): Finding;
  };
  /** The rate-limit profile as the report shows it, what the CRM is assumed to accept and what crm-mcp does when throttled. */
  readonly rate: { profile: string; assumption: string; whenThrottled: string };
  /** CRMs that meter operating time: the budget rows after the probe, and the findings about them. */
  readonly budget?: { rows(): BudgetRow[]; findings(rows: BudgetRow[]): Finding[] };
}

const LABEL: Record<FormatName, string> = { as_stored: 'as stored', e164: 'in E.164', national: 'in national format', digits: 'as its national digits' };

/** How a format is said in a finding (`typed in E.164`). */
export function formatLabel(f: FormatName): string {
  return LABEL[f];
}

export function counted(c: FormatCount | undefined): string {
  return !c || c.of === 0 ? 'no sampled contact could be tried' : `${c.found} of ${c.of} sampled contacts found`;
}

export function verdict(c: FormatCount | undefined): boolean | null {
  return !c || c.of === 0 ? null : c.found === c.of;
}

/** The formats crm-mcp's duplicate check is tried with (what a user types). */
export const FORMATS: readonly FormatName[] = ['as_stored', 'e164', 'national'];
