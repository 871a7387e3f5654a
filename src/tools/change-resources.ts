/**
 * The change feed as MCP resources, registered beside list_changes (server.ts) when the events toolset is on:
 *
 * - `crm://{connection}/changes`: the newest page of a connection's feed, as JSON;
 * - `crm://{connection}/{entity}/{id}/changes` (a template): one record's changes.
 *
 * Subscriptions: on the 2025 revisions a client sends `resources/subscribe` and gets
 * `notifications/resources/updated` when the log gets new events for that resource; on 2026-07-28 it opens
 * `subscriptions/listen` with `resourceSubscriptions`, which the SDK's serving entry answers and filters. A
 * long-lived server (stdio, one connection) hears the log through the notifier (events/notify.ts) and sends
 * the updates itself; the HTTP service's servers live for one request, so there the SDK handler's listen
 * streams take them from the notifier as their `ServerEventBus`. A 2025 client over stateless HTTP has no
 * stream to receive an update on, so its `resources/subscribe` is refused with a clear message.
 */
import {
  CLIENT_INFO_META_KEY,
  ProtocolError,
  ProtocolErrorCode,
  ResourceNotFoundError,
  ResourceTemplate,
  type McpServer,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { principalOf, type ClientFacts } from '../approvals/channel.js';
import { EVENT_ENTITIES, isEventEntity } from '../domain/events.js';
import { encodeFeedCursor, latestEvents } from '../events/feed.js';
import type { ChangeNotifier } from '../events/notify.js';
import { Grant } from '../policy/policy.js';
import type { CrmProvider } from '../crms/types.js';
import { describeChanges } from './changes.js';
import { UNTRUSTED, type ChangeFeed } from './define.js';

/** Changes a resource shows: the newest of them (the feed tool pages through more). */
const RESOURCE_PAGE = 50;

export interface ChangeResourceOptions {
  feed: ChangeFeed;
  providers: readonly CrmProvider[];
  /** Set for a server that lives as long as its connection (stdio): it sends the updates itself. */
  notifier?: ChangeNotifier;
  /** The era the server serves (serveStdio and createMcpHandler say); 2026-07-28 subscriptions are the SDK's. */
  era?: 'legacy' | 'modern';
}

const feedUri = (connection: string) => `crm://${encodeURIComponent(connection)}/changes`;
const RECORD = /^crm:\/\/([^/]+)\/([a-z_]+)\/([^/]+)\/changes$/;

/** The connection and record a resource URI names (undefined: not one of ours). */
function parseUri(uri: string, providers: readonly CrmProvider[]): { provider: CrmProvider; entity?: string; id?: string } | undefined {
  const byName = (c: string) => providers.find((p) => encodeURIComponent(p.connection) === c);
  const m = RECORD.exec(uri);
  if (m) {
    const provider = byName(m[1]!);
    return provider && isEventEntity(m[2]) ? { provider, entity: m[2], id: decodeURIComponent(m[3]!) } : undefined;
  }
  const provider = providers.find((p) => feedUri(p.connection) === uri);
  return provider ? { provider } : undefined;
}

export function registerChangeResources(server: McpServer, o: ChangeResourceOptions): void {
  const read = async (uri: string, signal: AbortSignal | undefined) => {
    const target = parseUri(uri, o.providers);
    if (!target) throw new ResourceNotFoundError(uri, `No change feed at ${uri}: the connections here are ${o.providers.map((p) => p.connection).join(', ')}.`);
    const { provider, entity, id } = target;
    const events = await latestEvents(
      o.feed.log,
      { connection: provider.connection, ...(entity ? { entities: [entity as (typeof EVENT_ENTITIES)[number]], entityId: id } : {}) },
      RESOURCE_PAGE,
    );
    const changes = await describeChanges(o.feed, provider, { grant: Grant.for('read'), signal }, events);
    const last = events[events.length - 1];
    const body = {
      connection: provider.connection,
      ...(entity ? { record: { entity, id } } : {}),
      changes,
      // list_changes continues after the newest change shown here.
      cursor: last ? encodeFeedCursor(o.feed.log, last.seq) : null,
      note: UNTRUSTED,
    };
    return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(body) }] };
  };

  for (const p of o.providers) {
    server.registerResource(
      `changes-${p.connection}`,
      feedUri(p.connection),
      {
        title: `Recent changes (${p.connection})`,
        description: `The newest ${RESOURCE_PAGE} changes of this CRM connection, oldest first; subscribe to hear of new ones. ${UNTRUSTED}`,
        mimeType: 'application/json',
      },
      (uri, ctx) => read(uri.href, ctx.mcpReq.signal),
    );
  }
  server.registerResource(
    'record-changes',
    new ResourceTemplate('crm://{connection}/{entity}/{id}/changes', { list: undefined }),
    {
      title: "A record's changes",
      description: `The changes of one record (entity: ${EVENT_ENTITIES.join(', ')}), oldest first; subscribe to hear of new ones. ${UNTRUSTED}`,
      mimeType: 'application/json',
    },
    (uri, _vars, ctx) => read(uri.href, ctx.mcpReq.signal),
  );

  // 2025 revisions: resources/subscribe, answered by a server that can deliver the updates.
  const subscribed = new Set<string>();
  server.server.setRequestHandler('resources/subscribe', (req) => {
    const uri = req.params.uri;
    if (!parseUri(uri, o.providers)) throw new ResourceNotFoundError(uri);
    if (!o.notifier)
      throw new ProtocolError(
        ProtocolErrorCode.InvalidRequest,
        'Resource updates cannot reach this client: this HTTP service is stateless on the 2025 revisions. Use subscriptions/listen (protocol 2026-07-28), stdio, or poll list_changes.',
      );
    subscribed.add(uri);
    return {};
  });
  server.server.setRequestHandler('resources/unsubscribe', (req) => {
    subscribed.delete(req.params.uri);
    return {};
  });
  if (!o.notifier) return;
  const ours = new Set(o.providers.map((p) => encodeURIComponent(p.connection)));
  const off = o.notifier.subscribe((uris) => {
    for (const uri of uris) {
      // On 2026-07-28 the serving entry keeps the listen filters and drops what nobody asked for.
      const wanted = o.era === 'modern' ? ours.has(/^crm:\/\/([^/]+)\//.exec(uri)?.[1] ?? '') : subscribed.has(uri);
      if (wanted) server.server.sendResourceUpdated({ uri }).catch(() => undefined);
    }
  });
  const closed = server.server.onclose;
  server.server.onclose = () => {
    off();
    closed?.();
  };
}

/**
 * Who reads the feed, for list_changes' saved position: the request's principal (approvals/channel.ts: the
 * OAuth client, the bearer token's hash, `http`, or `stdio`), and over HTTP the client's name too, so two
 * clients behind one token keep their own places. stdio is one reader.
 */
export function readerOf(ctx: ServerContext, server: Pick<ClientFacts, 'getClientVersion'>): string {
  const principal = principalOf(ctx);
  if (!ctx.http) return principal;
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const info = (envelope?.[CLIENT_INFO_META_KEY] as { name?: unknown } | undefined) ?? server.getClientVersion();
  return `${principal}|${typeof info?.name === 'string' ? info.name.slice(0, 100) : ''}`;
}
