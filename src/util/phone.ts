/**
 * Phone numbers: normalised with libphonenumber-js to E.164, so `+7 912 345-67-89`, `8 (912) 345 67 89` and
 * `79123456789` are the same number. CRMs store whatever people typed, so matching falls back to the
 * national significant digits when a stored value cannot be parsed.
 */
import { createRequire } from 'node:module';
import type { CountryCode } from 'libphonenumber-js/max';

type PhoneLib = typeof import('libphonenumber-js/max');
let lib: PhoneLib | undefined;
/** libphonenumber-js (with its metadata, the heaviest import) loads on the first phone operation, not at start-up. */
function phoneLib(): PhoneLib {
  lib ??= createRequire(import.meta.url)('libphonenumber-js/max') as PhoneLib;
  return lib;
}
export function parsePhoneNumberFromString(...args: Parameters<PhoneLib['parsePhoneNumberFromString']>): ReturnType<PhoneLib['parsePhoneNumberFromString']> {
  return phoneLib().parsePhoneNumberFromString(...args);
}

export interface NormalizedPhone {
  e164: string;
  /** National significant number (digits after the country code), what a substring search should use. */
  national: string;
  country: string | undefined;
}

function digits(s: string): string {
  return s.replace(/\D+/g, '');
}

/**
 * Normalises a phone number. `defaultCountry` is used for numbers without a country code; a Russian-style
 * trunk prefix (8XXXXXXXXXX, 11 digits) is understood without it since Kommo and Bitrix24 are full of them.
 */
export function normalizePhone(raw: string, defaultCountry?: string): NormalizedPhone | undefined {
  const trimmed = raw.trim();
  if (!trimmed) return undefined;
  const d = digits(trimmed);
  const candidates: Array<[string, CountryCode | undefined]> = [];
  if (trimmed.startsWith('+')) candidates.push([trimmed, undefined]);
  // The international call prefix typed instead of "+": 00 (most of the world), 810 (Russia's old one).
  if (!trimmed.startsWith('+') && /^00[1-9]/.test(d)) candidates.push([`+${d.slice(2)}`, undefined]);
  if (!trimmed.startsWith('+') && /^810[1-9]/.test(d) && d.length >= 13) candidates.push([`+${d.slice(3)}`, undefined]);
  if (defaultCountry) candidates.push([trimmed, defaultCountry.toUpperCase() as CountryCode]);
  if (/^8\d{10}$/.test(d)) candidates.push([d, 'RU']);
  if (!trimmed.startsWith('+') && d.length >= 11) candidates.push([`+${d}`, undefined]);
  for (const [text, country] of candidates) {
    const p = parsePhoneNumberFromString(text, country);
    if (p && p.isValid()) return { e164: p.number, national: p.nationalNumber, country: p.country };
  }
  for (const [text, country] of candidates) {
    const p = parsePhoneNumberFromString(text, country);
    if (p && p.isPossible()) return { e164: p.number, national: p.nationalNumber, country: p.country };
  }
  return undefined;
}

/** True when two stored/typed phone strings denote the same number. */
export function samePhone(a: string, b: string, defaultCountry?: string): boolean {
  const na = normalizePhone(a, defaultCountry);
  const nb = normalizePhone(b, defaultCountry);
  if (na && nb) return na.e164 === nb.e164;
  const da = digits(a);
  const db = digits(b);
  if (da.length < 7 || db.length < 7) return false;
  const tail = Math.min(10, da.length, db.length);
  return da.slice(-tail) === db.slice(-tail);
}

export function sameEmail(a: string, b: string): boolean {
  return a.trim().toLowerCase() === b.trim().toLowerCase();
}

/** A light sanity check for email input (the CRM is the final judge). */
export function looksLikeEmail(s: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s.trim());
}

/**
 * The ways people commonly type one number, for CRMs whose search compares stored strings as typed (a
 * Bitrix24 portal compared exactly, Kommo's substring query): E.164, bare digits, the international and
 * national layouts of libphonenumber with spaces, dashes or parentheses, and the national digits with and
 * without the trunk prefix (`89123456789`, `02079460123`). Duplicates removed, the likeliest first.
 */
export function phoneFormats(e164: string): string[] {
  const p = parsePhoneNumberFromString(e164);
  const out = new Set<string>([e164, digits(e164)]);
  if (p) {
    const cc = `+${p.countryCallingCode}`;
    const nsn = p.nationalNumber;
    const intl = p.formatInternational().split(/\s+/).slice(1);
    const [head, ...rest] = intl;
    const natText = p.formatNational();
    const nat = natText.split(/[^\d]+/).filter(Boolean);
    if (head) {
      out.add([cc, ...intl].join(' '));
      if (rest.length) {
        out.add(`${cc} ${head} ${rest.join('-')}`);
        out.add(`${cc} (${head}) ${rest.join('-')}`);
        out.add(`${cc} (${head}) ${rest.join(' ')}`);
      }
      out.add([cc, ...intl].join('-'));
    }
    out.add(`${cc} ${nsn}`);
    out.add(natText);
    out.add(nat.join(''));
    out.add(nsn);
    out.add(natText.replace(/-/g, ' '));
    out.add(nat.join(' '));
    if (nat.length > 2) out.add(`${nat[0]} ${nat[1]} ${nat.slice(2).join('-')}`);
    out.add(nat.join('-'));
  }
  return [...out].filter(Boolean);
}
