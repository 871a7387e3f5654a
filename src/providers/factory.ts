/** Builds the providers for the configured connections. */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/config.js';
import type { HttpEvent } from '../http/client.js';
import type { Store } from '../store/store.js';
import { KOMMO_RPS, KommoProvider } from './kommo/provider.js';
import { BITRIX_PLANS, BitrixProvider } from './bitrix24/provider.js';
import type { BitrixConnection } from '../config/config.js';
import type { CrmProvider } from './types.js';

export interface ProviderDeps {
  store: Store;
  logger?: Logger;
  onEvent?: (e: HttpEvent) => void;
}

export async function buildProviders(config: AppConfig, deps: ProviderDeps): Promise<CrmProvider[]> {
  // Shared (Redis) limiters load rate-limiter-flexible: only when a Redis store is configured.
  const shared = deps.store.redis ? await import('../http/shared-limiter.js') : undefined;
  const out: CrmProvider[] = [];
  for (const c of config.connections) {
    if (c.provider === 'kommo') {
      // With Redis, the limit holds for the sum of all instances on the account.
      const limiter = shared && deps.store.redis ? new shared.SharedSlidingWindowLimiter(deps.store.redis, `crm-mcp:limit:kommo:${new URL(c.baseUrl).host}`, KOMMO_RPS, 1010, config.http.timeoutMs) : undefined;
      const p = new KommoProvider(c, { limiter, store: deps.store, timeoutMs: config.http.timeoutMs, maxRetries: config.http.maxRetries, logger: deps.logger, onEvent: deps.onEvent });
      await p.init();
      out.push(p);
    } else {
      const plan = BITRIX_PLANS[c.plan];
      const limiter = shared && deps.store.redis ? new shared.SharedBucketLimiter(deps.store.redis, `bitrix:${bitrixHost(c)}`, { capacity: plan.capacity, drainPerSecond: plan.drain }) : undefined;
      const p = new BitrixProvider(c, { limiter, store: deps.store, timeoutMs: config.http.timeoutMs, maxRetries: config.http.maxRetries, logger: deps.logger, onEvent: deps.onEvent });
      await p.init();
      out.push(p);
    }
  }
  return out;
}

function bitrixHost(c: BitrixConnection): string {
  return new URL(c.webhookUrl ?? c.oauth!.portal).host;
}
