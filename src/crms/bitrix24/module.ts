/**
 * The Bitrix24 module: what the registry needs to know without loading the provider (kind, label,
 * capabilities, its own tools), and how to build one. The provider's parts load on the first build only.
 */
import type { CrmModule } from '../contract.js';
import type { AnyTool } from '../../tools/define.js';
import { BITRIX24_CAPABILITIES, BITRIX24_KIND } from './capabilities.js';
import { bitrix24Connection, type BitrixConnection } from './connection.js';
import { deleteContact, deleteLead } from './delete-tools.js';
import { renderBitrixDeep } from './doctor-deep.js';
import { BITRIX24_VARS } from './env.js';
import { BITRIX_HOOK_PATH, receiveBitrix } from './events.js';
import { bitrixEndpoint } from './metrics.js';
import { bitrixCall } from './raw-tool.js';
import { bitrix24Sandbox } from './sandbox.js';
import { bitrix24SignIn } from './sign-in.js';

export { BITRIX24_CAPABILITIES };

export const bitrix24Module: CrmModule<BitrixConnection, AnyTool> = {
  kind: BITRIX24_KIND,
  label: 'Bitrix24',
  capabilities: BITRIX24_CAPABILITIES,
  env: BITRIX24_VARS,
  connection: bitrix24Connection,
  async build(c, deps) {
    const { BITRIX_PLANS, buildBitrixProvider } = await import('./provider.js');
    const plan = BITRIX_PLANS[c.plan];
    const host = new URL(c.webhookUrl ?? c.oauth!.portal).host;
    const limiter =
      deps.shared && deps.store.redis
        ? new deps.shared.SharedBucketLimiter(deps.store.redis, `bitrix:${host}`, { capacity: plan.capacity, drainPerSecond: plan.drain })
        : undefined;
    const p = buildBitrixProvider(c, {
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
  // delete_lead/delete_contact in the core toolset, bitrix_call in raw (registry.ts `allTools` orders them).
  tools: [deleteLead, deleteContact, bitrixCall],
  // The checks and the probe load only when doctor runs.
  doctor: {
    check: async (c, deps) => (await import('./doctor.js')).checkBitrix(c, deps),
    deep: async (p) => (await import('./doctor-deep.js')).bitrixDeepProbe(p),
    renderDeep: renderBitrixDeep,
  },
  signIn: bitrix24SignIn,
  sandbox: bitrix24Sandbox,
  metricsLabel: bitrixEndpoint,
  // Outbound webhooks and app events at /hooks/bitrix24; offline events pulled and bound (loaded on use).
  events: {
    hookPath: BITRIX_HOOK_PATH,
    receive: receiveBitrix,
    pull: async (p, ctx, store) => (await import('./events-offline.js')).pullBitrix(p, ctx, store),
    bind: async (p, ctx, o) => (await import('./events-offline.js')).bindBitrix(p, ctx, o),
    unbind: async (p, ctx, o) => (await import('./events-offline.js')).unbindBitrix(p, ctx, o),
    status: async (p, ctx) => (await import('./events-offline.js')).statusBitrix(p, ctx),
    check: async (c, o) => (await import('./events-doctor.js')).checkBitrixReceiver(c, o),
  },
};
