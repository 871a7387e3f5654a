/** Builds the providers for the configured connections. */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/config.js';
import type { HttpEvent } from '../http/client.js';
import type { Store } from '../store/store.js';
import { KommoProvider } from './kommo/provider.js';
import { BitrixProvider } from './bitrix24/provider.js';
import type { CrmProvider } from './types.js';

export interface ProviderDeps {
  store: Store;
  logger?: Logger;
  onEvent?: (e: HttpEvent) => void;
}

export async function buildProviders(config: AppConfig, deps: ProviderDeps): Promise<CrmProvider[]> {
  const out: CrmProvider[] = [];
  for (const c of config.connections) {
    if (c.provider === 'kommo') {
      const p = new KommoProvider(c, { store: deps.store, timeoutMs: config.http.timeoutMs, maxRetries: config.http.maxRetries, logger: deps.logger, onEvent: deps.onEvent });
      await p.init();
      out.push(p);
    } else {
      const p = new BitrixProvider(c, { store: deps.store, timeoutMs: config.http.timeoutMs, maxRetries: config.http.maxRetries, logger: deps.logger, onEvent: deps.onEvent });
      await p.init();
      out.push(p);
    }
  }
  return out;
}
