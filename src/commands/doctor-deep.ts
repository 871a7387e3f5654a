/**
 * `crm-mcp doctor --deep`: checks, on the user's own account and read-only, the assumptions crm-mcp makes
 * about the CRM that no documentation settles: how the CRM's own search matches phone numbers, whether list
 * filters are applied, how lists page, how many users and fields there are, and the rate-limit budget.
 *
 * It sends a bounded number of read requests (at most about 40, paced by the normal rate limiter), every
 * one under a read-only grant, and reports ids and counts only — never a name, phone or email — so the
 * report can be pasted into a bug report.
 */
import { observeRequests } from '../http/client.js';
import { CrmError } from '../http/errors.js';
import { Grant } from '../policy/policy.js';
import { BitrixProvider } from '../providers/bitrix24/provider.js';
import { KommoProvider } from '../providers/kommo/provider.js';
import type { CallContext, Contact, CrmProvider } from '../providers/types.js';
import { normalizePhone, parsePhoneNumberFromString } from '../util/phone.js';

/** Contacts with phones sampled for the phone-format probe. */
export const DEEP_SAMPLE = 5;

export type FormatName = 'as_stored' | 'e164' | 'national';
export const FORMATS: readonly FormatName[] = ['as_stored', 'e164', 'national'];

export interface FormatCount {
  found: number;
  of: number;
}

export interface Finding {
  /** A stable id, e.g. `phone.crm_search.national`. */
  id: string;
  assumption: string;
  /** true: holds here; false: does not; null: could not be checked (no data, or an error). */
  holds: boolean | null;
  detail: string;
  /** What crm-mcp does about it. */
  action: string;
}

export interface DeepReport {
  connection: string;
  provider: 'kommo' | 'bitrix24';
  requests: number;
  sampled_contact_ids: Array<number | string>;
  phone_search: {
    /** What the CRM's own search returns for each input format (raw API). */
    crm: Record<FormatName, FormatCount>;
    /** What crm-mcp's duplicate check (search_lead_by_contact) finds for each format. */
    crm_mcp: Record<FormatName, FormatCount>;
  };
  counts: { users: number | null; lead_fields: number | null; contact_fields: number | null };
  findings: Finding[];
}

const ctx = (): CallContext => ({ grant: Grant.readOnly() });

/** The three ways a user types a stored number: as stored, E.164, and national with the trunk prefix. */
export function phoneVariants(stored: string, defaultCountry?: string): Record<FormatName, string> | undefined {
  const n = normalizePhone(stored, defaultCountry);
  if (!n) return undefined;
  const p = parsePhoneNumberFromString(n.e164);
  const national = p ? p.formatNational() : n.national;
  return { as_stored: stored, e164: n.e164, national };
}

function emptyCounts(): Record<FormatName, FormatCount> {
  return { as_stored: { found: 0, of: 0 }, e164: { found: 0, of: 0 }, national: { found: 0, of: 0 } };
}

/** Up to `n` contacts that have a phone, from the newest pages (at most 3 list requests). */
async function sampleContacts(provider: CrmProvider, n: number): Promise<Contact[]> {
  const out: Contact[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 3 && out.length < n; page++) {
    const p = await provider.listContacts(ctx(), { limit: 50, cursor });
    for (const c of p.items) if (c.phones.length > 0 && out.length < n) out.push(c);
    if (!p.has_more || !p.cursor) break;
    cursor = p.cursor;
  }
  return out;
}

/** Does the CRM's own search, given this text, return contact `id`? */
async function crmFinds(provider: CrmProvider, text: string, id: number | string): Promise<boolean> {
  if (provider instanceof KommoProvider) {
    const r = await provider.raw(ctx(), 'GET', '/api/v4/contacts', { query: text, limit: 50 }, undefined);
    const rows = ((r.data as { _embedded?: { contacts?: Array<{ id?: unknown }> } } | null)?._embedded?.contacts ?? []);
    return rows.some((c) => String(c.id) === String(id));
  }
  if (provider instanceof BitrixProvider) {
    const r = await provider.call<{ CONTACT?: unknown[] }>(ctx(), 'crm.duplicate.findbycomm', { type: 'PHONE', values: [text], entity_type: 'CONTACT' });
    const ids = (r.result && typeof r.result === 'object' && !Array.isArray(r.result) ? (r.result.CONTACT ?? []) : []) as unknown[];
    return ids.some((x) => String(x) === String(id));
  }
  return false;
}

async function mcpFinds(provider: CrmProvider, text: string, id: number | string): Promise<boolean> {
  const r = await provider.searchLeadByContact(ctx(), { phone: text });
  return r.contacts.some((c) => String(c.id) === String(id));
}

async function attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CrmError && e.code === 'policy_denied') throw e; // a bug: the probe must only read
    return undefined;
  }
}

/** Runs the deep probe on one connection. */
export async function deepProbe(provider: CrmProvider, opts: { sample?: number; defaultCountry?: string } = {}): Promise<DeepReport> {
  let requests = 0;
  return observeRequests(
    () => {
      requests += 1;
    },
    async () => {
      const findings: Finding[] = [];
      const crm = emptyCounts();
      const mine = emptyCounts();
      const sample = (await attempt(() => sampleContacts(provider, opts.sample ?? DEEP_SAMPLE))) ?? [];
      for (const c of sample) {
        const v = phoneVariants(c.phones[0]!, opts.defaultCountry);
        if (!v) continue;
        for (const f of FORMATS) {
          const raw = await attempt(() => crmFinds(provider, v[f], c.id));
          if (raw !== undefined) {
            crm[f].of += 1;
            if (raw) crm[f].found += 1;
          }
          const ours = await attempt(() => mcpFinds(provider, v[f], c.id));
          if (ours !== undefined) {
            mine[f].of += 1;
            if (ours) mine[f].found += 1;
          }
        }
      }
      const searchName = provider.kind === 'kommo' ? 'the `query` search' : 'crm.duplicate.findbycomm';
      for (const f of FORMATS) {
        const r = crm[f];
        findings.push({
          id: `phone.crm_search.${f}`,
          assumption: `${searchName} finds a stored phone typed ${f === 'as_stored' ? 'as stored' : f === 'e164' ? 'in E.164' : 'in national format'}`,
          holds: r.of === 0 ? null : r.found === r.of,
          detail: r.of === 0 ? 'no contact with a phone to try' : `${r.found} of ${r.of} sampled contacts found`,
          action:
            r.of === 0 || r.found === r.of
              ? 'none needed'
              : 'crm-mcp does not rely on it: the duplicate check also sends the other common spellings of the number and compares numbers itself',
        });
        const m = mine[f];
        findings.push({
          id: `phone.duplicate_check.${f}`,
          assumption: `crm-mcp's duplicate check finds an existing contact by a phone typed ${f === 'as_stored' ? 'as stored' : f === 'e164' ? 'in E.164' : 'in national format'}`,
          holds: m.of === 0 ? null : m.found === m.of,
          detail: m.of === 0 ? 'no contact with a phone to try' : `${m.found} of ${m.of} sampled contacts found`,
          action: m.of === 0 || m.found === m.of ? 'none needed' : 'please report this: create_contact/create_lead could make a duplicate on this account',
        });
      }

      const users = await attempt(() => provider.users(ctx()));
      const leadFields = await attempt(() => provider.customFields(ctx(), provider.kind === 'kommo' ? 'leads' : 'deals'));
      const contactFields = await attempt(() => provider.customFields(ctx(), 'contacts'));
      findings.push({
        id: 'paging.users',
        assumption: 'every user is read, however many pages the user list has',
        holds: users === undefined ? null : true,
        detail: users === undefined ? 'could not list users' : `${users.length} users read${users.length > 50 ? ' (more than one page)' : ''}`,
        action: 'users are paged to the end and cached',
      });
      findings.push({
        id: 'paging.custom_fields',
        assumption: 'every custom field is read, however many pages the field list has',
        holds: leadFields === undefined ? null : true,
        detail: leadFields === undefined ? 'could not list fields' : `${leadFields.length} lead fields and ${contactFields?.length ?? '?'} contact fields read`,
        action: 'field lists are paged to the end (Kommo returns at most 50 fields a page)',
      });

      if (provider instanceof KommoProvider) findings.push(await kommoFilterProbe(provider, sample[0]?.id));
      findings.push(rateLimitFinding(provider));
      return {
        connection: provider.connection,
        provider: provider.kind,
        requests,
        sampled_contact_ids: sample.map((c) => c.id),
        phone_search: { crm, crm_mcp: mine },
        counts: { users: users?.length ?? null, lead_fields: leadFields?.length ?? null, contact_fields: contactFields?.length ?? null },
        findings,
      };
    },
  );
}

/** Kommo accounts can have API filtering off: a filter by id then returns unrelated rows. */
async function kommoFilterProbe(provider: KommoProvider, contactId: number | string | undefined): Promise<Finding> {
  const base = { id: 'filters.kommo', assumption: 'Kommo applies `filter[...]` parameters on list requests', action: '' };
  if (contactId === undefined) return { ...base, holds: null, detail: 'no contact to filter by', action: 'none' };
  const r = await attempt(() => provider.raw(ctx(), 'GET', '/api/v4/contacts', { 'filter[id][]': [Number(contactId)], limit: 5 }, undefined));
  const rows = ((r?.data as { _embedded?: { contacts?: Array<{ id?: unknown }> } } | null)?._embedded?.contacts ?? []);
  if (!r) return { ...base, holds: null, detail: 'the filtered request failed', action: 'none' };
  const holds = rows.length > 0 && rows.every((c) => String(c.id) === String(contactId));
  return {
    ...base,
    holds,
    detail: holds ? 'a filter by id returned only that contact' : `a filter by id returned ${rows.length} rows, not only the one asked for`,
    action: holds ? 'none needed' : 'list filters (stage, dates, responsible user) are not applied on this account: results of list_leads filters may be wrong; please report it',
  };
}

function rateLimitFinding(provider: CrmProvider): Finding {
  if (provider instanceof KommoProvider) {
    return {
      id: 'rate_limit',
      assumption: 'Kommo allows 7 requests per second per integration',
      holds: true,
      detail: 'no 429 was met during the probe',
      action: 'requests are paced at 7/s with a sliding window (shared through Redis when CRM_MCP_STORE is redis://)',
    };
  }
  return {
    id: 'rate_limit',
    assumption: 'Bitrix24 allows a burst of 50 (enterprise 250) then 2 (5) requests per second, and 480 s of operating time per method per 10 minutes',
    holds: true,
    detail: 'no QUERY_LIMIT_EXCEEDED or OPERATION_TIME_LIMIT was met during the probe',
    action: 'requests go through a leaky bucket mirroring the portal’s; a method over its operating budget is paused until its reset',
  };
}

export function renderDeep(r: DeepReport): string {
  const lines = [`  deep probe (${r.requests} read requests; contact ids sampled: ${r.sampled_contact_ids.join(', ') || 'none'})`];
  const fmt = (c: Record<FormatName, FormatCount>) => FORMATS.map((f) => `${f} ${c[f].found}/${c[f].of}`).join(', ');
  lines.push(`    phone search, the CRM's own: ${fmt(r.phone_search.crm)}`);
  lines.push(`    phone search, crm-mcp duplicate check: ${fmt(r.phone_search.crm_mcp)}`);
  for (const f of r.findings) {
    const mark = f.holds === null ? '?' : f.holds ? 'ok' : 'NO';
    lines.push(`    [${mark}] ${f.assumption}: ${f.detail}${f.holds === false ? ` → ${f.action}` : ''}`);
  }
  return lines.join('\n');
}
