/**
 * What a wing brings to the events feature (src/events/, src/transports/hooks/): receiving its CRM's webhooks,
 * pulling its offline events, binding and unbinding them. The general receiver names no CRM: it serves
 * `POST /hooks/<hookPath>[/<rest>]` for every module that declares `receive`, hands the delivery over, and
 * appends what comes back to the event log before it answers 2xx. Record history is a capability (`history`,
 * capabilities.ts), like any other read.
 */
import type { CrmEvent } from '../domain/events.js';
import type { HookBinding } from '../events/hook-secrets.js';
import type { Store } from '../store/store.js';
import type { CallContext } from './call-context.js';
import type { Check } from './doctor-types.js';
import type { CrmProvider } from './types.js';

/** One delivery as the receiver read it (the body already bounded in size). */
export interface HookDelivery {
  /** The path after `/hooks/<hookPath>`, split on `/` (a Kommo path secret travels here). */
  rest: readonly string[];
  contentType: string | undefined;
  body: string;
  /** ISO time the receiver read it (an event without a time of its own gets this). */
  receivedAt: string;
}

/**
 * What the receiver knows of a connection's binding (events/hook-secrets.ts): the sha256 hashes of the secrets
 * `events bind` stored (current first, then those in their grace period; the store never holds a secret) and
 * the account id learnt at bind time.
 */
export type HookSecrets = (connection: string) => Promise<HookBinding>;

export type HookVerdict =
  | { ok: true; connection: string; events: CrmEvent[] }
  /** 400 malformed, 403 not ours (wrong secret, token or account), 415 wrong content type. Nothing is stored. */
  | { ok: false; status: 400 | 403 | 404 | 415; reason: string };

export interface EventBinding {
  /** Lines to print: what was registered or removed, where. */
  lines: string[];
  /** `status` for `doctor --deep`: the same answer as report lines (a disabled webhook, a read the CRM refused), each with its fix. */
  checks?: Check[];
}

/** What `doctor` learns of a connection's receivers from the settings and the store alone. */
export interface ReceiverConfig {
  /** A receiver (webhook secret or token, or bound offline events) is set up: `doctor --deep` then asks the CRM (`status`). */
  configured: boolean;
  /** The report lines (check `events`): what is set up, and a warning with its fix where the pieces do not fit. */
  checks: Check[];
}

/** `C`: the wing's connection type (contract.ts binds it; this file stays below the contract). */
export interface EventsPart<C = unknown> {
  /** The receiver's path segment (`/hooks/<hookPath>`); without `receive` the CRM has no receiver. */
  readonly hookPath: string;
  /**
   * Checks that a delivery is from the configured account (secrets compared in constant time, never logged) and
   * turns it into events. Pure apart from `secrets`: no request to the CRM (the CRM wants a fast answer).
   */
  receive?(d: HookDelivery, conns: readonly C[], secrets: HookSecrets): Promise<HookVerdict>;
  /**
   * Pulls what the CRM queued while nobody listened (Bitrix24 offline events): fetches with the queue reserved,
   * hands the events to `store` (which resolves once they are durable), and only then clears the queue, so a
   * crash between the two loses nothing. Returns how many were pulled.
   */
  pull?(provider: CrmProvider, ctx: CallContext, store: (events: CrmEvent[]) => Promise<void>): Promise<number>;
  /** `crm-mcp events bind`: registers the CRM's webhook or offline events (an admin effect). */
  bind?(provider: CrmProvider, ctx: CallContext, o: { url?: string; rotate?: boolean; secretStore: Store }): Promise<EventBinding>;
  /** `crm-mcp events unbind`. */
  unbind?(provider: CrmProvider, ctx: CallContext, o: { url?: string; secretStore: Store }): Promise<EventBinding>;
  /**
   * `crm-mcp doctor`: whether a receiver is configured for the connection and whether its pieces fit (its
   * settings, what `events bind` stored, `pollSec` = CRM_EVENTS_POLL_S, `account` = the account doctor reached,
   * when it did). No request to the CRM.
   */
  check?(conn: C, o: { store: Store; pollSec: number; account?: number | string | null }): Promise<ReceiverConfig>;
  /** `crm-mcp events status` and `doctor --deep`: what the CRM has bound (a read; it says so when the CRM refuses the read). */
  status?(provider: CrmProvider, ctx: CallContext, o: { url?: string; secretStore: Store }): Promise<EventBinding>;
}
