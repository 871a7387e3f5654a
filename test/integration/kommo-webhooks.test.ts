/**
 * Kommo account webhooks end to end: the emulator posts its changes for real (§10.2) to the HTTP service's
 * receiver (`/hooks/kommo/<secret>`), which stores them in the event log before answering. Asserted on what
 * the log holds, counted by hand from the deliveries sent: every change once, refusals storing nothing, the
 * secret in no log line.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoConnection } from '../../src/crms/kommo/connection.js';
import { defaultRegistry } from '../../src/crms/registry.js';
import type { StoredEvent } from '../../src/domain/events.js';
import { FileEventLog } from '../../src/events/file-log.js';
import { HOOK_SECRET_GRACE_MS, saveHookSecret } from '../../src/events/hook-secrets.js';
import type { EventLog } from '../../src/events/log.js';
import { createServer } from '../../src/server.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore, type Store } from '../../src/store/store.js';
import { hooksRoute } from '../../src/transports/hooks/receiver.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { createLogger } from '../../src/util/log.js';
import { connectKommo, startKommo, structured, WRITE, type Connected } from '../helpers/index.js';

const SECRET = 'k'.repeat(20) + 'Zq81-_xYw3vB7tN0pLm5sD2fG';
const ACCOUNT = '31000001';
const logged: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk, _e, cb) {
      logged.push(String(chunk));
      cb();
    },
  }),
});

async function readAll(log: EventLog): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after: string | undefined;
  for (;;) {
    const p = await log.read({ after, limit: 500 });
    out.push(...p.events);
    after = p.cursor ?? after;
    if (!p.has_more) return out;
  }
}

interface Service {
  http: RunningHttpServer;
  base: string;
}

async function startService(o: {
  conns: KommoConnection[];
  log: EventLog;
  store: Store;
  now?: () => number;
  rate?: { perMinute: number; burst: number };
}): Promise<Service> {
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    makeServer: () => createServer({ config: { tools: {} }, providers: [] }),
    logger,
    hooks: hooksRoute({ modules: defaultRegistry.modules(), connections: o.conns, log: o.log, store: o.store, logger, now: o.now, rate: o.rate }),
  });
  return { http, base: http.url.replace(/\/mcp$/, '') };
}

const post = (url: string, body: string, type = 'application/x-www-form-urlencoded') => fetch(url, { method: 'POST', headers: { 'content-type': type }, body });

/** One update of one lead, as Kommo encodes it (keys percent-encoded like PHP's http_build_query). */
function updateBody(id: number, modified: number, account = ACCOUNT): string {
  const k = (s: string) => encodeURIComponent(s);
  return [
    `${k('leads[update][0][id]')}=${id}`,
    `${k('leads[update][0][name]')}=${k(`Lead ${id}`)}`,
    `${k('leads[update][0][last_modified]')}=${modified}`,
    `${k('leads[update][0][modified_user_id]')}=7`,
    `${k('account[id]')}=${account}`,
    `${k('account[subdomain]')}=sandbox`,
  ].join('&');
}

async function until<T>(fn: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the emulator posts its changes to the running receiver', () => {
  let emu: KommoEmulator;
  let c: Connected;
  let svc: Service;
  let log: EventLog;

  beforeAll(async () => {
    emu = await startKommo();
    c = await connectKommo(emu, { flags: WRITE, connection: { webhookSecret: SECRET } });
    log = new FileEventLog(null);
    svc = await startService({ conns: [c.provider.conn], log, store: c.store });
    // What `events bind` registers, put straight into the account (the CLI test covers bind itself).
    emu.state.webhooks.set(900, {
      id: 900,
      destination: `${svc.base}/hooks/kommo/${SECRET}`,
      created_at: 1,
      updated_at: 1,
      account_id: Number(ACCOUNT),
      created_by: 1,
      sort: 1,
      disabled: false,
      settings: ['add_lead', 'update_lead', 'status_lead', 'responsible_lead', 'delete_lead', 'add_contact', 'note_lead'],
    });
  });
  afterAll(async () => {
    await c.close();
    await svc.http.close();
    await emu.close();
  });

  it('a lead created with a tool, then moved, then deleted reaches the log within a second each', async () => {
    const created = structured<{ lead: { id: number } }>(await c.call('create_lead', { name: 'Webhook lead', price: 1200 }));
    const id = String(created.lead.id);
    const added = await until(async () => (await readAll(log)).find((e) => e.entity === 'lead' && e.entity_id === id && e.action === 'added'), 1000);
    expect(added).toMatchObject({ connection: 'kommo', crm: 'kommo', source: 'webhook', data: { name: 'Webhook lead', price: 1200 } });

    const lead = emu.state.leads.get(Number(id))!;
    const from = lead.status_id;
    const to = emu.state.pipelines.get(lead.pipeline_id)!._embedded.statuses.find((s) => s.type === 0 && s.id !== from && s.id !== 142 && s.id !== 143)!.id;
    await c.call('move_lead', { id, stage_id: to });
    const moved = await until(async () => (await readAll(log)).find((e) => e.entity_id === id && e.action === 'stage_changed'), 1000);
    expect(moved?.stage).toEqual({
      from: { pipeline_id: String(lead.pipeline_id), stage_id: String(from) },
      to: { pipeline_id: String(lead.pipeline_id), stage_id: String(to) },
    });

    emu.change((s) => s.leads.delete(Number(id)));
    const deleted = await until(async () => (await readAll(log)).find((e) => e.entity_id === id && e.action === 'deleted'), 1000);
    expect(deleted).toBeDefined();
    await emu.webhooks.idle();
    // Each webhook delivered and answered 2xx; the sender named itself as Kommo does.
    expect(emu.webhooks.deliveries.every((d) => d.ok)).toBe(true);
    const got = (await readAll(log)).filter((e) => e.entity_id === id);
    expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
  });
});

describe('a storm of 1,000 deliveries with redeliveries and a restart in the middle', () => {
  it('stores every change once', async () => {
    const emu = await startKommo({ demo: false });
    const c = await connectKommo(emu, { connection: { webhookSecret: SECRET } });
    const path = join(mkdtempSync(join(tmpdir(), 'crm-hooks-')), 'events.jsonl');
    const store = await openStore('memory');
    let log: EventLog = new FileEventLog(path);
    let svc = await startService({ conns: [c.provider.conn], log, store });
    // Each change: lead 5000+n updated at 1,700,000,000+n. A delivery that found no service is sent again, like a retry.
    const deliver = async (n: number): Promise<void> => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const r = await post(`${svc.base}/hooks/kommo/${SECRET}`, updateBody(5000 + n, 1_700_000_000 + n)).catch(() => undefined);
        if (r?.status === 200) return;
        await new Promise((res) => setTimeout(res, 20));
      }
      throw new Error(`delivery ${n} never answered 200`);
    };
    for (let burst = 0; burst < 10; burst++) {
      const ns = Array.from({ length: 100 }, (_, i) => burst * 100 + i);
      // Redeliveries: the previous burst's first 30 again, in the same burst.
      const again = burst > 0 ? Array.from({ length: 30 }, (_, i) => (burst - 1) * 100 + i) : [];
      if (burst === 5) {
        // The restart: a second service on the same file, while this burst is on its way.
        const old = svc;
        const pending = Promise.all([...ns, ...again].map(deliver));
        await old.http.close();
        await log.close();
        log = new FileEventLog(path);
        svc = await startService({ conns: [c.provider.conn], log, store });
        await pending;
      } else await Promise.all([...ns, ...again].map(deliver));
    }
    const all = await readAll(new FileEventLog(path));
    expect(all.length).toBe(1000);
    const seen = new Map(all.map((e) => [e.entity_id, e] as const));
    expect(seen.size).toBe(1000);
    for (let n = 0; n < 1000; n++) expect(seen.get(String(5000 + n))?.occurred_at).toBe(new Date((1_700_000_000 + n) * 1000).toISOString());
    await svc.http.close();
    await log.close();
    await c.close();
    await emu.close();
  }, 120_000);
});

describe('refusals store nothing', () => {
  let emu: KommoEmulator;
  let c: Connected;
  let svc: Service;
  let log: EventLog;
  beforeAll(async () => {
    emu = await startKommo({ demo: false });
    c = await connectKommo(emu, { connection: { webhookSecret: SECRET } });
    log = new FileEventLog(null);
    svc = await startService({ conns: [c.provider.conn], log, store: c.store, rate: { perMinute: 60, burst: 12 } });
  });
  afterAll(async () => {
    await c.close();
    await svc.http.close();
    await emu.close();
  });

  it.each([
    ['a wrong path secret', () => post(`${svc.base}/hooks/kommo/${'x'.repeat(43)}`, updateBody(1, 1)), 403],
    ['no path secret', () => post(`${svc.base}/hooks/kommo`, updateBody(1, 1)), 403],
    ['a wrong account[id]', () => post(`${svc.base}/hooks/kommo/${SECRET}`, updateBody(1, 1, '999')), 403],
    ['a malformed body', () => post(`${svc.base}/hooks/kommo/${SECRET}`, 'leads[update][0][id=5&account%ZZ=1'), 400],
    ['a body without its account', () => post(`${svc.base}/hooks/kommo/${SECRET}`, 'leads%5Bupdate%5D%5B0%5D%5Bid%5D=5'), 400],
    ['a key both value and group', () => post(`${svc.base}/hooks/kommo/${SECRET}`, `leads=1&${updateBody(1, 1)}`), 400],
    ['an oversized body', () => post(`${svc.base}/hooks/kommo/${SECRET}`, `${updateBody(1, 1)}&pad=${'a'.repeat(300 * 1024)}`), 413],
    ['a JSON body', () => post(`${svc.base}/hooks/kommo/${SECRET}`, '{"leads":{}}', 'application/json'), 415],
    ['an unknown CRM path', () => post(`${svc.base}/hooks/nope/${SECRET}`, updateBody(1, 1)), 404],
  ])('%s → %i', async (_what, send, status) => {
    const r = await send();
    expect(r.status).toBe(status);
    expect(((await r.json()) as { error: string }).error).toBeTruthy();
    expect((await log.read({ limit: 10 })).events).toEqual([]);
  });

  it('a GET is 405 and a flood from one address is 429, storing nothing', async () => {
    expect((await fetch(`${svc.base}/hooks/kommo/${SECRET}`)).status).toBe(405);
    const statuses = [];
    for (let i = 0; i < 20; i++) statuses.push((await post(`${svc.base}/hooks/kommo/${'y'.repeat(43)}`, updateBody(1, 1))).status);
    expect(statuses).toContain(429);
    expect((await log.read({ limit: 10 })).events).toEqual([]);
  });
});

describe('rotation grace, on an injected clock', () => {
  it('the old secret works until 24 h after the rotation, the new one after', async () => {
    const emu = await startKommo({ demo: false });
    const c = await connectKommo(emu);
    const store = await openStore('memory');
    const t0 = 1_800_000_000_000;
    let now = t0;
    const oldSecret = 'o'.repeat(43);
    const newSecret = 'n'.repeat(43);
    await saveHookSecret(store, 'kommo', oldSecret, { rotate: false, accountId: ACCOUNT, now: t0 - 1000 });
    await saveHookSecret(store, 'kommo', newSecret, { rotate: true, now: t0 });
    const log = new FileEventLog(null);
    const svc = await startService({ conns: [c.provider.conn], log, store, now: () => now });
    const send = async (s: string, n: number) => (await post(`${svc.base}/hooks/kommo/${s}`, updateBody(n, n))).status;
    now = t0 + HOOK_SECRET_GRACE_MS - 1;
    expect([await send(oldSecret, 1), await send(newSecret, 2)]).toEqual([200, 200]);
    now = t0 + HOOK_SECRET_GRACE_MS + 1;
    expect([await send(oldSecret, 3), await send(newSecret, 4)]).toEqual([403, 200]);
    expect((await readAll(log)).map((e) => e.entity_id).sort()).toEqual(['1', '2', '4']);
    // The store holds hashes, never a secret.
    expect(JSON.stringify(await store.get('events:hook-secret:kommo'))).not.toMatch(/ooooo|nnnnn/);
    await svc.http.close();
    await c.close();
    await emu.close();
  });
});

describe('logs', () => {
  it('never show a path secret, right or wrong', () => {
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain('x'.repeat(43));
      expect(line).not.toContain('o'.repeat(43));
    }
  });
});
