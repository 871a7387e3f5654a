/** What every emulated method sees: the portal state, the caller's auth, and a few portal services. */
import type { Params } from './params.js';
import type { BitrixState } from './state.js';

export interface AuthInfo {
  kind: 'webhook' | 'oauth';
  /** The user the call runs as (webhook owner, or the user the token was issued to). */
  userId: number;
  /** OAuth application (client_id) for app calls. */
  clientId?: string;
  scopes: string[];
}

export interface Portal {
  readonly state: BitrixState;
  /** Origin, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly memberId: string;
  now(): number;
  /** Fires a portal event (ONCRMLEADADD…) to bound handlers and offline queues (§9). */
  emit(event: string, data: Record<string, unknown>, userId: number): void;
  /** Names of every emulated method (for `methods`, `method.get`). */
  methodNames(scope?: string): string[];
  /** Scopes the emulator knows (for `scope?full=true`). */
  allScopes(): string[];
  license(): string;
  /** How findbycomm compares phones: the core's match code (default) or the stored string (§7.7, phone.ts). */
  phoneMatch(): 'core-normalized' | 'exact';
}

export interface CallCtx {
  portal: Portal;
  auth: AuthInfo;
  inBatch: boolean;
  /** Processing seconds the current HTTP request has used so far (real or simulated), for the time limit. */
  spent?: { sec: number };
}

/** What a method returns before the envelope is put around it (§3: `next`/`total` are hoisted). */
export interface MethodResult {
  result: unknown;
  total?: number;
  next?: number;
}

export type MethodHandler = (p: Params, ctx: CallCtx) => MethodResult;

export interface MethodDef {
  /** Scope the method needs (null = basic, always granted). */
  scope: string | null;
  handler: MethodHandler;
  /** Needs OAuth application context (§2.1: event.bind and friends fail with webhooks). */
  appOnly?: boolean;
}

export type Registry = Map<string, MethodDef>;

export const PAGE_SIZE = 50;

/**
 * Page a list the way CDBResult-based lists do (§4.1): `start` rounded down to a page of 50, `next` only when
 * more rows exist, `total` the full count; `start=-1` skips the count (`total: 0`, no `next`).
 */
export function paginate<T>(rows: T[], start: unknown): MethodResult {
  const s = parseStart(start);
  if (s === -1) return { result: rows.slice(0, PAGE_SIZE), total: 0 };
  const offset = Math.floor(s / PAGE_SIZE) * PAGE_SIZE;
  const out: MethodResult = { result: rows.slice(offset, offset + PAGE_SIZE), total: rows.length };
  if (offset + PAGE_SIZE < rows.length) out.next = offset + PAGE_SIZE;
  return out;
}

export function parseStart(v: unknown): number {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isFinite(n)) return 0;
  if (n === -1) return -1;
  return n < 0 ? 0 : Math.floor(n);
}
