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
import { CrmError } from '../domain/errors.js';
import { Grant } from '../policy/policy.js';
import type { DeepProbe, DeepReport, ProbeContact } from '../crms/doctor-types.js';
import { defaultRegistry } from '../crms/registry.js';
import type { CallContext, CrmProvider } from '../crms/types.js';
import { normalizePhone, parsePhoneNumberFromString } from '../util/phone.js';
import { duplicateFindings, FORMATS, listFindings, rateFinding, type Finding, type FormatCount, type FormatName } from './doctor-deep-findings.js';

/** Contacts with phones sampled for the phone-format probe. */
export const DEEP_SAMPLE = 3;
/**
 * The most requests one probe sends (retries included). The worst case on Kommo is about 75: 3 contacts ×
 * (4 searches + 3 duplicate checks of up to 5 requests), plus metadata pages and a few single reads; on
 * Bitrix24 far fewer, as its reads go in batches. At 7 requests/s (Kommo) that is about 15 s.
 */
export const DEEP_MAX_REQUESTS = 100;

export type { DeepReport } from '../crms/doctor-types.js';

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

type Contact = ProbeContact;

export { FORMATS, type BudgetRow, type DeepLists, type Finding, type FormatCount, type FormatName, type ListCount } from './doctor-deep-findings.js';

/** The CRM's part of the probe, from its module (contract.ts `DoctorPart.deep`); undefined when it has none. */
export async function deepProbeOf(provider: CrmProvider): Promise<DeepProbe | undefined> {
  return defaultRegistry.get(provider.kind)?.doctor?.deep?.(provider);
}

/**
 * Runs the deep probe on one connection. What differs per CRM (its own search, how its lists are counted and
 * paged, its filters and budgets, the words of its findings) comes from the CRM's module.
 */
export async function deepProbe(provider: CrmProvider, opts: { sample?: number; maxRequests?: number } = {}): Promise<DeepReport> {
  const probe = await deepProbeOf(provider);
  if (!probe) throw new Error(`no deep probe for ${provider.kind} connections`);
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
    const country = probe.country ? await attempt(() => probe.country!(ctx())) : undefined;
    const first = await attempt(async () => provider.listContacts?.(ctx(), { limit: 50, sort: 'created_desc' }));
    const sample = pickSample(first?.items ?? [], opts.sample ?? DEEP_SAMPLE, country ?? undefined);

    const crmFormats = probe.searchFormats;
    const crm: Partial<Record<FormatName, FormatCount>> = Object.fromEntries(crmFormats.map((f) => [f, { found: 0, of: 0 }]));
    const mine: Partial<Record<FormatName, FormatCount>> = Object.fromEntries(FORMATS.map((f) => [f, { found: 0, of: 0 }]));
    const tally = (c: FormatCount | undefined, r: boolean | undefined) => {
      if (!c || r === undefined) return;
      c.of += 1;
      if (r) c.found += 1;
    };
    for (const { contact, variants } of sample) {
      for (const f of crmFormats) tally(crm[f], await attempt(() => probe.crmFinds(ctx(), variants[f], contact.id)));
      for (const f of FORMATS) {
        tally(
          mine[f],
          await attempt(async () =>
            (await provider.searchLeadByContact!(ctx(), { phone: variants[f] })).contacts.some((c) => String(c.id) === String(contact.id)),
          ),
        );
      }
    }

    const users = await attempt(async () => provider.users?.(ctx()));
    const leadFields = await attempt(async () => provider.customFields?.(ctx(), probe.leadFields));
    const contactFields = await attempt(async () => provider.customFields?.(ctx(), 'contacts'));
    tallyPaths = false;
    const totals = await attempt(() => probe.totals(ctx));
    const paths = probe.pagePaths;
    const pagesOf = (path: string | undefined) => (path !== undefined ? [...perPath].filter(([p]) => p === path).reduce((n, [, c]) => n + c, 0) : null);
    const lists = {
      users: { read: users?.length ?? null, total: totals?.users ?? null, pages: pagesOf(paths?.users) },
      lead_fields: { read: leadFields?.length ?? null, total: totals?.leadFields ?? null, pages: pagesOf(paths?.leadFields) },
      contact_fields: { read: contactFields?.length ?? null, total: totals?.contactFields ?? null, pages: pagesOf(paths?.contactFields) },
    };
    const filters = probe.filters ? await probe.filters.read(ctx, attempt, first?.items ?? []) : null;

    const findings: Finding[] = [
      probe.searchFinding(crm),
      ...duplicateFindings(mine),
      ...listFindings(probe.listWording, lists),
      ...(filters && probe.filters ? [probe.filters.finding(filters)] : []),
    ];
    const profile = probe.rate.profile;
    findings.push(rateFinding(probe.rate, throttled));
    const budget = probe.budget ? probe.budget.rows() : null;
    if (budget) findings.push(...probe.budget!.findings(budget));
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

/** The probe's text: what it sampled, what the searches found, the rate limit, the CRM's own lines, the findings. */
export function renderDeep(r: DeepReport): string {
  const lines = [`  deep probe: ${r.requests} read requests (limit ${r.request_limit})`];
  lines.push(`    sampled contacts: ${r.sampled.map((s) => `${s.id} (${s.phone_shape})`).join(', ') || 'none with a phone'}`);
  const fmt = (c: Partial<Record<FormatName, FormatCount>>) =>
    (Object.entries(c) as Array<[FormatName, FormatCount]>).map(([f, x]) => `${f} ${x.found}/${x.of}`).join(', ');
  lines.push(`    phone search, the CRM's own: ${fmt(r.phone_search.crm)}`);
  lines.push(`    phone search, crm-mcp duplicate check: ${fmt(r.phone_search.crm_mcp)}`);
  lines.push(`    rate limit: ${r.rate_limit.profile}; throttled ${r.rate_limit.throttled}`);
  lines.push(...(defaultRegistry.get(r.provider)?.doctor?.renderDeep?.(r) ?? []));
  for (const f of r.findings) {
    const mark = f.holds === null ? '?' : f.holds ? 'ok' : 'NO';
    lines.push(`    [${mark}] ${f.assumption}: ${f.detail}${f.holds === false ? `\n          → ${f.action}` : ''}`);
  }
  return lines.join('\n');
}
