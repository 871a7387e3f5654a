/**
 * Bitrix24 events end to end: the emulator posts outbound webhooks to the running HTTP service (once, no
 * retry), the receiver checks `auth[application_token]` and stores; offline events are bound, pulled with
 * clear=0 and cleared by process_id, and survive a crash between get and clear; two instances on one Redis
 * store each event once; crm.stagehistory.list and the history member. Expectations are written by hand from
 * the changes the tests make, and checked against what the log stored and what the emulator received.
 */
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createMcpServer } from '../../src/server.js';
import { bitrix24Module } from '../../src/crms/bitrix24/module.js';
import { bindBitrix, pullBitrix, unbindBitrix } from '../../src/crms/bitrix24/events-offline.js';
import type { BitrixConnection } from '../../src/crms/bitrix24/connection.js';
import type { BitrixProvider } from '../../src/crms/bitrix24/provider.js';
import type { CrmEvent, StoredEvent } from '../../src/domain/events.js';
import { FileEventLog } from '../../src/events/file-log.js';
import type { EventLog } from '../../src/events/log.js';
import { startPuller } from '../../src/events/puller.js';
import { RedisEventLog } from '../../src/events/redis-log.js';
import { Grant } from '../../src/policy/policy.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { openStore, type Store } from '../../src/store/store.js';
import { hooksRoute } from '../../src/transports/hooks/receiver.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { ADMIN, bitrixMethods, connectBitrix, startBitrix, type ConnectedBitrix } from '../helpers/index.js';
import { redisAvailable, testRedisUrl } from '../helpers/redis.js';

const OAUTH = { clientId: 'local.events', clientSecret: 'events-secret-123456' };
const admin = { grant: Grant.for('admin') };

async function readAll(log: EventLog): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after: string | undefined;
  for (let i = 0; i < 100; i++) {
    const p = await log.read({ after, limit: 100 });
    out.push(...p.events);
    after = p.cursor ?? undefined;
    if (!p.has_more) break;
  }
  return out;
}

async function rest<T = unknown>(
  emu: BitrixEmulator,
  method: string,
  params: Record<string, unknown>,
  auth?: string,
): Promise<{ status: number; body: { result?: T; error?: string } }> {
  const url = auth ? `${emu.url}/rest/${method}.json` : `${emu.webhookUrl}${method}.json`;
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(auth ? { ...params, auth } : params) });
  return { status: r.status, body: (await r.json()) as { result?: T; error?: string } };
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

/** An OAuth app connection to the emulator, built like the server builds it. */
async function connectApp(emu: BitrixEmulator, store: Store, userId?: number): Promise<ConnectedBitrix> {
  const t = await emu.issueOAuthTokens(userId);
  return connectBitrix(emu, {
    flags: ADMIN,
    store,
    connection: { oauth: { ...OAUTH, refreshToken: t.refresh_token, portal: emu.url, oauthServer: emu.url } },
  });
}

const collect = (log: EventLog) => async (events: CrmEvent[]) => {
  await log.append(events);
};

describe('outbound webhooks reach the log over the running HTTP service', () => {
  let emu: BitrixEmulator;
  let http: RunningHttpServer;
  let log: EventLog;
  let store: Store;
  let token: string;
  let conn: BitrixConnection;

  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false, oauth: OAUTH });
    store = await openStore('memory');
    log = new FileEventLog(null, 1000);
    token = 'placeholder';
    conn = { name: 'bitrix24', provider: 'bitrix24', webhookUrl: emu.webhookUrl, plan: 'standard', policy: ADMIN, outboundToken: token };
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      makeServer: () => createMcpServer({ config: { tools: {} }, providers: [] }),
      hooks: hooksRoute({ modules: [bitrix24Module as never], connections: [conn], log, store }),
    });
    token = emu.setOutboundWebhook(`${new URL(http.url).origin}/hooks/bitrix24`, ['ONCRMDEALUPDATE', 'ONCRMLEADADD'])!;
    conn.outboundToken = token;
  });
  afterAll(async () => {
    await http.close();
    await emu.close();
  });

  it('a deal changed in the portal is in the log within a second, once, with ids only', async () => {
    const id = 1;
    expect((await rest(emu, 'crm.deal.update', { id, fields: { TITLE: 'Changed for the hook' } })).status).toBe(200);
    const found = await until(async () => (await readAll(log)).some((e) => e.entity === 'deal' && e.entity_id === String(id)), 1000);
    expect(found).toBe(true);
    const stored = (await readAll(log)).filter((e) => e.entity_id === String(id));
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ connection: 'bitrix24', crm: 'bitrix24', entity: 'deal', action: 'updated', source: 'webhook', by_user_id: null });
    expect(stored[0]!.occurred_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    await emu.settleEvents();
    expect(emu.deliveries.filter((d) => d.via === 'webhook').map((d) => [d.event, d.status])).toEqual([['ONCRMDEALUPDATE', 200]]);
  });

  it('a wrong token, a malformed body, a wrong content type, a missing id and an oversized body are 4xx and store nothing', async () => {
    const before = (await readAll(log)).length;
    const hook = `${new URL(http.url).origin}/hooks/bitrix24`;
    const form = (over: Record<string, string>) =>
      new URLSearchParams({
        event: 'ONCRMLEADADD',
        'data[FIELDS][ID]': '77',
        ts: '1760000000',
        'auth[member_id]': 'm1',
        'auth[application_token]': token,
        ...over,
      }).toString();
    const post = async (body: string, type = 'application/x-www-form-urlencoded') =>
      (await fetch(hook, { method: 'POST', headers: { 'content-type': type }, body })).status;
    expect(await post(form({ 'auth[application_token]': 'not-the-token-at-all' }))).toBe(403);
    expect(await post(form({ 'auth[application_token]': '' }))).toBe(400);
    expect(await post(`${form({})}&data%5BFIELDS%5D%5BID%5D=%ZZ`)).toBe(400);
    expect(await post(form({ 'data[FIELDS][ID]': 'abc' }))).toBe(400);
    expect(await post(JSON.stringify({ event: 'ONCRMLEADADD' }), 'application/json')).toBe(415);
    expect(await post(`${form({})}&pad=${'x'.repeat(300 * 1024)}`)).toBe(413);
    expect((await readAll(log)).length).toBe(before);
    // The same form with the right token is stored: the refusals above were about what they changed.
    expect(await post(form({}))).toBe(200);
    expect((await readAll(log)).length).toBe(before + 1);
  });
});

describe('offline events', () => {
  let emu: BitrixEmulator;
  afterEach(async () => {
    await emu?.close();
  });

  it('a receiver that is down misses the online event (no retry); the offline queue still delivers it through pull', async () => {
    emu = await startBitrix({ rateLimit: false, oauth: OAUTH });
    const store = await openStore('memory');
    const log = new FileEventLog(null, 1000);
    const app = await connectApp(emu, store);
    emu.setOutboundWebhook('http://127.0.0.1:9/hooks/bitrix24', ['ONCRMLEADADD']);
    await bindBitrix(app.provider, admin, {});
    expect(emu.state.eventBindings.filter((b) => b.offline === 1)).toHaveLength(15);
    const id = (await rest<number>(emu, 'crm.lead.add', { fields: { TITLE: 'While down' } })).body.result!;
    await emu.settleEvents();
    await new Promise((r) => setTimeout(r, 300));
    expect(emu.deliveries.filter((d) => d.event === 'ONCRMLEADADD').map((d) => d.status)).toEqual(['error']);
    expect(await readAll(log)).toEqual([]);

    expect(await pullBitrix(app.provider, { grant: Grant.readOnly() }, collect(log))).toBe(1);
    const stored = await readAll(log);
    expect(stored.map((e) => [e.entity, e.entity_id, e.action, e.source])).toEqual([['lead', String(id), 'added', 'offline']]);
    expect(emu.state.offlineEvents).toEqual([]);
    // Nothing was fetched: the pull sent the queue calls only.
    const sent = bitrixMethods(emu.requests).filter((m) => !m.startsWith('event.bind') && m !== 'crm.lead.add');
    expect(sent.filter((m) => m.startsWith('crm.'))).toEqual([]);
    expect(sent).toEqual(expect.arrayContaining(['event.offline.get', 'event.offline.clear']));
    await app.close();
  });

  it('survive a crash between get and clear: the reserved batch is read again by process_id, stored once, then cleared', async () => {
    emu = await startBitrix({ rateLimit: false, oauth: OAUTH });
    const store = await openStore('memory');
    const log = new FileEventLog(null, 1000);
    const first = await connectApp(emu, store);
    await bindBitrix(first.provider, admin, {});
    const lead = (await rest<number>(emu, 'crm.lead.add', { fields: { TITLE: 'Queued' } })).body.result!;
    // Three updates of one deal leave one record (the queue keeps the latest state only).
    for (const t of ['a', 'b', 'c']) expect((await rest(emu, 'crm.deal.update', { id: 2, fields: { TITLE: t } })).status).toBe(200);
    expect(emu.state.offlineEvents.map((e) => [e.EVENT_NAME, (e.EVENT_DATA as { FIELDS: { ID: string } }).FIELDS.ID])).toEqual([
      ['ONCRMLEADADD', String(lead)],
      ['ONCRMDEALUPDATE', '2'],
    ]);

    const crash = async (events: CrmEvent[]) => {
      await log.append(events);
      throw new Error('killed after storing');
    };
    await expect(pullBitrix(first.provider, { grant: Grant.readOnly() }, crash)).rejects.toThrow('killed after storing');
    expect(emu.state.offlineEvents).toHaveLength(2);
    const pid = emu.state.offlineEvents[0]!.PROCESS_ID;
    expect(pid).not.toBe('');
    expect(emu.state.offlineEvents.every((e) => e.PROCESS_ID === pid)).toBe(true);
    // Hidden from other readers while reserved.
    const t = await emu.issueOAuthTokens();
    expect(
      (await rest<{ events: unknown[] }>(emu, 'event.offline.get', { clear: 0, auth_connector: 'crm-mcp-bitrix24' }, t.access_token)).body.result!.events,
    ).toEqual([]);
    await first.close();

    // "Restart": a new provider on the same store.
    const second = await connectApp(emu, store);
    const before = emu.requests.length;
    expect(await pullBitrix(second.provider, { grant: Grant.readOnly() }, collect(log))).toBe(2);
    const calls = emu.requests.slice(before).filter((r) => r.path.endsWith('event.offline.get.json'));
    expect(JSON.parse(calls[0]!.body ?? '{}')).toMatchObject({ clear: 0, process_id: pid });
    expect(emu.state.offlineEvents).toEqual([]);
    const stored = await readAll(log);
    expect(stored.map((e) => `${e.entity}:${e.entity_id}:${e.action}`).sort()).toEqual([`deal:2:updated`, `lead:${lead}:added`]);
    await second.close();
  });

  it("the server's own writes carry auth_connector and do not come back as offline events", async () => {
    emu = await startBitrix({ rateLimit: false, oauth: OAUTH });
    const store = await openStore('memory');
    const app = await connectApp(emu, store);
    await bindBitrix(app.provider, admin, {});
    await app.provider.call({ grant: Grant.for('update') }, 'crm.deal.update', { id: 3, fields: { TITLE: 'by the server' } });
    const body = JSON.parse(emu.requests.at(-1)!.body ?? '{}') as Record<string, unknown>;
    expect(body.auth_connector).toBe('crm-mcp-bitrix24');
    expect(emu.state.offlineEvents).toEqual([]);
    // A person's change in the portal is queued.
    await rest(emu, 'crm.deal.update', { id: 3, fields: { TITLE: 'by a person' } });
    expect(emu.state.offlineEvents.map((e) => e.EVENT_NAME)).toEqual(['ONCRMDEALUPDATE']);
    await unbindBitrix(app.provider, admin, {});
    expect(emu.state.eventBindings).toEqual([]);
    await app.close();
  });

  it('event.bind is refused on a webhook connection and for a non-admin; without an admin grant nothing is sent', async () => {
    emu = await startBitrix({ rateLimit: false, oauth: OAUTH });
    const store = await openStore('memory');
    // The portal's answers, by hand.
    expect((await rest(emu, 'event.bind', { event: 'ONCRMLEADADD', event_type: 'offline' })).body.error).toBe('WRONG_AUTH_TYPE');
    const user2 = await emu.issueOAuthTokens(2);
    const refused = await rest(emu, 'event.bind', { event: 'ONCRMLEADADD', event_type: 'offline' }, user2.access_token);
    expect(refused).toMatchObject({ status: 403, body: { error: 'ACCESS_DENIED' } });
    expect((await rest(emu, 'event.offline.get', { clear: 0 }, user2.access_token)).status).toBe(403);
    expect(emu.state.eventBindings).toEqual([]);

    const hook = await connectBitrix(emu, { flags: ADMIN, store });
    const n = emu.requests.length;
    await expect(bindBitrix(hook.provider, admin, {})).rejects.toThrow(/OAuth app connection/);
    expect(emu.requests.length).toBe(n);

    const app = await connectApp(emu, store);
    const m = emu.requests.length;
    await expect(bindBitrix(app.provider, { grant: Grant.for('update') }, {})).rejects.toThrow();
    expect(bitrixMethods(emu.requests.slice(m))).not.toContain('event.bind');

    const nonAdmin = await connectApp(emu, await openStore('memory'), 2);
    await expect(bindBitrix(nonAdmin.provider, admin, {})).rejects.toThrow();
    expect(emu.state.eventBindings).toEqual([]);
    for (const c of [hook, app, nonAdmin]) await c.close();
  });
});

describe.skipIf(!redisAvailable())('two instances on one Redis', () => {
  it('pulling at once, each event is stored once and the queue ends empty', async () => {
    const emu = await startBitrix({ rateLimit: false, oauth: OAUTH });
    const redis = await testRedisUrl(12);
    const stores = [await openStore(redis.url), await openStore(redis.url)];
    try {
      await stores[0]!.redis!.flushDb();
      const logs = stores.map((s) => new RedisEventLog(s.redis!, 10_000));
      const apps = [await connectApp(emu, stores[0]!), await connectApp(emu, stores[1]!)];
      await bindBitrix(apps[0]!.provider, admin, {});
      const ids: number[] = [];
      for (let i = 0; i < 120; i++) ids.push((await rest<number>(emu, 'crm.lead.add', { fields: { TITLE: `Burst ${i}` } })).body.result!);
      const pullers = apps.map((a, i) =>
        startPuller({
          targets: [{ connection: a.provider.connection, kind: a.provider.kind }],
          pullOf: () => (_t, ctx, st) => pullBitrix(a.provider as BitrixProvider, ctx, st),
          log: logs[i]!,
          store: stores[i]!,
          intervalSec: 0,
        }),
      );
      for (let round = 0; round < 4; round++) await Promise.all(pullers.map((p) => p.tick()));
      const stored = await readAll(logs[0]!);
      expect(stored.map((e) => Number(e.entity_id)).sort((a, b) => a - b)).toEqual(ids);
      expect(new Set(stored.map((e) => e.id)).size).toBe(120);
      expect(emu.state.offlineEvents).toEqual([]);
      for (const p of pullers) await p.stop();
      for (const a of apps) await a.close();
      for (const l of logs) await l.close();
    } finally {
      for (const s of stores) await s.close();
      await redis.close();
      await emu.close();
    }
  });
});

describe('stage history', () => {
  it('crm.stagehistory.list records hand-made moves; the history member names them', async () => {
    const emu = await startBitrix({ rateLimit: false });
    try {
      const id = (await rest<number>(emu, 'crm.deal.add', { fields: { TITLE: 'Staged', STAGE_ID: 'NEW' } })).body.result!;
      await rest(emu, 'crm.deal.update', { id, fields: { TITLE: 'no move' } });
      await rest(emu, 'crm.deal.update', { id, fields: { STAGE_ID: 'PREPARATION' } });
      await rest(emu, 'crm.deal.update', { id, fields: { STAGE_ID: 'WON' } });
      const list = await rest<{ items: Array<Record<string, unknown>> }>(emu, 'crm.stagehistory.list', {
        entityTypeId: 2,
        filter: { OWNER_ID: id },
        order: { ID: 'ASC' },
      });
      expect(list.body.result!.items.map((r) => [r.TYPE_ID, r.STAGE_ID, r.STAGE_SEMANTIC_ID, r.CATEGORY_ID, r.OWNER_ID])).toEqual([
        [1, 'NEW', 'P', 0, id],
        [2, 'PREPARATION', 'P', 0, id],
        [3, 'WON', 'S', 0, id],
      ]);
      expect((list.body as { total?: number }).total).toBe(3);
      const sel = await rest<{ items: Array<Record<string, unknown>> }>(emu, 'crm.stagehistory.list', {
        entityTypeId: 2,
        filter: { OWNER_ID: id, '>TYPE_ID': 1 },
        select: ['ID', 'STAGE_ID'],
        order: { ID: 'DESC' },
      });
      expect(sel.body.result!.items.map((r) => Object.keys(r).sort().join(',') + ':' + String(r.STAGE_ID))).toEqual([
        'ID,STAGE_ID:WON',
        'ID,STAGE_ID:PREPARATION',
      ]);
      expect((await rest(emu, 'crm.stagehistory.list', { entityTypeId: 5 })).body.error).toBe('ENTITY_TYPE_NOT_SUPPORTED');
      expect((await rest(emu, 'crm.stagehistory.list', { entityTypeId: 2, filter: { TITLE: 'x' } })).body.error).toBe('INVALID_ARG_VALUE');

      expect((await rest(emu, 'crm.timeline.comment.add', { fields: { ENTITY_ID: id, ENTITY_TYPE: 'deal', COMMENT: 'Called the client' } })).status).toBe(200);

      // get_record_history through a real MCP client, the events toolset on.
      const c = await connectBitrix(emu, {});
      const server = createMcpServer({ config: { tools: { toolsets: ['events'] } }, providers: [c.provider] });
      const client = new Client({ name: 'test', version: '0.0.0' });
      const [ct, st] = InMemoryTransport.createLinkedPair();
      await Promise.all([server.connect(st), client.connect(ct)]);
      const res = (await client.callTool({ name: 'get_record_history', arguments: { entity: 'deal', id } })) as {
        isError?: boolean;
        structuredContent?: unknown;
      };
      expect(res.isError).toBeFalsy();
      const h = res.structuredContent as {
        name: string;
        entries: Array<{ type: string; text: string; by: { id: number; name: string | null } | null }>;
        has_more: boolean;
      };
      expect(h.name).toBe('no move');
      const stagesOnly = h.entries.filter((e) => e.type !== 'note_added');
      expect(stagesOnly.map((e) => [e.type, e.text, e.by])).toEqual([
        ['stage_changed', 'stage moved from Document preparation to Deal won (won)', null],
        ['stage_changed', 'stage moved from New to Document preparation', null],
        ['added', 'created in New', null],
      ]);
      const u1 = emu.state.users.find((u) => u.ID === '1')!;
      expect(h.entries.filter((e) => e.type === 'note_added')).toEqual([
        expect.objectContaining({ text: `comment by ${u1.NAME} ${u1.LAST_NAME}: Called the client`, by: { id: 1, name: `${u1.NAME} ${u1.LAST_NAME}` } }),
      ]);
      expect(h.has_more).toBe(false);
      // One batch for the record, its stage history and its comments (the lookups come from the cache or their own batches).
      const sent = emu.requests.filter((r) => r.path.endsWith('batch.json')).map((r) => r.body ?? '');
      expect(sent.some((b) => b.includes('crm.stagehistory.list') && b.includes('crm.deal.get') && b.includes('crm.timeline.comment.list'))).toBe(true);
      await client.close();
      await server.close();
      await c.close();
    } finally {
      await emu.close();
    }
  });
});
