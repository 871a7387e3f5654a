/**
 * Kommo's part of `crm-mcp doctor --deep` (doctor-types.ts `DeepProbe`), loaded when the probe runs: how its
 * own search (`query`) is asked, how its lists are counted and paged, whether the account applies list
 * filters (§5.1), and the words of the findings. Reads only, through the probe's read-only context.
 */
import type { CallContext, CrmProvider } from '../types.js';
import { counted, FORMATS, verdict, type DeepProbe, type FilterCheck, type Finding } from '../doctor-types.js';
import { KOMMO_RPS } from './metadata.js';
import { provesDigitsMatch } from './phone-style.js';
import type { KommoProvider } from './provider.js';

function idOf(x: unknown): string {
  return String((x as { id?: unknown } | null)?.id);
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);

export function kommoDeepProbe(provider: CrmProvider): Promise<DeepProbe> {
  const p = provider as KommoProvider;
  const profile = `${KOMMO_RPS} requests/s per integration`;
  return Promise.resolve({
    // Kommo numbers without a country code are read in the account's country, as the provider does.
    country: async (ctx) => (await p.account(ctx)).country ?? undefined,
    // The one search crm-mcp relies on first (provider searchContacts) is by the national digits.
    searchFormats: [...FORMATS, 'digits'],
    async crmFinds(ctx, text, id) {
      const r = await p.raw(ctx, 'GET', '/api/v4/contacts', { query: text, limit: 250 }, undefined);
      const rows = (r.data as { _embedded?: { contacts?: unknown[] } } | null)?._embedded?.contacts ?? [];
      const row = rows.find((c) => idOf(c) === String(id));
      // The contact's national digits (the one digits-only spelling a sampled contact is asked by, unless it
      // is stored as bare digits, when it is found either way) prove how `query` matches: phone searches then
      // ask only the spellings this account needs (phone-style.ts).
      if (/^\d{5,}$/.test(text)) {
        if (row && provesDigitsMatch(text, row as Parameters<typeof provesDigitsMatch>[1])) await p.phoneStyle.learn('digits', 'doctor');
        else if (!row && rows.length < 250) await p.phoneStyle.learn('as-stored', 'doctor');
      }
      return row !== undefined;
    },
    searchFinding: (crm) => ({
      id: 'phone.crm_search.digits',
      assumption: "Kommo's `query` finds a stored phone by its national digits, however it is formatted",
      holds: verdict(crm.digits),
      detail: `${counted(crm.digits)} (by E.164 ${crm.e164?.found ?? 0}/${crm.e164?.of ?? 0}, as stored ${crm.as_stored?.found ?? 0}/${crm.as_stored?.of ?? 0}, national ${crm.national?.found ?? 0}/${crm.national?.of ?? 0})`,
      action:
        verdict(crm.digits) === false
          ? 'crm-mcp also searches the part after the area code as people format it (345-67-89, 345 67 89, 3456789), then compares the numbers itself; it remembers that this account needs it, so a search for a number nobody has costs 3 requests here instead of 1'
          : 'none needed (crm-mcp remembers it: a phone search here is one request)',
    }),
    leadFields: 'leads',
    async totals(ctx) {
      const total = async (path: string) =>
        num(((await p.raw(ctx(), 'GET', path, { limit: 1 }, undefined)).data as { _total_items?: unknown } | null)?._total_items);
      return {
        users: await total('/api/v4/users'),
        leadFields: await total('/api/v4/leads/custom_fields'),
        contactFields: await total('/api/v4/contacts/custom_fields'),
      };
    },
    pagePaths: { users: '/api/v4/users', leadFields: '/api/v4/leads/custom_fields', contactFields: '/api/v4/contacts/custom_fields' },
    listWording: {
      users: 'every user is read, however many pages the user list has',
      customFields: 'every custom field is read, although Kommo returns at most 50 fields a page whatever `limit` asks',
      leadFields: 'lead fields',
      contactFields: 'contact fields',
    },
    filters: {
      /**
       * Kommo accounts can have API filtering off (§5.1, `is_api_filter_enabled`): a filter by id then returns
       * unrelated rows. Read the flag, and check what a filter by one contact's id really returns.
       */
      async read(ctx: () => CallContext, attempt, seen): Promise<FilterCheck> {
        const acc = await attempt(() => p.raw(ctx(), 'GET', '/api/v4/account', { with: 'is_api_filter_enabled' }, undefined));
        const flag = (acc?.data as { is_api_filter_enabled?: unknown } | null)?.is_api_filter_enabled;
        const account_flag = typeof flag === 'boolean' ? flag : null;
        // With a single contact an unfiltered answer looks filtered: no verdict then.
        const target = seen.length >= 2 ? seen[seen.length - 1]!.id : undefined;
        if (target === undefined) return { account_flag, applied: null };
        const r = await attempt(() => p.raw(ctx(), 'GET', '/api/v4/contacts', { 'filter[id]': [Number(target)], limit: 5 }, undefined)); // sent as filter[id][]=…
        if (!r) return { account_flag, applied: null };
        const rows = (r.data as { _embedded?: { contacts?: unknown[] } } | null)?._embedded?.contacts ?? [];
        return { account_flag, applied: rows.length === 1 && idOf(rows[0]) === String(target) };
      },
      finding: filterFinding,
    },
    rate: {
      profile,
      assumption: `Kommo accepts ${profile} (HTTP 429 beyond)`,
      whenThrottled:
        'crm-mcp paces requests at 7/s and retries a 429 after a pause; another integration on this account may be using the same budget (share the limiter through Redis when several crm-mcp run: CRM_MCP_STORE=redis://…)',
    },
  });
}

function filterFinding(f: FilterCheck): Finding {
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
