/**
 * The Kommo (amoCRM) module: what the registry needs to know without loading the provider (kind, label,
 * capabilities, its own tools), and how to build one. The provider's parts load on the first build only.
 */
import type { CrmModule } from '../contract.js';
import type { AnyTool } from '../../tools/define.js';
import { KOMMO_CAPABILITIES, KOMMO_KIND } from './capabilities.js';
import { kommoConnection, type KommoConnection } from './connection.js';
import { KOMMO_VARS } from './env.js';
import { kommoEndpoint } from './metrics.js';
import { kommoRequest } from './raw-tool.js';
import { kommoSandbox } from './sandbox.js';
import { kommoSignIn } from './sign-in.js';

export { KOMMO_CAPABILITIES };

export const kommoModule: CrmModule<KommoConnection, AnyTool> = {
  kind: KOMMO_KIND,
  label: 'Kommo',
  fullLabel: 'Kommo/amoCRM',
  capabilities: KOMMO_CAPABILITIES,
  env: KOMMO_VARS,
  connection: kommoConnection,
  async build(c, deps) {
    const { KOMMO_RPS, buildKommoProvider } = await import('./provider.js');
    // With Redis, the limit holds for the sum of all instances on the account.
    const limiter =
      deps.shared && deps.store.redis
        ? new deps.shared.SharedSlidingWindowLimiter(deps.store.redis, `crm-mcp:limit:kommo:${new URL(c.baseUrl).host}`, KOMMO_RPS, 1010, deps.http.timeoutMs)
        : undefined;
    const p = buildKommoProvider(c, {
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
  tools: [kommoRequest],
  // The checks and the probe load only when doctor runs.
  doctor: {
    check: async (c, deps) => (await import('./doctor.js')).checkKommo(c, deps),
    deep: async (p) => (await import('./doctor-deep.js')).kommoDeepProbe(p),
  },
  signIn: kommoSignIn,
  sandbox: kommoSandbox,
  metricsLabel: kommoEndpoint,
  // §10: account webhooks; the receiver and the commands load on first use.
  events: {
    hookPath: 'kommo',
    receive: async (d, conns, secrets) => (await import('./events.js')).receiveKommo(d, conns, secrets),
    bind: async (p, ctx, o) => (await import('./events-bind.js')).bindKommo(p, ctx, o),
    unbind: async (p, ctx, o) => (await import('./events-bind.js')).unbindKommo(p, ctx, o),
    status: async (p, ctx, o) => (await import('./events-bind.js')).kommoHookStatus(p, ctx, o),
    check: async (c, o) => (await import('./events-doctor.js')).checkKommoReceiver(c, o),
  },
};
