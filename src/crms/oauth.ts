/**
 * Rotating OAuth tokens, shared by every provider: the new pair is written to the durable store before the
 * new access token is ever used; refreshes are single-flight (concurrent calls meeting an expired token share
 * one refresh); a configured seed (refresh token or one-time authorization code) starts the chain only once.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { CrmError } from '../domain/errors.js';
import type { Store } from '../store/store.js';
import { registerSecret } from '../util/redact.js';

export interface TokenRecord {
  access_token: string;
  refresh_token: string;
  /** Epoch ms. */
  expires_at: number;
  obtained_at: number;
  /** Increases with every refresh; lets a caller tell a newer token from the one it used. */
  generation: number;
  /** Hash of the configured seed this chain started from. */
  seed?: string;
  /** Provider extras (e.g. Bitrix24 client_endpoint). */
  extra?: Record<string, string>;
  /**
   * Epoch ms when the CRM refused this record's refresh token (spent or revoked). It is not sent again, by this
   * process or another: only a new sign-in (`crm-mcp auth …`, a new record) or a newly configured seed helps.
   */
  refused_at?: number;
}

/** Set by a TokenExchange on the error it throws when the CRM refused the refresh token itself (not the client). */
export const REFRESH_REFUSED = 'refresh_refused';

export function refreshRefused(e: unknown): boolean {
  return e instanceof CrmError && (e.details as Record<string, unknown> | undefined)?.[REFRESH_REFUSED] === true;
}

export interface TokenGrant {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  extra?: Record<string, string>;
}

/**
 * Performs a token request (authorization_code or refresh_token grant) against the provider's endpoint: made by
 * token-endpoint.ts `tokenExchange` from the wing's TokenEndpoint, over the one token request (http/token.ts).
 */
export type TokenExchange = (
  grant: { grant_type: 'authorization_code'; code: string } | { grant_type: 'refresh_token'; refresh_token: string },
) => Promise<TokenGrant>;

export interface RotatingTokensOptions {
  store: Store;
  storeKey: string;
  exchange: TokenExchange;
  /** What the user should do when the chain is lost (shown in errors). */
  reauthHint: string;
  logger?: Logger;
  now?: () => number;
  /** Refresh this long before expiry. */
  marginMs?: number;
}

const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

/**
 * The seed mark `init` records for a configured code or refresh token. `crm-mcp auth` writes it on the tokens
 * it saves, so a stale KOMMO_AUTH_CODE / refresh token still in the environment counts as consumed and does
 * not replace a fresh sign-in at the next start.
 */
export function seedHash(seed: { authCode?: string; refreshToken?: string }): string | undefined {
  if (seed.authCode) return hash(`code:${seed.authCode}`);
  if (seed.refreshToken) return hash(`refresh:${seed.refreshToken}`);
  return undefined;
}

export class RotatingTokens {
  private inflight: Promise<TokenRecord> | undefined;
  private cached: TokenRecord | undefined;
  /** Refresh requests sent by this process (tests, metrics). */
  refreshCount = 0;

  constructor(private readonly o: RotatingTokensOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private get margin(): number {
    return this.o.marginMs ?? 5 * 60 * 1000;
  }

  /** Start-up: exchange a one-time code (once per code), or adopt a newly configured refresh token. */
  async init(seed: { authCode?: string; refreshToken?: string }): Promise<void> {
    const stored = await this.load();
    if (seed.authCode) {
      const h = seedHash({ authCode: seed.authCode })!;
      if (stored?.seed === h) return; // exchanged in an earlier run; codes are single-use
      const g = await this.o.exchange({ grant_type: 'authorization_code', code: seed.authCode });
      await this.persist(this.record(g, 0, h));
      return;
    }
    if (seed.refreshToken) {
      const h = seedHash({ refreshToken: seed.refreshToken })!;
      // The stored chain wins unless the operator configured a different refresh token since.
      if (stored?.seed === h) return;
      await this.persist({
        access_token: '',
        refresh_token: seed.refreshToken,
        expires_at: 0,
        obtained_at: this.now(),
        generation: (stored?.generation ?? 0) + 1,
        seed: h,
      });
    }
  }

  /** A usable token record, refreshed first when missing or about to expire. */
  async current(): Promise<TokenRecord> {
    let rec = this.cached ?? (await this.load());
    if (!rec) throw new CrmError({ code: 'auth', message: `No OAuth tokens yet: ${this.o.reauthHint}` });
    if (!rec.access_token || rec.expires_at - this.margin <= this.now()) rec = await this.refresh(rec.generation);
    return rec;
  }

  /** After a 401 with `usedAccess`: true when a different (fresh) token is now available. */
  async onUnauthorized(usedAccess: string | undefined): Promise<boolean> {
    const rec = await this.load();
    if (rec?.access_token && rec.access_token !== usedAccess && rec.expires_at > this.now()) return true;
    await this.refresh(rec?.generation ?? 0, true);
    return true;
  }

  /** Single-flight: every caller that saw generation `seen` shares one refresh. */
  refresh(seen: number, force = false): Promise<TokenRecord> {
    const c = this.cached;
    if (c && c.generation > seen && c.access_token && (force || c.expires_at - this.margin > this.now())) return Promise.resolve(c);
    this.inflight ??= this.doRefresh(seen).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * One refresh across every process sharing the store: under the store's lock, re-read the record; if
   * another process already refreshed past `seen`, adopt its token instead of spending ours (a spent
   * refresh token would cut the user off). Otherwise exchange, then write with a compare-and-swap on the
   * generation before the new access token is ever used.
   */
  private doRefresh(seen: number): Promise<TokenRecord> {
    return this.o.store.withLock(`refresh:${this.o.storeKey}`, 30_000, async () => {
      const current = await this.o.store.get<TokenRecord>(this.o.storeKey);
      if (!current) throw new CrmError({ code: 'auth', message: `No refresh token is stored: ${this.o.reauthHint}` });
      registerSecret(current.access_token);
      registerSecret(current.refresh_token);
      if (current.generation > seen && current.access_token && current.expires_at > this.now()) {
        this.cached = current;
        return current;
      }
      if (current.refused_at) {
        this.cached = current;
        throw new CrmError({
          code: 'auth',
          details: { [REFRESH_REFUSED]: true },
          message: `The stored refresh token was refused by the CRM on ${new Date(current.refused_at).toISOString().slice(0, 10)}, so it is not sent again. Sign in again: ${this.o.reauthHint}`,
        });
      }
      this.refreshCount += 1;
      let g: TokenGrant;
      try {
        g = await this.o.exchange({ grant_type: 'refresh_token', refresh_token: current.refresh_token });
      } catch (e) {
        // A refused (spent) refresh token stays refused: mark the record, so no process loops on it.
        if (refreshRefused(e)) {
          const marked = { ...current, refused_at: this.now() };
          await this.persist(marked).catch(() => undefined);
          this.cached = marked;
          this.o.logger?.warn({ generation: current.generation }, 'the CRM refused the stored refresh token; sign-in needed');
        }
        throw e;
      }
      let rec = this.record(g, current.generation, current.seed);
      // Compare-and-swap: the lock makes a concurrent writer unlikely (only if it expired mid-refresh);
      // then our freshly issued pair is the valid one, so it is written above whatever is there.
      const now = await this.o.store.get<TokenRecord>(this.o.storeKey);
      if (now && now.generation !== current.generation) {
        this.o.logger?.warn({ expected: current.generation, found: now.generation }, 'token record changed during refresh');
        rec = { ...rec, generation: Math.max(now.generation, current.generation) + 1 };
      }
      // Durable first: if this write fails the new pair is not used (the CRM keeps the old one valid until then).
      await this.persist(rec);
      this.o.logger?.info({ generation: rec.generation }, 'refreshed OAuth tokens');
      return rec;
    });
  }

  private record(g: TokenGrant, generation: number, seed: string | undefined): TokenRecord {
    registerSecret(g.access_token);
    registerSecret(g.refresh_token);
    return {
      access_token: g.access_token,
      refresh_token: g.refresh_token,
      expires_at: this.now() + g.expires_in * 1000,
      obtained_at: this.now(),
      generation: generation + 1,
      seed,
      ...(g.extra ? { extra: g.extra } : {}),
    };
  }

  async load(): Promise<TokenRecord | undefined> {
    const rec = await this.o.store.get<TokenRecord>(this.o.storeKey);
    if (rec) {
      registerSecret(rec.access_token);
      registerSecret(rec.refresh_token);
      if (!this.cached || rec.generation >= this.cached.generation) this.cached = rec;
    }
    return this.cached;
  }

  private async persist(rec: TokenRecord): Promise<void> {
    await this.o.store.set(this.o.storeKey, rec);
    this.cached = rec;
  }

  peek(): TokenRecord | undefined {
    return this.cached;
  }
}
