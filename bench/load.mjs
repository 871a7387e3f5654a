/**
 * 6. Load: 20 concurrent Streamable HTTP MCP clients for 30 s of mixed read calls against one spawned
 * `dist/cli.js --http` configured with both CRMs, the emulators enforcing the real limits.
 *
 * Mix: cached reads (metadata the server keeps for 5 minutes) most of the time, plus uncached reads that reach
 * the CRM (search_lead_by_contact, get_lead, list_leads) issued at a fixed pace shared by all clients: Kommo
 * 1.5 calls/s (≤ 3 requests each, so ≤ 4.5 of its 7 requests/s) and Bitrix24 0.5 calls/s (≤ 2 batch requests
 * each, ≤ 1 of its 2/s). An agent fleet cannot get more uncached work through the CRMs' limits than that; more
 * would only queue in the server's limiter (by design) and measure the queue.
 */
import { DEMO as BDEMO } from '../dist/sandbox/bitrix24/index.js';
import { DEMO as KDEMO } from '../dist/sandbox/kommo/index.js';
import {
  cpuSecondsOf,
  bitrixCounters,
  bitrixEmu,
  httpClient,
  kommoCounters,
  kommoEmu,
  log,
  memoryOf,
  round,
  serverEnv,
  sleep,
  spawnHttpServer,
  stats,
  textOf,
} from './lib.mjs';

const CLIENTS = 20;
const DURATION_MS = 30_000;
const RATE = { kommo: 1.5, bitrix24: 0.5 };

const CACHED = [
  ['get_pipelines', { crm: 'kommo' }],
  ['get_pipelines', { crm: 'bitrix24' }],
  ['get_custom_fields', { crm: 'kommo', entity: 'leads' }],
  ['get_custom_fields', { crm: 'bitrix24', entity: 'deals' }],
  ['list_users', { crm: 'kommo' }],
  ['get_account', { crm: 'kommo' }],
];

function uncached(crm, i) {
  if (crm === 'kommo') {
    const calls = [
      ['search_lead_by_contact', { crm, phone: KDEMO.ivanPhone }],
      ['get_lead', { crm, id: KDEMO.ivanLeadId + (i % KDEMO.counts.leads) }],
      ['list_leads', { crm, limit: 50, pipeline_id: KDEMO.pipelineIds[i % 3] }],
    ];
    return calls[i % calls.length];
  }
  const calls = [
    ['search_lead_by_contact', { crm, phone: '+7 912 345-67-89' }],
    ['get_lead', { crm, id: 1 + (i % BDEMO.counts.deals), entity: 'deal' }],
    ['list_leads', { crm, limit: 50, entity: 'deal' }],
  ];
  return calls[i % calls.length];
}

export async function load() {
  log(`load: ${CLIENTS} HTTP clients for ${DURATION_MS / 1000} s`);
  const { emu: k, token } = await kommoEmu();
  const b = await bitrixEmu();
  // The mix calls metadata tools (get_custom_fields, list_users), off on a fresh install.
  const srv = await spawnHttpServer({
    env: serverEnv({ KOMMO_BASE_URL: k.url, KOMMO_ACCESS_TOKEN: token, BITRIX_WEBHOOK_BASE: b.webhookUrl, CRM_TOOLSETS: 'all' }),
  });
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await httpClient(srv.url));
  // Fill the metadata caches once (as the first agent call of the day would).
  for (const [name, args] of CACHED) await clients[0].call(name, args);
  await sleep(1100);
  const kBefore = kommoCounters(k);
  const bBefore = bitrixCounters(b);
  const memBefore = memoryOf(srv.pid);
  const cpuBefore = { server: cpuSecondsOf(srv.pid), bench: process.cpuUsage() };

  const lat = { cached: [], uncached: [] };
  const errors = [];
  const counts = {};
  const t0 = performance.now();
  const end = t0 + DURATION_MS;
  const due = { kommo: t0, bitrix24: t0 };
  const issued = { kommo: 0, bitrix24: 0 };
  let n = 0;

  const worker = async (c, w) => {
    let j = w;
    while (performance.now() < end) {
      const now = performance.now();
      let kind = 'cached';
      let call = CACHED[j++ % CACHED.length];
      for (const crm of ['kommo', 'bitrix24']) {
        if (now >= due[crm]) {
          due[crm] += 1000 / RATE[crm];
          kind = 'uncached';
          call = uncached(crm, issued[crm]++);
          break;
        }
      }
      const [name, args] = call;
      const t = performance.now();
      try {
        const res = await c.call(name, args);
        if (res.isError) errors.push(`${name}: ${textOf(res).slice(0, 200)}`);
      } catch (e) {
        errors.push(`${name}: ${String(e?.message ?? e).slice(0, 200)}`);
      }
      lat[kind].push(performance.now() - t);
      const key = `${name} (${args.crm})`;
      counts[key] = (counts[key] ?? 0) + 1;
      n += 1;
    }
  };
  await Promise.all(clients.map((c, i) => worker(c, i)));
  const elapsed = performance.now() - t0;
  const memAfter = memoryOf(srv.pid);
  const serverCpu = cpuSecondsOf(srv.pid) - cpuBefore.server;
  const benchCpu = process.cpuUsage(cpuBefore.bench);
  for (const c of clients) await c.close();
  await srv.close();
  const kd = kommoCounters(k);
  const bd = bitrixCounters(b);
  await k.close();
  await b.close();
  const all = [...lat.cached, ...lat.uncached];
  return {
    clients: CLIENTS,
    duration_s: round(elapsed / 1000, 1),
    calls: n,
    calls_per_s: round(n / (elapsed / 1000), 1),
    latency_ms: { all: stats(all), cached: stats(lat.cached), uncached: stats(lat.uncached) },
    errors: errors.length,
    error_samples: [...new Set(errors)].slice(0, 5),
    mix: counts,
    uncached_pace_calls_per_s: RATE,
    emulator: {
      kommo: { requests: kd.requests - kBefore.requests, rate_limited_429: kd.rate_limited_429 - kBefore.rate_limited_429, blocked_403: kd.blocked_403 },
      bitrix24: {
        requests: bd.requests - bBefore.requests,
        query_limit_exceeded_503: bd.query_limit_exceeded_503 - bBefore.query_limit_exceeded_503,
        operation_time_limit_429: bd.operation_time_limit_429 - bBefore.operation_time_limit_429,
      },
    },
    server_memory: { before: memBefore, after: memAfter },
    cpu: {
      server_cpu_s: round(serverCpu, 2),
      server_cpu_ms_per_call: round((serverCpu * 1000) / n, 2),
      bench_process_cpu_s: round((benchCpu.user + benchCpu.system) / 1e6, 2),
      note: 'the bench process runs the 20 clients and both emulators; the server is one Node process (one core at most)',
    },
  };
}
