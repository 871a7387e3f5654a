/**
 * What changed in a CRM, in one CRM-neutral shape. Every receiver (a Kommo account webhook, a Bitrix24 outbound
 * webhook or offline event, a record's history) turns what its CRM sends into these events; the event log stores
 * them, the change feed (`list_changes`) and the resources read them, and a local mirror can be kept fresh from
 * them. An event carries ids and the few values the CRM sent (a stage move's before and after, the new
 * responsible user); names are resolved when the feed is read, from cached metadata, so a stored event never
 * holds a name that later went stale.
 */
import { createHash } from 'node:crypto';

/** The records an event can be about. */
export const EVENT_ENTITIES = ['lead', 'deal', 'contact', 'company', 'task', 'note', 'incoming_lead'] as const;
export type EventEntity = (typeof EVENT_ENTITIES)[number];

/** What happened to the record. */
export const EVENT_ACTIONS = ['added', 'updated', 'deleted', 'restored', 'stage_changed', 'responsible_changed', 'completed'] as const;
export type EventAction = (typeof EVENT_ACTIONS)[number];

/** How the event reached this server. */
export type EventSource = 'webhook' | 'offline' | 'history';

/** A stage: the pipeline (Bitrix24 category) and the stage (Kommo status, Bitrix24 STAGE_ID/STATUS_ID). */
export interface StageRef {
  pipeline_id: string | null;
  stage_id: string;
}

export interface CrmEvent {
  /**
   * The event's identity: equal for a redelivery of the same change, different for two changes. A receiver
   * derives it from what the CRM sent (eventId below), so deduplication never depends on arrival.
   */
  id: string;
  /** The connection (CRM account) the event belongs to, and its CRM's kind. */
  connection: string;
  crm: string;
  entity: EventEntity;
  entity_id: string;
  action: EventAction;
  /** When the change happened, as the CRM says (ISO); null when the CRM does not say. */
  occurred_at: string | null;
  /** When this server stored it (ISO). */
  received_at: string;
  source: EventSource;
  /** Who made the change: a user id, 0 for a robot or automation (Kommo `created_by: 0`), null when not said. */
  by_user_id: string | null;
  /** For stage_changed: where from (when the CRM says) and where to. */
  stage?: { from: StageRef | null; to: StageRef };
  /** For responsible_changed: the user ids before (when known) and after. */
  responsible?: { from: string | null; to: string };
  /** For a note or a task: the record it belongs to. */
  parent?: { entity: EventEntity; id: string };
  /** A few values the CRM sent with the event (name, price, text): CRM text, untrusted. */
  data?: Record<string, string | number | boolean | null>;
}

/** An event as stored: its place in the log, which is also the feed's cursor. */
export interface StoredEvent extends CrmEvent {
  /** Opaque, increasing within one log. */
  seq: string;
}

/**
 * A stable id for an event from the values that identify the change (the connection, the record, the action and
 * whatever the CRM gives that distinguishes two changes of one record: a timestamp, a stage pair, an event id).
 * Hashed so that no CRM value shows up in key names.
 */
export function eventId(parts: ReadonlyArray<string | number | null | undefined>): string {
  return createHash('sha256')
    .update(parts.map((p) => (p === null || p === undefined ? '' : String(p))).join('\u0000'))
    .digest('base64url')
    .slice(0, 32);
}

export function isEventEntity(x: unknown): x is EventEntity {
  return typeof x === 'string' && (EVENT_ENTITIES as readonly string[]).includes(x);
}
