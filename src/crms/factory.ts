/** Builds the providers for the configured connections, each through its module in the provider registry. */
import type { BuildDeps, ConnectionBase, ProviderDeps } from './contract.js';
import { defaultRegistry, type ProviderModule, type ProviderRegistry } from './registry.js';
import type { CrmProvider } from './types.js';

export type { ProviderDeps } from './contract.js';

/** What of the configuration (config.ts's AppConfig) the providers are built from. */
export interface ProvidersConfig {
  connections: readonly ConnectionBase[];
  http: BuildDeps['http'];
}

export async function buildProviders(
  config: ProvidersConfig,
  deps: ProviderDeps,
  registry: ProviderRegistry<ProviderModule> = defaultRegistry,
): Promise<CrmProvider[]> {
  // Shared (Redis) limiters load rate-limiter-flexible: only when a Redis store is configured.
  const shared = deps.store.redis ? await import('../http/shared-limiter.js') : undefined;
  const out: CrmProvider[] = [];
  for (const c of config.connections) out.push(await registry.build(c, { ...deps, http: config.http, shared }));
  return out;
}
