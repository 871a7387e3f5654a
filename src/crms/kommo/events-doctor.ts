/**
 * `crm-mcp doctor` on a Kommo connection's webhook receiver (events.ts), from the settings and the store
 * alone: is a path secret configured (KOMMO_WEBHOOK_SECRET, whose length the config loader already checks) or
 * bound (its hash stored by `events bind`), and was it bound for the account this connection reaches? Whether
 * Kommo really sends there is `doctor --deep`'s question (events-bind.ts `kommoHookStatus`, admin-only §10.1).
 */
import { readHookSecrets } from '../../events/hook-secrets.js';
import type { Store } from '../../store/store.js';
import type { Check } from '../doctor-types.js';
import type { ReceiverConfig } from '../events-contract.js';
import type { KommoConnection } from './connection.js';

const BIND = '`crm-mcp events bind --url <public address of crm-mcp --http>`';

export async function checkKommoReceiver(conn: KommoConnection, o: { store: Store; account?: number | string | null }): Promise<ReceiverConfig> {
  const stored = await readHookSecrets(o.store, conn.name);
  const set = conn.webhookSecret !== undefined;
  if (!set && !stored)
    return {
      configured: false,
      checks: [
        {
          check: 'events',
          status: 'ok',
          detail: `no webhook receiver (optional): Kommo's changes are read only when asked; to receive them as they happen, ${BIND} or set KOMMO_WEBHOOK_SECRET`,
        },
      ],
    };
  const how = [
    ...(set ? ['KOMMO_WEBHOOK_SECRET is set'] : []),
    ...(stored ? [`a secret bound by events bind on ${stored.bound_at.slice(0, 10)}${stored.base_url ? ` for ${stored.base_url}` : ''}`] : []),
    ...(stored?.previous && stored.previous.until > Date.now() ? [`the previous secret valid until ${new Date(stored.previous.until).toISOString()}`] : []),
  ];
  const checks: Check[] = [
    { check: 'events', status: 'ok', detail: `webhook receiver POST /hooks/kommo/<secret> (served by crm-mcp --http): ${how.join('; ')}` },
  ];
  // The receiver checks account[id] against the account learnt at bind time: another account's deliveries are refused.
  if (stored?.account_id && o.account !== undefined && o.account !== null && String(o.account) !== stored.account_id)
    checks.push({
      check: 'events',
      status: 'warn',
      detail: `the webhook secret was bound for Kommo account ${stored.account_id}, but this connection reaches account ${o.account}: every delivery from this account is refused (403)`,
      fix: `Run \`crm-mcp events unbind\`, then ${BIND} with this connection's settings.`,
    });
  return { configured: true, checks };
}
