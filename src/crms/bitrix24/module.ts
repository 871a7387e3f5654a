/**
 * The Bitrix24 provider module: what the registry needs to know without loading the provider (kind, label,
 * capabilities), and how to build one. The provider class loads on the first build only.
 */
import type { CrmModule } from '../contract.js';
import { bitrix24Connection, type BitrixConnection } from './connection.js';
import { renderBitrixDeep } from './doctor-deep.js';
import { BITRIX24_VARS } from './env.js';
import { bitrixEndpoint } from './metrics.js';
import { bitrix24Sandbox } from './sandbox.js';
import { bitrix24SignIn } from './sign-in.js';
import { PROVIDER_KINDS, type Capability } from '../types.js';

/** Bitrix24 has deals besides leads and deletes, and no tag list (its records carry no tags). */
export const BITRIX24_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  'leads',
  'deals',
  'contacts',
  'companies',
  'pipelines',
  'custom_fields',
  'users',
  'notes',
  'tasks',
  'delete',
  'raw_bitrix24',
]);

export const bitrix24Module: CrmModule<BitrixConnection> = {
  kind: PROVIDER_KINDS.bitrix24,
  label: 'Bitrix24',
  capabilities: BITRIX24_CAPABILITIES,
  env: BITRIX24_VARS,
  connection: bitrix24Connection,
  async build(c, deps) {
    const { BITRIX_PLANS, BitrixProvider } = await import('./provider.js');
    const plan = BITRIX_PLANS[c.plan];
    const host = new URL(c.webhookUrl ?? c.oauth!.portal).host;
    const limiter =
      deps.shared && deps.store.redis
        ? new deps.shared.SharedBucketLimiter(deps.store.redis, `bitrix:${host}`, { capacity: plan.capacity, drainPerSecond: plan.drain })
        : undefined;
    const p = new BitrixProvider(c, {
      limiter,
      store: deps.store,
      timeoutMs: deps.http.timeoutMs,
      maxRetries: deps.http.maxRetries,
      backoffBaseMs: deps.http.backoffBaseMs,
      logger: deps.logger,
      onEvent: deps.onEvent,
      trustedOrigins: deps.trustedOrigins,
    });
    await p.init();
    return p;
  },
  // The checks and the probe load only when doctor runs.
  doctor: {
    check: async (c, deps) => (await import('./doctor.js')).checkBitrix(c, deps),
    deep: async (p) => (await import('./doctor-deep.js')).bitrixDeepProbe(p),
    renderDeep: renderBitrixDeep,
  },
  signIn: bitrix24SignIn,
  sandbox: bitrix24Sandbox,
  metricsLabel: bitrixEndpoint,
};
