/** Builds the providers for the configured connections, each through its module in the provider registry. */
import type { AppConfig } from '../config/config.js';
import { defaultRegistry, type ProviderDeps, type ProviderRegistry } from './registry.js';
import type { CrmProvider } from './types.js';

export type { ProviderDeps } from './registry.js';

export async function buildProviders(config: AppConfig, deps: ProviderDeps, registry: ProviderRegistry = defaultRegistry): Promise<CrmProvider[]> {
  // Shared (Redis) limiters load rate-limiter-flexible: only when a Redis store is configured.
  const shared = deps.store.redis ? await import('../http/shared-limiter.js') : undefined;
  const out: CrmProvider[] = [];
  for (const c of config.connections) out.push(await registry.build(c, { ...deps, http: config.http, shared }));
  return out;
}
