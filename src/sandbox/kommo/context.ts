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
}

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
    v = JSON.parse(raw);
  } catch {
    throw badJson();
  }
  if (v === null || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0)) throw emptyBody();
  return v;
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
