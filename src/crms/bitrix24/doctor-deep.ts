/**
 * Bitrix24's part of `crm-mcp doctor --deep` (doctor-types.ts `DeepProbe`): how its own search
 * (crm.duplicate.findbycomm) is asked, how its lists are counted, its leaky bucket and the operating-time
 * budget per method (§5), and the words of the findings. Reads only, through the probe's read-only context.
 * Light at the top (the module renders the budget line from here); the provider's parts load with the probe.
 */
import type { CrmProvider } from '../types.js';
import { FORMATS, type BudgetRow, type DeepProbe, type DeepReport, type Finding } from '../doctor-types.js';
import type { BitrixProvider } from './provider.js';
import { OPERATING_LIMIT_SEC } from './readahead.js';

export async function bitrixDeepProbe(provider: CrmProvider): Promise<DeepProbe> {
  const p = provider as BitrixProvider;
  const { BITRIX_PLANS } = await import('./metadata.js');
  const plan = BITRIX_PLANS[p.conn.plan];
  const profile = `${plan.capacity} burst, ${plan.drain} requests/s`;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);
  return {
    searchFormats: [...FORMATS],
    async crmFinds(ctx, text, id) {
      const r = await p.call<{ CONTACT?: unknown[] } | unknown[]>(ctx, 'crm.duplicate.findbycomm', {
        type: 'PHONE',
        values: [text],
        entity_type: 'CONTACT',
      });
      const ids = r.result && !Array.isArray(r.result) ? (r.result.CONTACT ?? []) : [];
      return ids.some((x) => String(x) === String(id));
    },
    searchFinding: (crm) => ({
      id: 'phone.crm_search.normalised',
      assumption: 'crm.duplicate.findbycomm compares normalised phones, so any spelling with the country code or trunk prefix finds the number',
      holds: crm.e164?.of && crm.national?.of ? crm.e164.found === crm.e164.of && crm.national.found === crm.national.of : null,
      detail: `as stored ${crm.as_stored?.found ?? 0}/${crm.as_stored?.of ?? 0}, E.164 ${crm.e164?.found ?? 0}/${crm.e164?.of ?? 0}, national ${crm.national?.found ?? 0}/${crm.national?.of ?? 0}`,
      action:
        'crm-mcp does not rely on it: each search sends the number in the common spellings (E.164, digits, international and national layouts) in one request, and a spelling outside those is only found if the portal normalises',
    }),
    leadFields: 'deals',
    async totals(ctx) {
      // The same order the provider pages by (users.ts); `total` counts every page.
      const r = await p.call<unknown[]>(ctx(), 'user.get', { sort: 'ID', order: 'ASC', start: 0 });
      return { users: num(r.total), leadFields: null, contactFields: null };
    },
    listWording: {
      users: 'every user is read, beyond the first page of 50 `user.get` answers',
      customFields: 'every field is read (crm.*.fields is not paged)',
      leadFields: 'deal custom fields',
      contactFields: 'contact custom fields',
    },
    rate: {
      profile,
      assumption: `Bitrix24 accepts a leaky bucket of ${profile} (QUERY_LIMIT_EXCEEDED beyond)`,
      whenThrottled:
        'crm-mcp mirrors the bucket and retries after a pause; another application on this portal may be spending it, or the plan is not the one configured (BITRIX_PLAN)',
    },
    budget: { rows: () => budgetRows(p), findings: budgetFindings },
  };
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

function budgetFindings(rows: BudgetRow[]): Finding[] {
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

/** The text report's line for the operating budget, the three busiest methods. */
export function renderBitrixDeep(r: DeepReport): string[] {
  if (!r.operating_budget?.length) return [];
  return [
    `    operating budget (of ${OPERATING_LIMIT_SEC} s / 10 min): ${r.operating_budget
      .slice(0, 3)
      .map((b) => `${b.method} ${b.operating_sec} s`)
      .join(', ')}`,
  ];
}
