/**
 * `crm-mcp doctor` on a Bitrix24 connection's receivers (§9): the online receiver `/hooks/bitrix24`
 * (BITRIX_OUTBOUND_TOKEN; Bitrix24 sends each online event once, with no retry) and the offline events that
 * `crm-mcp events bind` registered (events-offline.ts), which only an OAuth app connection can pull and only
 * while CRM_EVENTS_POLL_S > 0. From the settings and the store alone; `doctor --deep` compares the store with
 * what the portal has bound (`event.get`, app auth: `boundChecks`).
 */
import type { Store } from '../../store/store.js';
import type { Check } from '../doctor-types.js';
import type { ReceiverConfig } from '../events-contract.js';
import type { BitrixConnection } from './connection.js';
import { BITRIX_EVENT_NAMES, BITRIX_HOOK_PATH } from './events.js';
import { bindingKey, type BoundEvent, type OfflineBinding } from './events-binding.js';

const RECEIVER = `POST /hooks/${BITRIX_HOOK_PATH}`;

export async function checkBitrixReceiver(conn: BitrixConnection, o: { store: Store; pollSec: number }): Promise<ReceiverConfig> {
  const bound = await o.store.get<OfflineBinding>(bindingKey(conn));
  const online = conn.outboundToken !== undefined;
  if (!online && !bound?.offline)
    return {
      configured: false,
      checks: [
        {
          check: 'events',
          status: 'ok',
          detail: conn.oauth
            ? "no receiver (optional): Bitrix24's changes are read only when asked; to receive them, `crm-mcp events bind` (offline events, over stdio too)"
            : `no receiver (optional): Bitrix24's changes are read only when asked; to receive them, point an outgoing webhook at <public address>/hooks/${BITRIX_HOOK_PATH} and set BITRIX_OUTBOUND_TOKEN`,
        },
      ],
    };
  const checks: Check[] = [];
  if (online)
    checks.push({
      check: 'events',
      status: 'ok',
      detail: `online receiver ${RECEIVER} (served by crm-mcp --http): BITRIX_OUTBOUND_TOKEN is set${bound?.offline ? '' : '; Bitrix24 sends each event once, with no retry: what arrives while the service is down is lost'}`,
    });
  if (bound?.offline) {
    const when = `offline events bound on ${bound.bound_at.slice(0, 10)} (${bound.events.length} events${bound.handler ? `; online handler ${bound.handler}` : ''})`;
    if (!conn.oauth)
      checks.push({
        check: 'events',
        status: 'warn',
        detail: `${when}, but this is an inbound-webhook connection: only an OAuth app connection can pull them, so the portal's queue grows and nothing reads it`,
        fix: 'Configure the OAuth app connection again (BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL), or run `crm-mcp events unbind` with it.',
      });
    else if (o.pollSec <= 0)
      checks.push({
        check: 'events',
        status: 'warn',
        detail: `${when}, but CRM_EVENTS_POLL_S=0: nothing pulls them (the portal keeps queuing them)`,
        fix: 'Set CRM_EVENTS_POLL_S to the seconds between pulls (the default is 30), or run `crm-mcp events unbind` if you no longer want them.',
      });
    else checks.push({ check: 'events', status: 'ok', detail: `${when}; pulled every ${o.pollSec} s (CRM_EVENTS_POLL_S)` });
  }
  return { configured: true, checks };
}

/** doctor --deep: what `event.get` says the portal has bound for this app, against what `events bind` stored. */
export function boundChecks(rows: readonly BoundEvent[], stored: OfflineBinding | undefined): Check[] {
  const check = 'events: portal bindings';
  const offline = new Set(rows.filter((x) => Number(x.offline) === 1).map((x) => String(x.event ?? '').toUpperCase()));
  const out: Check[] = [];
  if (stored?.offline) {
    const missing = stored.events.filter((e) => !offline.has(e.toUpperCase()));
    out.push(
      missing.length
        ? {
            check,
            status: 'warn',
            detail: `${missing.length} of the ${stored.events.length} offline bindings crm-mcp made are gone from the portal (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? '…' : ''}): those changes are not queued`,
            fix: 'Bind them again: `crm-mcp events bind` (with the admin settings).',
          }
        : { check, status: 'ok', detail: `the portal queues all ${stored.events.length} events for this server` },
    );
    if (stored.handler && !rows.some((x) => Number(x.offline) !== 1 && x.handler === stored.handler))
      out.push({
        check,
        status: 'warn',
        detail: `the online handler ${stored.handler} is no longer bound: online events are not sent here`,
        fix: `Bind it again: \`crm-mcp events bind --url ${stored.handler.replace(new RegExp(`/hooks/${BITRIX_HOOK_PATH}$`), '')}\`.`,
      });
  } else if (offline.size) {
    out.push({
      check,
      status: 'warn',
      detail: `the portal queues ${offline.size} offline events for this app, but this store has no record of binding them: nothing here pulls them`,
      fix: "Run `crm-mcp events bind` with the server's CRM_MCP_STORE, or `crm-mcp events unbind` if nobody reads them.",
    });
  } else out.push({ check, status: 'ok', detail: `no offline binding on the portal (of the ${BITRIX_EVENT_NAMES.length} events crm-mcp can bind)` });
  return out;
}
