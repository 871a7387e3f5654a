/**
 * The portal's country, for phone numbers typed without a country code (`912 345-67-89` on a Russian portal is
 * +7 912 345-67-89). Bitrix24 has no "portal country" method: `app.info` returns `LICENSE`, "the designation of
 * the plan with the region indicated as a prefix" (`de_project`, `ru_basic`, `by_std`, b24restdocs
 * api-reference/common/system/app-info.md; webhooks get `{SCOPE, LICENSE}` too, fact sheet §2.3). The prefix is
 * the portal's region (its base language zone), so only prefixes that name one country count; `en`, `la`, `eu`
 * and the like name a language zone across countries and give no default. Without one, a cloud portal's own
 * domain zone (`*.bitrix24.ru`, `.by`, `.kz`, fact sheet §1: the TLD is the account's zone) is the fallback.
 */

/** Region prefixes of LICENSE that are one country (ISO 3166-1 alpha-2). */
const REGION_COUNTRY: Record<string, string> = {
  ru: 'RU',
  by: 'BY',
  kz: 'KZ',
  ua: 'UA',
  uz: 'UZ',
  de: 'DE',
  pl: 'PL',
  fr: 'FR',
  it: 'IT',
  br: 'BR',
  tr: 'TR',
  mx: 'MX',
  co: 'CO',
  vn: 'VN',
  id: 'ID',
  jp: 'JP',
  in: 'IN',
  uk: 'GB',
};

/** Cloud portal zones (`<name>.bitrix24.<zone>`) that are one country. */
const ZONE_COUNTRY: Record<string, string> = {
  ru: 'RU',
  by: 'BY',
  kz: 'KZ',
  ua: 'UA',
  uz: 'UZ',
  de: 'DE',
  pl: 'PL',
  fr: 'FR',
  it: 'IT',
  'com.br': 'BR',
  'com.tr': 'TR',
  mx: 'MX',
  co: 'CO',
  vn: 'VN',
  id: 'ID',
  jp: 'JP',
  in: 'IN',
  'co.uk': 'GB',
  uk: 'GB',
};

/** The country of a LICENSE value such as `ru_basic`, or undefined. */
export function countryFromLicense(license: unknown): string | undefined {
  if (typeof license !== 'string') return undefined;
  const m = /^([a-z]{2})_/i.exec(license.trim());
  return m ? REGION_COUNTRY[m[1]!.toLowerCase()] : undefined;
}

/** The country of a cloud portal's domain zone (`acme.bitrix24.ru` → RU), or undefined for other hosts. */
export function countryFromHost(host: string): string | undefined {
  const m = /\.bitrix24\.([a-z.]+)$/i.exec(host.trim().toLowerCase());
  return m ? ZONE_COUNTRY[m[1]!] : undefined;
}

/** LICENSE first (what the portal says), then the domain zone. */
export function portalCountry(license: unknown, host: string): string | undefined {
  return countryFromLicense(license) ?? countryFromHost(host);
}
