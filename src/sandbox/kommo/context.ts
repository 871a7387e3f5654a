/** What every handler gets: the state, the request, the acting user, and link/body helpers. */
import type { EmuRequest } from '../harness.js';
import { badJson, E, emptyBody, tooMany, validationError } from './responses.js';
import type { KommoState } from './types.js';

export interface Ctx {
  readonly state: KommoState;
  /** The emulator origin; every `_links` href is absolute on it (§4). */
  readonly origin: string;
  readonly req: EmuRequest;
  /** The query string parsed PHP-style (`filter[id][]=1` → `{ filter: { id: ['1'] } }`). */
  readonly params: Record<string, unknown>;
  /** The user the token acts as. */
  readonly userId: number;
  readonly now: number;
  /** Where the real API's behaviour is undocumented or disputed: the variant this emulator plays. */
  readonly behaviour: KommoBehaviour;
}

/**
 * Variants of behaviour the sources leave open (or that are account settings). A provider's tests should pass
 * under every variant, so none of them can hide a client that relies on a kind emulator.
 */
export interface KommoBehaviour {
  /**
   * Order of `GET /leads|contacts|companies` without `order[...]`: undocumented (§5.1 lists the order fields,
   * not the default; the docs' examples show ids both ways: fixture GET_leads.json descending,
   * GET_contacts.json / GET_companies.json ascending). Default 'id_asc'.
   */
  defaultOrder: 'id_asc' | 'id_desc';
  /**
   * `filter[statuses]` with more than one pair (§5.1): the amoCRM filter docs and SDKs send arrays of pairs
   * ('pairs', OR-ed; the default), Kommo's leads page says "you can filter only one stage in one pipeline":
   * 'first_pair' plays an API that silently uses the first pair, 'one_pair' one that refuses more (400).
   */
  statusFilter: 'pairs' | 'first_pair' | 'one_pair';
  /**
   * §5.5: the account's duplicate control for this integration ("only if duplicate control is enabled in the
   * account for this integration"; the API does not say whether it is). When on, `POST /leads/complex` whose
   * contact is an existing one (given by id, or new with a phone or email of an existing contact) is merged
   * into that contact's most recently updated open lead: the existing lead takes the incoming price, custom
   * field values and tags and a new `updated_at`, and the answer carries its ids with `merged: true`. A
   * contact without an open lead is no duplicate: the lead is created. `POST /leads` and `POST /contacts`
   * never merge. Default off.
   */
  duplicateControl: boolean;
  /**
   * How `query` matches a phone (§6: "Exact matching algorithm of `query` is UNVERIFIED"; the stored format
   * matters, `+79995551122` and `89995551122` are different strings). 'digits' (default): a query of 5+ digits
   * also matches the digits-only form of PHONE values; 'as-stored': only a case-insensitive substring of the
   * stored text, so `9123456789` does not find `+7 912 345-67-89`.
   */
  phoneQuery: 'digits' | 'as-stored';
  /**
   * §5.1: the full `filter[...]` set "was long documented as alpha, available to a limited list of accounts;
   * account flag `is_api_filter_enabled`" — which filters are gated today is UNVERIFIED. 'applied' (default);
   * 'ignored' plays an account with API filtering off, strictest reading: the lead/contact/company lists
   * validate `filter[...]` as usual but return unfiltered rows, and `GET /account?with=is_api_filter_enabled`
   * says false.
   */
  filters: 'applied' | 'ignored';
}

export const DEFAULT_BEHAVIOUR: KommoBehaviour = {
  defaultOrder: 'id_asc',
  statusFilter: 'pairs',
  duplicateControl: false,
  phoneQuery: 'digits',
  filters: 'applied',
};

export function href(ctx: Ctx, path: string): { href: string } {
  return { href: `${ctx.origin}${path}` };
}

export function selfLink(ctx: Ctx, path: string): { self: { href: string } } {
  return { self: href(ctx, path) };
}

/** Reads the JSON body; an empty one is the documented 400 "Request data can not be empty" (§11). */
export function jsonBody(ctx: Ctx): unknown {
  const raw = ctx.req.rawBody.trim();
  if (!raw) throw emptyBody();
  let v: unknown;
  try {
    v = phpDecode(JSON.parse(raw));
  } catch {
    throw badJson();
  }
  if (v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0)) throw emptyBody();
  return v;
}

/**
 * Kommo is PHP: `json_decode($body, true)` makes `{"0":{…},"1":{…}}` the same array as `[{…},{…}]` and `{}`
 * the same as `[]` (emulator choice, from PHP's documented decoding: the fact sheet does not say which
 * decoder Kommo uses). A non-empty object whose keys are all integers is therefore a list here too.
 */
export function phpDecode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(phpDecode);
  if (!isObject(v)) return v;
  const keys = Object.keys(v);
  const decoded = keys.map((k) => [k, phpDecode(v[k])] as const);
  // `{}` stays an object: empty, PHP's array fits an object slot and a list slot alike.
  if (keys.length && keys.every((k) => /^(0|-?[1-9]\d{0,17})$/.test(k))) return decoded.map(([, x]) => x);
  return Object.fromEntries(decoded);
}

/**
 * The body of a batch write: a JSON array (§5.3) of at most `max` elements; more → 422 (§3). A lone object
 * is not accepted: Kommo's batch methods take arrays even for one entity.
 */
export function arrayBody(ctx: Ctx, max = 250): unknown[] {
  const v = jsonBody(ctx);
  if (!Array.isArray(v)) throw validationError([{ request_id: '0', errors: [E.type('', 'array')] }]);
  if (v.length > max) throw tooMany(max);
  return v;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Request ids are echoed unchanged, or the element index as a string when absent (§5.3). */
export function requestIdOf(item: unknown, index: number): string {
  if (isObject(item) && (typeof item.request_id === 'string' || typeof item.request_id === 'number')) return String(item.request_id);
  return String(index);
}
