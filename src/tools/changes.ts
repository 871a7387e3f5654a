/**
 * list_changes: the change feed (src/events/), the path to "what changed" that works in every client today.
 * It reads the event log the receivers fill, oldest first, a page at a time, and answers one compact line per
 * change with names beside ids; the names come from the provider's cached pipelines and users, looked up once
 * per page. Each reader's position is kept in the store, so a call without `since` continues where that
 * reader left off (the last 24 hours the first time).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { EVENT_ACTIONS, EVENT_ENTITIES, type EventEntity, type StoredEvent } from '../domain/events.js';
import { validationError } from '../domain/errors.js';
import { decodeFeedCursor, describeChange, encodeFeedCursor, isoTime, whereOf, type Change, type FeedNames } from '../events/feed.js';
import type { CallContext, CrmProvider } from '../crms/types.js';
import { defineTool, UNTRUSTED, type ChangeFeed } from './define.js';

/**
 * Who reads, for the saved cursor: set by the server around each call (server.ts) from the request's identity
 * (approvals/channel.ts principalOf, and the client's name over HTTP); stdio is one reader.
 */
export const feedReader = new AsyncLocalStorage<string>();

const DAY_MS = 24 * 3600_000;
/** A reader who has not read for this long starts over from the last 24 hours. */
const READER_TTL_MS = 30 * DAY_MS;

const NamedRef = z.object({ id: z.string(), name: z.string().nullable() });
const ChangeOut = z.object({
  text: z.string().describe('One line: the record, what happened, by whom, where and when (UTC).'),
  seq: z.string(),
  at: z.string(),
  entity: z.enum(EVENT_ENTITIES),
  id: z.string(),
  action: z.enum(EVENT_ACTIONS),
  name: z.string().optional(),
  by: NamedRef.optional(),
  stage: z.object({ pipeline: NamedRef.nullable(), from: NamedRef.nullable(), to: NamedRef }).optional(),
  responsible: z.object({ from: NamedRef.nullable(), to: NamedRef }).optional(),
  parent: z.object({ entity: z.enum(EVENT_ENTITIES), id: z.string() }).optional(),
});

/** The store key of a reader's cursor for one view of the feed (its connection and filters). */
function readerKey(reader: string, view: unknown): string {
  const h = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 16);
  return `events:reader:${h(reader)}:${h(JSON.stringify(view))}`;
}

/** Pipelines and users for a page's names: one lookup each, only when the page needs it; a refused lookup leaves ids. */
export async function namesFor(provider: CrmProvider, ctx: CallContext, events: readonly StoredEvent[]): Promise<FeedNames> {
  const needStages = events.some((e) => e.stage);
  const needUsers = events.some((e) => (e.by_user_id !== null && e.by_user_id !== '0') || e.responsible);
  const [pipelines, users] = await Promise.all([
    needStages && provider.pipelines ? provider.pipelines(ctx).catch(() => undefined) : undefined,
    needUsers && provider.users ? provider.users(ctx).catch(() => undefined) : undefined,
  ]);
  return { pipelines, users };
}

/** A page of events as the feed shows them. */
export async function describeChanges(feed: ChangeFeed, provider: CrmProvider, ctx: CallContext, events: readonly StoredEvent[]): Promise<Change[]> {
  if (!events.length) return [];
  const names = await namesFor(provider, ctx, events);
  const where = whereOf(feed.labelOf(provider.kind), provider.connection);
  const now = new Date();
  return events.map((e) => describeChange(e, names, where, now));
}

export const listChanges = defineTool({
  name: 'list_changes',
  title: 'List recent CRM changes',
  description:
    'What changed in the CRM (from its webhooks and offline events): records added, updated, deleted, moved between stages, reassigned, tasks completed, oldest first, one line each with names beside ids. ' +
    'Without `since` it continues where you last read (the last 24 h the first time); pass back `cursor` to page on, and call again later for newer changes. ' +
    UNTRUSTED,
  effect: 'read',
  toolset: 'events',
  requires: [],
  input: z.object({
    since: z
      .string()
      .max(100)
      .optional()
      .describe('A `cursor` from an earlier answer, or an ISO time (changes at or after it). Omit to continue where you left off.'),
    entity: z.enum(EVENT_ENTITIES).optional().describe('Only changes of this kind of record.'),
    types: z.array(z.enum(EVENT_ACTIONS)).min(1).max(EVENT_ACTIONS.length).optional().describe('Only these kinds of change.'),
    limit: z.number().int().min(1).max(200).default(50).describe('Changes to return (default 50).'),
  }),
  output: z.object({
    changes: z.array(ChangeOut),
    cursor: z.string().nullable().describe('Pass as `since` to continue after this page (also kept as your own position).'),
    has_more: z.boolean().describe('True when more changes are already waiting after `cursor`.'),
    from: z.enum(['cursor', 'time', 'saved', 'last_24h']).describe('Where this page started: your cursor, your time, where you left off, or the last 24 h.'),
  }),
  async handler({ since, entity, types, limit }, { provider, ctx, changes: feed }) {
    if (!feed) throw validationError('The change feed is not available on this server.');
    const view = { connection: provider.connection, entity: entity ?? null, types: types ? [...types].sort() : null };
    const key = readerKey(feedReader.getStore() ?? 'stdio', view);
    let after: string | undefined;
    let sinceTime: string | undefined;
    let from: 'cursor' | 'time' | 'saved' | 'last_24h';
    if (since !== undefined) {
      const time = isoTime(since);
      if (time) {
        sinceTime = time;
        from = 'time';
      } else {
        after = decodeFeedCursor(feed.log, since);
        if (after === undefined)
          throw validationError(
            'since: not a cursor of this server\'s change feed, nor an ISO time. Pass back exactly the `cursor` a previous list_changes returned (cursors from another server or store do not carry over), a time such as "2026-12-07T10:00:00Z", or omit `since`.',
          );
        from = 'cursor';
      }
    } else {
      const saved = await feed.store.get<string>(key);
      after = saved === undefined ? undefined : decodeFeedCursor(feed.log, saved);
      if (after !== undefined) from = 'saved';
      else {
        sinceTime = new Date(Date.now() - DAY_MS).toISOString();
        from = 'last_24h';
      }
    }
    const page = await feed.log.read({
      after,
      since: sinceTime,
      connection: provider.connection,
      entities: entity ? [entity as EventEntity] : undefined,
      actions: types,
      limit,
    });
    const cursor = page.cursor === null ? null : encodeFeedCursor(feed.log, page.cursor);
    if (cursor) await feed.store.set(key, cursor, READER_TTL_MS);
    return { changes: await describeChanges(feed, provider, ctx, page.events), cursor, has_more: page.has_more, from };
  },
});
