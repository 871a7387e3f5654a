/**
 * Person names, split the same way on every CRM: explicit first/last names win; a single `name` is split at
 * its last space ("Ada King Lovelace" → first "Ada King", last "Lovelace"); one word is a first name.
 */
export interface PersonName {
  first: string | undefined;
  last: string | undefined;
  /** The full name to show (first + last), or undefined when none was given. */
  full: string | undefined;
}

export function splitName(p: { first_name?: string; last_name?: string; name?: string } | undefined): PersonName {
  const first = p?.first_name?.trim() || undefined;
  const last = p?.last_name?.trim() || undefined;
  if (first || last) return { first, last, full: [first, last].filter(Boolean).join(' ') };
  const whole = p?.name?.trim().replace(/\s+/g, ' ');
  if (!whole) return { first: undefined, last: undefined, full: undefined };
  const cut = whole.lastIndexOf(' ');
  return cut < 0 ? { first: whole, last: undefined, full: whole } : { first: whole.slice(0, cut), last: whole.slice(cut + 1), full: whole };
}
