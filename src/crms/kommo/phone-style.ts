/**
 * How this Kommo account's `query` matches a phone, learnt once and kept in the store so a phone search
 * asks the one spelling that works instead of every spelling (§6: the matching is UNVERIFIED, and accounts
 * may differ). Two behaviours are possible, and each is learnt only from proof:
 *
 * - `digits`: `query` compares the digits of a formatted number. Proof: the national digits found a contact
 *   none of whose fields holds those digits as typed. Then the national digits find every spelling, so a
 *   phone search is one request, found or not.
 * - `as-stored`: `query` is a plain substring search. Proof: the national digits missed a contact that holds
 *   this number (a later spelling found it). The number must then be asked in each spelling people store;
 *   the national digits are left out when the digits after the area code are asked (every text holding the
 *   first holds the second), and the spelling that last found someone goes first.
 *
 * Unknown (a fresh account, or the record expired): every spelling, national digits first, as before. A
 * wrong `as-stored` only costs requests; `digits` skips spellings, so it needs the proof above and expires
 * after 30 days (Kommo may change its search) unless a search proves it again.
 */
import type { Store } from '../../store/store.js';
import { parsePhoneNumberFromString } from '../../util/phone.js';

export type QueryMatch = 'digits' | 'as-stored';
/** The spellings of a phone search: national digits, or the digits after the area code joined by `-`, ` ` or nothing. */
export type Spelling = 'national' | 'dashes' | 'spaces' | 'joined';

export interface PhoneStyleRecord {
  match: QueryMatch;
  /** `as-stored`: the spelling that last found a contact (asked first). */
  spelling?: Spelling;
  learned_at: number;
  /** Who learnt it: `crm-mcp doctor --deep`, or a search that found someone. */
  by: 'doctor' | 'search';
}

const TTL_MS = 30 * 86_400_000;
/** A record proven again is written back at most this often (the TTL restarts then). */
const REFRESH_MS = 86_400_000;

/** Per account (its origin): every connection and instance on one account shares what its search does. */
export function kommoPhoneStyleKey(baseUrl: string): string {
  return `search-style:kommo:${baseUrl}`;
}

const SPELLINGS: readonly Spelling[] = ['national', 'dashes', 'spaces', 'joined'];

function valid(r: unknown): r is PhoneStyleRecord {
  const x = r as Partial<PhoneStyleRecord> | null;
  return (
    !!x && (x.match === 'digits' || x.match === 'as-stored') && typeof x.learned_at === 'number' && (x.spelling === undefined || SPELLINGS.includes(x.spelling))
  );
}

/** The remembered behaviour of one account's `query`: read from the store once, written when learnt. */
export class PhoneStyle {
  private current: PhoneStyleRecord | undefined;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly baseUrl: string,
  ) {}

  /** The remembered behaviour; undefined when unknown. A store that cannot be read means unknown (tried again next time). */
  async get(): Promise<PhoneStyleRecord | undefined> {
    this.loading ??= this.store.get<unknown>(kommoPhoneStyleKey(this.baseUrl)).then(
      (r) => {
        if (valid(r) && Date.now() - r.learned_at < TTL_MS) this.current ??= r;
      },
      () => {
        this.loading = undefined;
      },
    );
    await this.loading;
    return this.current;
  }

  /** Records what a search or the probe proved. A store that cannot be written keeps it for this process only. */
  async learn(match: QueryMatch, by: PhoneStyleRecord['by'], spelling?: Spelling): Promise<void> {
    const was = await this.get();
    const same = was !== undefined && was.match === match && (match === 'digits' || spelling === undefined || was.spelling === spelling);
    if (same && Date.now() - was.learned_at < REFRESH_MS) return;
    const keep = match === 'as-stored' ? (spelling ?? (was?.match === 'as-stored' ? was.spelling : undefined)) : undefined;
    const rec: PhoneStyleRecord = { match, ...(keep ? { spelling: keep } : {}), learned_at: Date.now(), by };
    this.current = rec;
    await this.store.set(kommoPhoneStyleKey(this.baseUrl), rec, TTL_MS).catch(() => undefined);
  }
}

/** One `query` text of a phone search, and the spelling it is. */
export interface PhoneQuery {
  spelling: Spelling;
  text: string;
}

/**
 * The `query` texts of a phone search, in the order they are asked until one finds the number: for an
 * unknown account the national digits, then the part after the area code as libphonenumber groups it, joined
 * by dashes, spaces or nothing (substrings of the formatted spellings, whatever precedes it).
 */
export function phoneSpellings(e164: string, national: string, known?: PhoneStyleRecord): PhoneQuery[] {
  if (known?.match === 'digits') return [{ spelling: 'national', text: national }];
  const out: PhoneQuery[] = [{ spelling: 'national', text: national }];
  const rest = parsePhoneNumberFromString(e164)?.formatInternational().split(/\s+/).slice(2) ?? [];
  const tails: PhoneQuery[] =
    rest.length > 1
      ? [
          { spelling: 'dashes', text: rest.join('-') },
          { spelling: 'spaces', text: rest.join(' ') },
          { spelling: 'joined', text: rest.join('') },
        ]
      : rest.map((text) => ({ spelling: 'joined' as const, text }));
  for (const t of tails) if (t.text.replace(/\D+/g, '').length >= 5 && !out.some((o) => o.text === t.text)) out.push(t);
  if (known?.match !== 'as-stored') return out;
  // A substring search finds everything the national digits would through the shorter joined digits.
  const joined = out.find((q) => q.spelling === 'joined' && national.endsWith(q.text));
  const asked = joined ? out.filter((q) => q.spelling !== 'national') : out;
  const first = asked.findIndex((q) => q.spelling === known.spelling);
  return first > 0 ? [asked[first]!, ...asked.filter((_, i) => i !== first)] : asked;
}

/** Every text of a Kommo record `query` may have matched: names and every custom field value. */
export function recordTexts(c: {
  name?: string | null;
  first_name?: string | null;
  last_name?: string | null;
  custom_fields_values?: Array<{ values?: Array<{ value?: unknown }> | null }> | null;
}): string[] {
  const out = [c.name ?? '', c.first_name ?? '', c.last_name ?? ''];
  for (const f of c.custom_fields_values ?? []) for (const v of f.values ?? []) out.push(String(v.value ?? ''));
  return out;
}

/** A digits-only query returned this record though no text of it holds those digits as typed: `query` compares digits. */
export function provesDigitsMatch(text: string, record: Parameters<typeof recordTexts>[0]): boolean {
  return /^\d{5,}$/.test(text) && !recordTexts(record).some((t) => t.toLowerCase().includes(text.toLowerCase()));
}
