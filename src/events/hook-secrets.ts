/**
 * The webhook secrets `crm-mcp events bind` generates, as the store keeps them: **hashes only** (sha256), the
 * current one and, after `--rotate`, the previous one until its grace period ends, so deliveries already on
 * their way to the old address still count. The secret itself is printed once and sent to the CRM once; nobody
 * can read it back from the store. What bind learnt about the account (its id) is kept beside the hashes, so the
 * receiver can check a delivery's account without asking the CRM. CRM-neutral: a wing's bind writes through
 * these functions, and the general receiver (src/transports/hooks/) reads through them.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';

/** How long a rotated-out secret keeps working (`events bind --rotate`). */
export const HOOK_SECRET_GRACE_MS = 24 * 60 * 60 * 1000;

/** The shortest path secret accepted (generated ones and configured ones alike). */
export const MIN_HOOK_SECRET_LENGTH = 32;

export interface StoredHookSecrets {
  /** sha256 (hex) of the current secret. */
  current: string;
  /** The rotated-out secret's hash and when it stops working (ms since the epoch). */
  previous?: { hash: string; until: number };
  /** The CRM account the binding was made for (its id), as the CRM named it at bind time. */
  account_id?: string;
  /** Where the CRM was told to send (without the secret). */
  base_url?: string;
  bound_at: string;
}

/** What the receiver knows of one connection's binding: the hashes valid now, and the account it is for. */
export interface HookBinding {
  hashes: readonly string[];
  account_id?: string;
}

const key = (connection: string) => `events:hook-secret:${connection}`;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new path secret: 32 random bytes, base64url (43 characters, safe in a URL path). */
export function newHookSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `secret` hashes to one of `hashes`: every candidate is compared, in constant time, over equal-length digests. */
export function secretMatches(secret: string, hashes: readonly string[]): boolean {
  const got = Buffer.from(hashSecret(secret), 'hex');
  let ok = false;
  for (const h of hashes) {
    const want = Buffer.from(h, 'hex');
    if (want.length === got.length && timingSafeEqual(want, got)) ok = true;
  }
  return ok;
}

export function readHookSecrets(store: Store, connection: string): Promise<StoredHookSecrets | undefined> {
  return store.get<StoredHookSecrets>(key(connection));
}

/** The hashes valid at `now` and the account, for the receiver. */
export async function hookBinding(store: Store, connection: string, now: number = Date.now()): Promise<HookBinding> {
  const s = await readHookSecrets(store, connection);
  if (!s) return { hashes: [] };
  const hashes = [s.current, ...(s.previous && s.previous.until > now ? [s.previous.hash] : [])];
  return { hashes, ...(s.account_id ? { account_id: s.account_id } : {}) };
}

/**
 * Stores a new secret's hash. With `rotate`, the current hash becomes the previous one for the grace period;
 * without, any earlier binding is replaced at once.
 */
export async function saveHookSecret(
  store: Store,
  connection: string,
  secret: string,
  o: { rotate: boolean; accountId?: string; baseUrl?: string; now?: number },
): Promise<StoredHookSecrets> {
  const now = o.now ?? Date.now();
  const before = await readHookSecrets(store, connection);
  const rec: StoredHookSecrets = {
    current: hashSecret(secret),
    ...(o.rotate && before ? { previous: { hash: before.current, until: now + HOOK_SECRET_GRACE_MS } } : {}),
    ...((o.accountId ?? before?.account_id) ? { account_id: o.accountId ?? before?.account_id } : {}),
    ...(o.baseUrl ? { base_url: o.baseUrl } : {}),
    bound_at: new Date(now).toISOString(),
  };
  await store.set(key(connection), rec);
  return rec;
}

/** Puts back a binding read earlier (a bind whose request to the CRM failed). */
export async function restoreHookSecrets(store: Store, connection: string, rec: StoredHookSecrets | undefined): Promise<void> {
  if (rec) await store.set(key(connection), rec);
  else await store.delete(key(connection));
}

export async function forgetHookSecrets(store: Store, connection: string): Promise<void> {
  await store.delete(key(connection));
}
