/**
 * `crm-mcp doctor --deep`: checks, on the user's own account and read-only, the assumptions crm-mcp makes
 * about the CRM that no documentation settles: how the CRM's own search matches phone numbers, whether list
 * filters are applied, how lists page, how many users and fields there are, and the rate-limit and
 * operating-time budget.
 *
 * Every request runs under a read-only grant (a write would be refused by the HTTP core: `policy_denied`
 * here is a bug and is raised, not swallowed) and the probe stops sending at `DEEP_MAX_REQUESTS`. The
 * report carries ids, counts and phone *shapes* (`+# ### ###-##-##`) only — never a name, phone or email —
 * so it can be pasted into a bug report.
 */
import { observeRequests, type HttpEvent } from '../http/client.js';
import { CrmError } from '../http/errors.js';
import { Grant } from '../policy/policy.js';
import { BITRIX_PLANS, BitrixProvider } from '../providers/bitrix24/provider.js';
import { OPERATING_LIMIT_SEC } from '../providers/bitrix24/readahead.js';
import { KOMMO_RPS, KommoProvider } from '../providers/kommo/provider.js';
import type { CallContext, CrmProvider } from '../providers/types.js';
import {
  budgetFindings,
  filterFinding,
  FORMATS,
  listFindings,
  phoneFindings,
  rateFinding,
  type BudgetRow,
  type DeepLists,
  type Finding,
  type FormatCount,
  type FormatName,
} from './doctor-deep-findings.js';
import { normalizePhone, parsePhoneNumberFromString } from '../util/phone.js';

/** Contacts with phones sampled for the phone-format probe. */
export const DEEP_SAMPLE = 3;
/**
 * The most requests one probe sends (retries included). The worst case on Kommo is about 75: 3 contacts ×
 * (4 searches + 3 duplicate checks of up to 5 requests), plus metadata pages and a few single reads; on
 * Bitrix24 far fewer, as its reads go in batches. At 7 requests/s (Kommo) that is about 15 s.
 */
export const DEEP_MAX_REQUESTS = 100;

export interface DeepReport {
  connection: string;
  provider: 'kommo' | 'bitrix24';
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
  /** Kommo: the account flag and what a filter by id really did. */
  filters: { account_flag: boolean | null; applied: boolean | null } | null;
  rate_limit: { profile: string; throttled: number; limiter_wait_ms: number };
  /** Bitrix24: the operating-time budget per method, as the portal reported it in `time` (busiest first). */
  operating_budget: BudgetRow[] | null;
  findings: Finding[];
}

/** The three ways a user types a stored number (as stored, E.164, national with the trunk prefix), plus its digits. */
export function phoneVariants(stored: string, defaultCountry?: string): Record<FormatName, string> | undefined {
  const n = normalizePhone(stored, defaultCountry);
  if (!n) return undefined;
  const p = parsePhoneNumberFromString(n.e164);
  const national = p ? p.formatNational() : n.national;
  return { as_stored: stored, e164: n.e164, national, digits: n.national };
}

/** A phone with every digit replaced by `#`: shows how it is stored without showing the number. */
export function phoneShape(s: string): string {
  return s.replace(/\d/g, '#');
}

/** A contact as the provider lists it. */
type Contact = Awaited<ReturnType<NonNullable<CrmProvider['listContacts']>>>['items'][number];

function idOf(x: unknown): string {
  return String((x as { id?: unknown } | null)?.id);
}

export { FORMATS, type BudgetRow, type DeepLists, type Finding, type FormatCount, type FormatName, type ListCount } from './doctor-deep-findings.js';

/** Runs the deep probe on one connection. */
// The probe checks what crm-mcp assumes about Kommo and Bitrix24 (their search, paging and limits), so it takes those two.
export async function deepProbe(provider: KommoProvider | BitrixProvider, opts: { sample?: number; maxRequests?: number } = {}): Promise<DeepReport> {
  const limit = opts.maxRequests ?? DEEP_MAX_REQUESTS;
  const stop = new AbortController();
  let requests = 0;
  let throttled = 0;
  let waited = 0;
  /** Requests per path, outside the probe's own count reads (which page nothing). */
  const perPath = new Map<string, number>();
  let tallyPaths = true;
  const observe = (e: HttpEvent) => {
    // An attempt refused before sending (the budget is spent) reached nobody.
    if (stop.signal.aborted && e.status === 0) return;
    requests += 1;
    waited += e.limiterWaitMs;
    if (e.status === 429 || e.status === 503) throttled += 1;
    if (tallyPaths) perPath.set(e.path, (perPath.get(e.path) ?? 0) + 1);
    if (requests >= limit) stop.abort();
  };
  const ctx = (): CallContext => ({ grant: Grant.readOnly(), signal: stop.signal });
  /** One step: undefined when it failed or the budget is spent; a policy refusal is a bug and is raised. */
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    if (stop.signal.aborted) return undefined;
    try {
      return await fn();
    } catch (e) {
      if (e instanceof CrmError && e.code === 'policy_denied') throw e;
      return undefined;
    }
  };

  return observeRequests(observe, async () => {
    const kommo = provider instanceof KommoProvider ? provider : undefined;
    const bitrix = provider instanceof BitrixProvider ? provider : undefined;
    // Kommo numbers without a country code are read in the account's country, as the provider does.
    const country = kommo ? ((await attempt(() => kommo.account(ctx())))?.country ?? undefined) : undefined;
    const first = await attempt(() => provider.listContacts(ctx(), { limit: 50, sort: 'created_desc' }));
    const sample = pickSample(first?.items ?? [], opts.sample ?? DEEP_SAMPLE, country ?? undefined);

    const crmFormats: FormatName[] = kommo ? [...FORMATS, 'digits'] : [...FORMATS];
    const crm: Partial<Record<FormatName, FormatCount>> = Object.fromEntries(crmFormats.map((f) => [f, { found: 0, of: 0 }]));
    const mine: Partial<Record<FormatName, FormatCount>> = Object.fromEntries(FORMATS.map((f) => [f, { found: 0, of: 0 }]));
    const tally = (c: FormatCount | undefined, r: boolean | undefined) => {
      if (!c || r === undefined) return;
      c.of += 1;
      if (r) c.found += 1;
    };
    for (const { contact, variants } of sample) {
      for (const f of crmFormats) tally(crm[f], await attempt(() => crmFinds(provider, ctx(), variants[f], contact.id)));
      for (const f of FORMATS) {
        tally(
          mine[f],
          await attempt(async () =>
            (await provider.searchLeadByContact(ctx(), { phone: variants[f] })).contacts.some((c) => String(c.id) === String(contact.id)),
          ),
        );
      }
    }

    const users = await attempt(() => provider.users(ctx()));
    const leadFields = await attempt(() => provider.customFields(ctx(), kommo ? 'leads' : 'deals'));
    const contactFields = await attempt(() => provider.customFields(ctx(), 'contacts'));
    tallyPaths = false;
    const totals = await attempt(() => listTotals(provider, ctx));
    const pagesOf = (suffix: string) => (kommo ? [...perPath].filter(([p]) => p === suffix).reduce((n, [, c]) => n + c, 0) : null);
    const lists = {
      users: { read: users?.length ?? null, total: totals?.users ?? null, pages: pagesOf('/api/v4/users') },
      lead_fields: { read: leadFields?.length ?? null, total: totals?.leadFields ?? null, pages: pagesOf('/api/v4/leads/custom_fields') },
      contact_fields: { read: contactFields?.length ?? null, total: totals?.contactFields ?? null, pages: pagesOf('/api/v4/contacts/custom_fields') },
    };
    const filters = kommo ? await kommoFilters(kommo, ctx, attempt, first?.items ?? []) : null;

    const findings: Finding[] = [
      ...phoneFindings(provider.kind, crm, mine),
      ...listFindings(provider.kind, lists),
      ...(filters ? [filterFinding(filters)] : []),
    ];
    const profile = kommo
      ? `${KOMMO_RPS} requests/s per integration`
      : `${BITRIX_PLANS[bitrix!.conn.plan].capacity} burst, ${BITRIX_PLANS[bitrix!.conn.plan].drain} requests/s`;
    findings.push(rateFinding(provider.kind, profile, throttled));
    const budget = bitrix ? budgetRows(bitrix) : null;
    if (budget) findings.push(...budgetFindings(budget));
    if (stop.signal.aborted) {
      findings.push({
        id: 'probe.budget',
        assumption: `the probe finishes within ${limit} requests`,
        holds: false,
        detail: `it stopped after ${requests} requests; the checks not reached are reported as unknown`,
        action: 'please report it with this output: the probe is meant to need far fewer requests',
      });
    }
    return {
      connection: provider.connection,
      provider: provider.kind,
      requests,
      request_limit: limit,
      sampled: sample.map((s) => ({ id: s.contact.id, phone_shape: phoneShape(s.variants.as_stored) })),
      phone_search: { crm, crm_mcp: mine },
      lists,
      filters,
      rate_limit: { profile, throttled, limiter_wait_ms: waited },
      operating_budget: budget,
      findings,
    };
  });
}

/** Up to `n` contacts with a phone that parses, different stored shapes first (they test different formats). */
function pickSample(items: Contact[], n: number, country: string | undefined): Array<{ contact: Contact; variants: Record<FormatName, string> }> {
  const usable = items.flatMap((contact) => {
    const phone = contact.phones[0];
    const variants = phone ? phoneVariants(phone, country) : undefined;
    return variants ? [{ contact, variants }] : [];
  });
  const shapes = new Set<string>();
  const distinct = usable.filter((u) => {
    const s = phoneShape(u.variants.as_stored);
    if (shapes.has(s)) return false;
    shapes.add(s);
    return true;
  });
  return [...distinct, ...usable.filter((u) => !distinct.includes(u))].slice(0, n);
}

/** Does the CRM's own search, given this text, return contact `id`? (Kommo `query`; Bitrix24 findbycomm.) */
async function crmFinds(provider: CrmProvider, ctx: CallContext, text: string, id: number | string): Promise<boolean> {
  if (provider instanceof KommoProvider) {
    const r = await provider.raw(ctx, 'GET', '/api/v4/contacts', { query: text, limit: 250 }, undefined);
    const rows = (r.data as { _embedded?: { contacts?: unknown[] } } | null)?._embedded?.contacts ?? [];
    return rows.some((c) => idOf(c) === String(id));
  }
  if (provider instanceof BitrixProvider) {
    const r = await provider.call<{ CONTACT?: unknown[] } | unknown[]>(ctx, 'crm.duplicate.findbycomm', {
      type: 'PHONE',
      values: [text],
      entity_type: 'CONTACT',
    });
    const ids = r.result && !Array.isArray(r.result) ? (r.result.CONTACT ?? []) : [];
    return ids.some((x) => String(x) === String(id));
  }
  return false;
}

/** How many users and fields the CRM says it has: one small read each, compared with what paging read. */
async function listTotals(
  provider: CrmProvider,
  ctx: () => CallContext,
): Promise<{ users: number | null; leadFields: number | null; contactFields: number | null }> {
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);
  if (provider instanceof KommoProvider) {
    const total = async (path: string) =>
      num(((await provider.raw(ctx(), 'GET', path, { limit: 1 }, undefined)).data as { _total_items?: unknown } | null)?._total_items);
    return {
      users: await total('/api/v4/users'),
      leadFields: await total('/api/v4/leads/custom_fields'),
      contactFields: await total('/api/v4/contacts/custom_fields'),
    };
  }
  if (provider instanceof BitrixProvider) {
    // The same order the provider pages by (users.ts); `total` counts every page.
    const r = await provider.call<unknown[]>(ctx(), 'user.get', { sort: 'ID', order: 'ASC', start: 0 });
    return { users: num(r.total), leadFields: null, contactFields: null };
  }
  return { users: null, leadFields: null, contactFields: null };
}

/**
 * Kommo accounts can have API filtering off (§5.1, `is_api_filter_enabled`): a filter by id then returns
 * unrelated rows. Read the flag, and check what a filter by one contact's id really returns.
 */
async function kommoFilters(
  provider: KommoProvider,
  ctx: () => CallContext,
  attempt: <T>(fn: () => Promise<T>) => Promise<T | undefined>,
  seen: Contact[],
): Promise<{ account_flag: boolean | null; applied: boolean | null }> {
  const acc = await attempt(() => provider.raw(ctx(), 'GET', '/api/v4/account', { with: 'is_api_filter_enabled' }, undefined));
  const flag = (acc?.data as { is_api_filter_enabled?: unknown } | null)?.is_api_filter_enabled;
  const account_flag = typeof flag === 'boolean' ? flag : null;
  // With a single contact an unfiltered answer looks filtered: no verdict then.
  const target = seen.length >= 2 ? seen[seen.length - 1]!.id : undefined;
  if (target === undefined) return { account_flag, applied: null };
  const r = await attempt(() => provider.raw(ctx(), 'GET', '/api/v4/contacts', { 'filter[id]': [Number(target)], limit: 5 }, undefined)); // sent as filter[id][]=…
  if (!r) return { account_flag, applied: null };
  const rows = (r.data as { _embedded?: { contacts?: unknown[] } } | null)?._embedded?.contacts ?? [];
  return { account_flag, applied: rows.length === 1 && idOf(rows[0]) === String(target) };
}

function budgetRows(p: BitrixProvider): BudgetRow[] {
  const now = Date.now();
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return p
    .operatingBudget()
    .filter((b) => b.reported)
    .map((b) => ({
      method: b.method,
      operating_sec: round(b.operating_sec),
      left_sec: round(Math.max(0, OPERATING_LIMIT_SEC - b.operating_sec)),
      per_call_sec: round(b.per_call_sec),
      reset_in_sec: b.reset_at !== null ? Math.max(0, Math.round((b.reset_at - now) / 1000)) : null,
      paused: b.paused_until !== null && b.paused_until > now,
    }))
    .sort((a, b) => b.operating_sec - a.operating_sec);
}

export function renderDeep(r: DeepReport): string {
  const lines = [`  deep probe: ${r.requests} read requests (limit ${r.request_limit})`];
  lines.push(`    sampled contacts: ${r.sampled.map((s) => `${s.id} (${s.phone_shape})`).join(', ') || 'none with a phone'}`);
  const fmt = (c: Partial<Record<FormatName, FormatCount>>) =>
    (Object.entries(c) as Array<[FormatName, FormatCount]>).map(([f, x]) => `${f} ${x.found}/${x.of}`).join(', ');
  lines.push(`    phone search, the CRM's own: ${fmt(r.phone_search.crm)}`);
  lines.push(`    phone search, crm-mcp duplicate check: ${fmt(r.phone_search.crm_mcp)}`);
  lines.push(`    rate limit: ${r.rate_limit.profile}; throttled ${r.rate_limit.throttled}`);
  if (r.operating_budget?.length) {
    lines.push(
      `    operating budget (of ${OPERATING_LIMIT_SEC} s / 10 min): ${r.operating_budget
        .slice(0, 3)
        .map((b) => `${b.method} ${b.operating_sec} s`)
        .join(', ')}`,
    );
  }
  for (const f of r.findings) {
    const mark = f.holds === null ? '?' : f.holds ? 'ok' : 'NO';
    lines.push(`    [${mark}] ${f.assumption}: ${f.detail}${f.holds === false ? `\n          → ${f.action}` : ''}`);
  }
  return lines.join('\n');
}
