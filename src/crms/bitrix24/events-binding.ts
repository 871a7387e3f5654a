/**
 * Where `crm-mcp events bind` keeps a Bitrix24 connection's offline binding (events-offline.ts), read by the
 * pull, `events status` and `doctor` (events-doctor.ts) alike; and the shape of an `event.get` row.
 */
import type { BitrixConnection } from './connection.js';

/** What the offline binding keeps in the store, per connection (and portal). */
export interface OfflineBinding {
  offline: true;
  connector: string;
  events: string[];
  /** The online handler bound with `--url`, if any. */
  handler?: string;
  bound_at: string;
}

/** A row of `event.get` (the calling application's bindings). */
export interface BoundEvent {
  event?: string;
  handler?: string;
  offline?: number | string;
}

export function portalOf(conn: BitrixConnection): string {
  return conn.webhookUrl ? new URL(conn.webhookUrl).origin : conn.oauth!.portal;
}

export const bindingKey = (conn: BitrixConnection) => `bitrix24:events:offline:${conn.name}:${portalOf(conn)}`;
