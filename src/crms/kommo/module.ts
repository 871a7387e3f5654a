/**
 * The Kommo (amoCRM) provider module: what the registry needs to know without loading the provider
 * (kind, label, capabilities), and how to build one. The provider class loads on the first build only.
 */
import type { CrmModule } from '../contract.js';
import { kommoConnection, type KommoConnection } from './connection.js';
import { KOMMO_VARS } from './env.js';
import { kommoEndpoint } from './metrics.js';
import { kommoSandbox } from './sandbox.js';
import { kommoSignIn } from './sign-in.js';
import { PROVIDER_KINDS, type Capability } from '../types.js';

/** A Kommo lead is the sales opportunity (no separate deals); leads, contacts and companies carry tags; the typed tools never delete. */
export const KOMMO_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  'leads',
  'contacts',
  'companies',
  'pipelines',
  'custom_fields',
  'users',
  'tags',
  'notes',
  'tasks',
  'raw_kommo',
]);

export const kommoModule: CrmModule<KommoConnection> = {
  kind: PROVIDER_KINDS.kommo,
  label: 'Kommo',
  fullLabel: 'Kommo/amoCRM',
  capabilities: KOMMO_CAPABILITIES,
  env: KOMMO_VARS,
  connection: kommoConnection,
  async build(c, deps) {
    const { KOMMO_RPS, KommoProvider } = await import('./provider.js');
    // With Redis, the limit holds for the sum of all instances on the account.
    const limiter =
      deps.shared && deps.store.redis
        ? new deps.shared.SharedSlidingWindowLimiter(deps.store.redis, `crm-mcp:limit:kommo:${new URL(c.baseUrl).host}`, KOMMO_RPS, 1010, deps.http.timeoutMs)
        : undefined;
    const p = new KommoProvider(c, {
      limiter,
      store: deps.store,
      timeoutMs: deps.http.timeoutMs,
      maxRetries: deps.http.maxRetries,
      backoffBaseMs: deps.http.backoffBaseMs,
      logger: deps.logger,
      onEvent: deps.onEvent,
    });
    await p.init();
    return p;
  },
  // The checks and the probe load only when doctor runs.
  doctor: {
    check: async (c, deps) => (await import('./doctor.js')).checkKommo(c, deps),
    deep: async (p) => (await import('./doctor-deep.js')).kommoDeepProbe(p),
  },
  signIn: kommoSignIn,
  sandbox: kommoSandbox,
  metricsLabel: kommoEndpoint,
};
