/** Finding Kommo contacts, and their leads, by email or phone (Kommo's `query` plus an exact check). */
import { byOpenThenRecent } from '../../domain/dedupe.js';
import { badSearchPhone, checkSearchEmail, requireSearchKey } from '../../domain/validate.js';
import { normalizePhone, sameEmail, samePhone } from '../../util/phone.js';
import type { CallContext, SearchResult } from '../types.js';
import { PAGE_MAX } from './api.js';
import { phoneSpellings, provesDigitsMatch } from './phone-style.js';
import { mapContact, mapLead } from './map.js';
import type { KommoParts } from './metadata.js';
import { nameCompanies } from './records.js';
import { KContact, KLead } from './schemas.js';

export async function searchContacts(
  k: KommoParts,
  ctx: CallContext,
  q: { email?: string; phone?: string },
): Promise<{ contacts: KContact[]; e164: string | null }> {
  requireSearchKey(q);
  checkSearchEmail(q.email);
  const country = await k.meta.defaultCountry(ctx);
  const found = new Map<number, KContact>();
  let e164: string | null = null;
  if (q.phone) {
    const n = normalizePhone(q.phone, country);
    // A number that does not parse for the account's country (a foreign national one such as
    // `020 7946 0123` on a Russian account) is still searched by its digits: it is stored as typed.
    const raw = q.phone.replace(/\D+/g, '').replace(/^0+/, '');
    if (!n && raw.length < 7) badSearchPhone(q.phone);
    e164 = n?.e164 ?? null;
    // Kommo's `query` is a substring search over all fields (§6): search by the national digits, then keep
    // only contacts whose PHONE field really holds this number. Whether `query` compares the digits of a
    // formatted phone is UNVERIFIED (§6): phone-style.ts asks the spellings that can find it on this account.
    if (n) await byPhone(k, ctx, n, country, found);
    else {
      for (const text of [...new Set([raw, q.phone.trim()])]) {
        for (const c of await byQuery(k, ctx, text)) if (phonesOf(c).some((v) => samePhone(v, q.phone!, country))) found.set(c.id, c);
        if (found.size) break;
      }
    }
  }
  if (q.email) {
    for (const c of await byQuery(k, ctx, q.email.trim())) {
      const emails = (c.custom_fields_values ?? []).find((f) => f.field_code === 'EMAIL')?.values ?? [];
      if (emails.some((v) => sameEmail(String(v.value ?? ''), q.email!))) found.set(c.id, c);
    }
  }
  return { contacts: [...found.values()], e164 };
}

async function byQuery(k: KommoParts, ctx: CallContext, text: string): Promise<KContact[]> {
  const q = new URLSearchParams({ query: text, with: 'leads', limit: String(PAGE_MAX) });
  return (await k.api.page(ctx, '/api/v4/contacts', 'contacts', q, KContact)).items;
}

function phonesOf(c: KContact): string[] {
  return ((c.custom_fields_values ?? []).find((f) => f.field_code === 'PHONE')?.values ?? []).map((v) => String(v.value ?? ''));
}

/**
 * The contacts holding this number: its spellings in the order the account's `query` needs (phone-style.ts),
 * until one finds it; what the finding proves about `query` is remembered for the next search.
 */
async function byPhone(
  k: KommoParts,
  ctx: CallContext,
  n: { e164: string; national: string },
  country: string | undefined,
  found: Map<number, KContact>,
): Promise<void> {
  const known = await k.phoneStyle.get();
  /** The national digits were asked, answered in full, and held nobody with this number. */
  let nationalMissed = false;
  for (const { spelling, text } of phoneSpellings(n.e164, n.national, known)) {
    const rows = await byQuery(k, ctx, text);
    const hits = rows.filter((c) => phonesOf(c).some((v) => samePhone(v, n.e164, country)));
    for (const c of hits) found.set(c.id, c);
    if (!hits.length) {
      if (spelling === 'national') nationalMissed = rows.length < PAGE_MAX;
      continue;
    }
    if (spelling === 'national') {
      if (hits.some((c) => provesDigitsMatch(text, c))) await k.phoneStyle.learn('digits', 'search');
    } else if (known?.match === 'as-stored' || (nationalMissed && hits.some((c) => phonesOf(c).some((v) => v.replace(/\D+/g, '').includes(n.national))))) {
      // Digits that a digits-comparing `query` would have matched went unmatched: it compares text as stored.
      await k.phoneStyle.learn('as-stored', 'search', spelling);
    }
    return;
  }
}

export async function searchLeadByContact(k: KommoParts, ctx: CallContext, q: { email?: string; phone?: string }): Promise<SearchResult> {
  const { contacts, e164 } = await searchContacts(k, ctx, q);
  const leadIds = [...new Set(contacts.flatMap((c) => (c._embedded?.leads ?? []).map((x) => x.id)))];
  const rawLeads = leadIds.length ? await k.api.byIds(ctx, 'leads', leadIds, KLead, 'contacts') : [];
  const l = await k.meta.lookups(ctx);
  const leads = rawLeads.map((x) => mapLead(x, l)).sort(byOpenThenRecent);
  const people = contacts.map((c) => mapContact(c, l));
  await nameCompanies(k, ctx, [...people, ...leads]);
  return {
    query: { ...(q.email ? { email: q.email } : {}), ...(q.phone ? { phone: q.phone, phone_e164: e164 } : {}) },
    contacts: people,
    leads,
  };
}

/** A query that is a phone number: phone punctuation only, with 7 to 15 digits (E.164's maximum). */
export function looksLikePhone(text: string): boolean {
  const digits = text.replace(/\D+/g, '').length;
  return /^\+?[\d\s().-]+$/.test(text.trim()) && digits >= 7 && digits <= 15;
}

export const looksLikeEmail = (text: string): boolean => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text.trim());

/**
 * list_leads `query` as a phone or an email: the ids of the leads of the contacts holding it, found as
 * search_lead_by_contact finds them (at most one page of ids). Undefined when the query is neither or nobody
 * holds it (then Kommo's text `query` applies, as for any other text).
 */
export async function contactLeadIds(k: KommoParts, ctx: CallContext, query: string): Promise<number[] | undefined> {
  const text = query.trim();
  const isEmail = looksLikeEmail(text);
  if (!isEmail && !looksLikePhone(text)) return undefined;
  const { contacts } = await searchContacts(k, ctx, isEmail ? { email: text } : { phone: text });
  if (!contacts.length) return undefined;
  return [...new Set(contacts.flatMap((c) => (c._embedded?.leads ?? []).map((x) => x.id)))].slice(0, PAGE_MAX);
}

/** The `query` texts of a phone search on an account whose `query` behaviour is not known yet (phone-style.ts). */
export function phoneQueries(e164: string, national: string): string[] {
  return phoneSpellings(e164, national).map((x) => x.text);
}

/** The company with exactly this name (Kommo's `query` is a substring search, §6), if there is one. */
export async function findCompany(k: KommoParts, ctx: CallContext, name: string): Promise<number | undefined> {
  const q = new URLSearchParams({ query: name.trim(), limit: '50' });
  return (await k.api.page(ctx, '/api/v4/companies', 'companies', q, KContact)).items.find(
    (c) => (c.name ?? '').trim().toLowerCase() === name.trim().toLowerCase(),
  )?.id;
}
