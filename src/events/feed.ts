/**
 * The change feed as the agent reads it (list_changes, the `crm://…/changes` resources): stored events turned
 * into one compact line each, with names beside ids ("lead 42 "Website redesign" moved from Qualification to
 * Proposal by Anna (Kommo main, 10:42 UTC)"), plus the same facts as fields. Names come from metadata the
 * caller looked up once for the whole page (pipelines and users, which the providers cache), never per event;
 * an id whose name is unknown is shown as the id. Record names and texts are CRM text: quoted, cut short, and
 * marked untrusted by the tools that show them.
 *
 * Feed cursors wrap the log's own position with a tag of the log they came from, so a cursor from another log
 * (another data directory, a file log after a move to Redis) or a made-up string is refused, not misread.
 */
import { createHash } from 'node:crypto';
import type { EventEntity, StoredEvent } from '../domain/events.js';
import type { Pipeline, User } from '../domain/records.js';
import type { EventLog } from './log.js';

/** Metadata the names come from (either may be missing: that CRM has none, or the lookup failed). */
export interface FeedNames {
  pipelines?: readonly Pipeline[];
  users?: readonly User[];
}

export interface NamedRef {
  id: string;
  name: string | null;
}

/** One change as the feed shows it. */
export interface Change {
  /** The one-line summary. */
  text: string;
  /** Its place in the log. */
  seq: string;
  /** When it happened (the CRM's time, else when this server received it), ISO. */
  at: string;
  entity: EventEntity;
  id: string;
  action: StoredEvent['action'];
  /** The record's name or text as the CRM sent it (untrusted), when it sent one. */
  name?: string;
  by?: NamedRef;
  stage?: { pipeline: NamedRef | null; from: NamedRef | null; to: NamedRef };
  responsible?: { from: NamedRef | null; to: NamedRef };
  parent?: { entity: EventEntity; id: string };
}

/** Robots and automations: Kommo's `created_by: 0` (domain/events.ts by_user_id). */
const ROBOT = '0';
const NAME_MAX = 80;

/** A CRM string as a quoted, single-line, bounded value (it is data, and it must not break the line). */
function quoted(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return JSON.stringify(flat.length > NAME_MAX ? `${flat.slice(0, NAME_MAX - 1)}…` : flat);
}

/** "10:42 UTC" today, "2026-12-07 10:42 UTC" on another day (UTC both). */
export function shortTime(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const hm = d.toISOString().slice(11, 16);
  return d.toISOString().slice(0, 10) === now.toISOString().slice(0, 10) ? `${hm} UTC` : `${d.toISOString().slice(0, 10)} ${hm} UTC`;
}

/** The pipelines an entity's stages live in: a Bitrix24 lead's statuses are the `lead` pipeline, deals have theirs. */
function pipelinesFor(names: FeedNames, entity: EventEntity): readonly Pipeline[] {
  const all = names.pipelines ?? [];
  const own = all.filter((p) => p.entity === (entity === 'deal' ? 'deal' : 'lead'));
  return own.length ? own : all;
}

function stageName(names: FeedNames, entity: EventEntity, pipelineId: string | null, stageId: string): { stage: string | null; pipeline: NamedRef | null } {
  const pipelines = pipelinesFor(names, entity);
  const inPipeline = pipelineId === null ? undefined : pipelines.find((p) => String(p.id) === pipelineId);
  // A stage id is looked for in its own pipeline first (Kommo's won/lost ids 142/143 are in every pipeline).
  for (const p of inPipeline ? [inPipeline, ...pipelines] : pipelines) {
    const s = p.stages.find((x) => String(x.id) === stageId);
    if (s) return { stage: s.name, pipeline: { id: String(p.id), name: p.name } };
  }
  return {
    stage: null,
    pipeline: inPipeline ? { id: String(inPipeline.id), name: inPipeline.name } : pipelineId === null ? null : { id: pipelineId, name: null },
  };
}

function userRef(names: FeedNames, id: string): NamedRef {
  if (id === ROBOT) return { id, name: 'a robot' };
  const u = names.users?.find((x) => String(x.id) === id);
  return { id, name: u ? u.name : null };
}

const said = (r: NamedRef, what: string) => (r.name === null ? `${what} ${r.id}` : r.name);

const VERB: Record<StoredEvent['action'], string> = {
  added: 'added',
  updated: 'updated',
  deleted: 'deleted',
  restored: 'restored',
  stage_changed: 'moved',
  responsible_changed: 'reassigned',
  completed: 'completed',
};

/**
 * One change. `where` names the account as people do ("Kommo main"); `now` decides whether the time needs its
 * date.
 */
export function describeChange(e: StoredEvent, names: FeedNames, where: string, now: Date = new Date()): Change {
  const at = e.occurred_at ?? e.received_at;
  const out: Change = { text: '', seq: e.seq, at, entity: e.entity, id: e.entity_id, action: e.action };
  const rawName = e.data?.name ?? e.data?.text;
  if (typeof rawName === 'string' && rawName.trim()) out.name = rawName;
  let line = `${e.entity} ${e.entity_id}`;
  if (out.name !== undefined) line += ` ${quoted(out.name)}`;
  if (e.parent) {
    out.parent = { entity: e.parent.entity, id: e.parent.id };
    line += ` on ${e.parent.entity} ${e.parent.id}`;
  }
  let verb = VERB[e.action];
  if (e.stage) {
    const to = stageName(names, e.entity, e.stage.to.pipeline_id, e.stage.to.stage_id);
    const from = e.stage.from ? stageName(names, e.entity, e.stage.from.pipeline_id, e.stage.from.stage_id) : null;
    out.stage = {
      pipeline: to.pipeline,
      from: e.stage.from ? { id: e.stage.from.stage_id, name: from!.stage } : null,
      to: { id: e.stage.to.stage_id, name: to.stage },
    };
    const toText = said(out.stage.to, 'stage');
    verb = out.stage.from ? `moved from ${said(out.stage.from, 'stage')} to ${toText}` : `moved to ${toText}`;
    // Another pipeline than the one it came from is worth saying.
    if (from?.pipeline && to.pipeline && from.pipeline.id !== to.pipeline.id && to.pipeline.name) verb += ` in ${to.pipeline.name}`;
  }
  if (e.responsible) {
    out.responsible = { from: e.responsible.from === null ? null : userRef(names, e.responsible.from), to: userRef(names, e.responsible.to) };
    const toText = said(out.responsible.to, 'user');
    verb = out.responsible.from ? `reassigned from ${said(out.responsible.from, 'user')} to ${toText}` : `assigned to ${toText}`;
  }
  line += ` ${verb}`;
  if (e.by_user_id !== null) {
    out.by = userRef(names, e.by_user_id);
    line += ` by ${said(out.by, 'user')}`;
  }
  out.text = `${line} (${where}, ${shortTime(at, now)})`;
  return out;
}

/** "Kommo main": the CRM's label and the connection's name (just the label when the name says no more). */
export function whereOf(label: string, connection: string): string {
  return connection.toLowerCase() === label.toLowerCase() ? label : `${label} ${connection}`;
}

// ------------------------------------------------------------------------------------------------ cursors

const CURSOR = /^ch1\.([A-Za-z0-9_-]{8})\.(.{1,40})$/;

/** A short tag of the log a cursor belongs to. */
function logTag(log: Pick<EventLog, 'description'>): string {
  return createHash('sha256').update(log.description).digest('base64url').slice(0, 8);
}

export function encodeFeedCursor(log: Pick<EventLog, 'description'>, seq: string): string {
  return `ch1.${logTag(log)}.${seq}`;
}

/** The log position in a feed cursor, or undefined when the cursor is not one of this log's. */
export function decodeFeedCursor(log: Pick<EventLog, 'description' | 'validCursor'>, cursor: string): string | undefined {
  const m = CURSOR.exec(cursor);
  if (!m || m[1] !== logTag(log) || !log.validCursor(m[2]!)) return undefined;
  return m[2];
}

/** An ISO date or date-time ("2026-12-07", "2026-12-07T10:00:00Z", with an offset), normalised to UTC ISO. */
export function isoTime(s: string): string | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(s)) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

// ------------------------------------------------------------------------------------------------ resources

/** The resource URIs a stored event changes: its connection's feed and its record's. */
export function changeUris(e: Pick<StoredEvent, 'connection' | 'entity' | 'entity_id'>): string[] {
  const c = encodeURIComponent(e.connection);
  return [`crm://${c}/changes`, `crm://${c}/${e.entity}/${encodeURIComponent(e.entity_id)}/changes`];
}

/**
 * The newest `n` events that match (newest last): the log reads forward only, so this walks it in pages and
 * keeps the tail. Bounded by the retention.
 */
export async function latestEvents(log: EventLog, q: { connection: string; entities?: EventEntity[]; entityId?: string }, n: number): Promise<StoredEvent[]> {
  let tail: StoredEvent[] = [];
  let after: string | undefined;
  for (let i = 0; i < 10_000; i++) {
    const page = await log.read({ ...q, after, limit: 500 });
    tail = tail.concat(page.events);
    if (tail.length > n) tail = tail.slice(tail.length - n);
    if (!page.has_more || !page.cursor) break;
    after = page.cursor;
  }
  return tail;
}
