/**
 * 1. Bulk read vs the ceiling the CRM's own limit allows, against emulators with the real limits.
 *
 * Kommo: 7 requests/s per token × 250 leads per page = 1750 rec/s (the sliding 1 s window also lets the first
 * 7 requests go at t = 0, so for R = ⌈N/250⌉ requests the exact bound is (⌈R/7⌉ − 1) s; reported beside it).
 * Bitrix24: a leaky bucket of 50 requests draining 2/s; one `batch` carries 50 commands × 50 rows = 2500 rows.
 * Reading N rows needs R = ⌈N/2500⌉ requests; the first 50 fit in the burst, the rest come at 2/s:
 * T_limit(N) = max(0, R − 50) / 2 s. For N = 10,000 (R = 4) the bucket does not bind at all, so the cold-bucket
 * ceiling is set by the CRM itself: the same 4 optimal batch requests sent directly, measured in this run
 * (ceiling = N / max(T_limit, T_direct)). With the burst already spent (a long-running agent), every request
 * waits for the drain: T = R / 2 s, i.e. 5000 rec/s; that case is measured too.
 */
import { request } from 'undici';
import { phpQuery } from '../dist/crms/bitrix24/map.js';
import {
  bitrixCounters,
  bitrixEmu,
  bitrixProvider,
  delta,
  inProcessClient,
  kommoCounters,
  kommoEmu,
  kommoProvider,
  log,
  round,
  seedBitrixDeals,
  seedKommoLeads,
  sleep,
  structuredOf,
} from './lib.mjs';

const KOMMO_N = 5000;
const BITRIX_N = 10_000;
/** One `batch` of 50 list commands × 50 rows: list_leads' largest Bitrix24 page. */
const BITRIX_LIMIT = 2500;

async function readAll(c, args) {
  const ids = new Set();
  let cursor;
  let calls = 0;
  const t0 = performance.now();
  do {
    const r = structuredOf(await c.call('list_leads', { ...args, ...(cursor ? { cursor } : {}) }));
    for (const it of r.items) ids.add(String(it.id));
    cursor = r.has_more ? r.cursor : undefined;
    calls += 1;
  } while (cursor);
  return { ms: performance.now() - t0, records: ids.size, calls };
}

/** The requests an emulator received since `from`, by kind: Kommo by path, Bitrix24 batches by their commands. */
function breakdown(emu, from) {
  const out = {};
  for (const r of emu.requests.slice(from)) {
    let k = r.path.replace(/^.*\/rest\/\d+\/[^/]+\//, '');
    if (k === 'batch.json') {
      const cmds = Object.values(JSON.parse(r.body).cmd).map((c) => c.split('?')[0]);
      k = `batch of ${[...new Set(cmds)].map((m) => `${cmds.filter((x) => x === m).length} ${m}`).join(' + ')}`;
    } else if (k.startsWith('/api/v4/')) k = `${r.method} ${k}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function rate(records, ms) {
  return round(records / (ms / 1000), 1);
}

// ---------------------------------------------------------------- Kommo

async function kommoDirectFloor(n) {
  // The same optimal pages sent straight to a rate-limit-free emulator: what the CRM itself costs.
  const { emu, token } = await kommoEmu({ rateLimit: false });
  seedKommoLeads(emu, n);
  const t0 = performance.now();
  let records = 0;
  for (let page = 1; ; page++) {
    const res = await request(`${emu.url}/api/v4/leads?with=contacts&limit=250&page=${page}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await res.body.text();
    if (res.statusCode === 204 || !body) break;
    const data = JSON.parse(body);
    records += data._embedded.leads.length;
    if (!data._links?.next) break;
  }
  const ms = performance.now() - t0;
  await emu.close();
  return { ms: round(ms, 1), records };
}

export async function kommoBulk() {
  const { emu, token } = await kommoEmu(); // real limits: 7/s per token, 429, 403 block
  seedKommoLeads(emu, KOMMO_N);
  const p = await kommoProvider(emu, token);
  const c = await inProcessClient([p]);
  // Metadata (pipelines, users) is cached by the server; load it first, then let the 1 s window empty.
  structuredOf(await c.call('get_pipelines'));
  structuredOf(await c.call('list_users'));
  await sleep(1100);

  log(`kommo: list_leads over ${KOMMO_N} leads (limit 250)`);
  let before = kommoCounters(emu);
  const toolFrom = emu.requests.length;
  const tool = await readAll(c, { limit: 250 });
  const toolCounters = delta(kommoCounters(emu), before);
  const toolRequests = breakdown(emu, toolFrom);
  await sleep(1100);

  log('kommo: naive read, 50 per page via kommo_request');
  before = kommoCounters(emu);
  const naiveIds = new Set();
  const t0 = performance.now();
  let naiveCalls = 0;
  for (let page = 1; ; page++) {
    const r = structuredOf(await c.call('kommo_request', { method: 'GET', path: '/api/v4/leads', query: { limit: 50, page, with: 'contacts' } }));
    naiveCalls += 1;
    const items = r.data?._embedded?.leads ?? [];
    for (const l of items) naiveIds.add(l.id);
    if (r.status === 204 || !r.data?._links?.next) break;
  }
  const naiveMs = performance.now() - t0;
  const naiveCounters = delta(kommoCounters(emu), before);
  await c.close();
  await emu.close();

  const floor = await kommoDirectFloor(KOMMO_N);
  const R = Math.ceil(KOMMO_N / 250);
  const exactLimitS = Math.ceil(R / 7) - 1;
  const ceiling = 1750;
  const exactCeiling = KOMMO_N / Math.max(exactLimitS, floor.ms / 1000);
  const toolRate = rate(tool.records, tool.ms);
  return {
    records_requested: KOMMO_N,
    ceiling_rec_s: ceiling,
    ceiling_formula: '7 requests/s × 250 leads per page = 1750 rec/s',
    exact_window_bound: {
      formula: 'R = ⌈N/250⌉ requests; sliding 1 s window, first 7 at t=0: T ≥ (⌈R/7⌉ − 1) s, and ≥ T_direct (same pages sent directly)',
      requests: R,
      t_limit_s: exactLimitS,
      t_direct_ms: floor.ms,
      ceiling_rec_s: round(exactCeiling, 1),
    },
    tool: {
      how: 'list_leads {limit: 250} then cursor, through an MCP Client (in-process transport), metadata cached',
      records: tool.records,
      tool_calls: tool.calls,
      ms: round(tool.ms, 1),
      rec_per_s: toolRate,
      ratio_to_ceiling: round(toolRate / ceiling, 3),
      ratio_to_exact_bound: round(toolRate / exactCeiling, 3),
      emulator: toolCounters,
      requests_by_kind: toolRequests,
    },
    naive: {
      how: 'kommo_request GET /api/v4/leads?limit=50&page=n&with=contacts, one HTTP call per page',
      records: naiveIds.size,
      tool_calls: naiveCalls,
      ms: round(naiveMs, 1),
      rec_per_s: rate(naiveIds.size, naiveMs),
      ratio_to_ceiling: round(rate(naiveIds.size, naiveMs) / ceiling, 3),
      emulator: naiveCounters,
    },
    speedup_vs_naive: round(naiveMs / tool.ms, 2),
  };
}

// ---------------------------------------------------------------- Bitrix24

async function bitrixDirectFloor(n) {
  // ⌈N/2500⌉ batch requests of 50 chained fast-paging commands, straight to a rate-limit-free emulator.
  const emu = await bitrixEmu({ rateLimit: false });
  seedBitrixDeals(emu, n);
  const base = { order: { ID: 'DESC' }, select: ['*', 'UF_*'], start: -1 };
  let after;
  let records = 0;
  let requests = 0;
  const t0 = performance.now();
  for (;;) {
    const cmd = {};
    for (let i = 0; i < 50; i++) {
      const bound = i === 0 ? after : `$result[p${i - 1}][49][ID]`;
      cmd[`p${i}`] = `crm.deal.list?${phpQuery({ ...base, filter: bound !== undefined ? { '<ID': bound } : {} })}`;
    }
    const res = await request(`${emu.webhookUrl}batch.json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ halt: 0, cmd }),
    });
    const data = JSON.parse(await res.body.text());
    requests += 1;
    let last;
    let full = true;
    for (let i = 0; i < 50; i++) {
      const rows = data.result.result[`p${i}`] ?? [];
      records += rows.length;
      if (rows.length) last = rows.at(-1).ID;
      if (rows.length < 50) {
        full = false;
        break;
      }
    }
    if (!full || records >= n) break;
    after = last;
  }
  const ms = performance.now() - t0;
  await emu.close();
  return { ms: round(ms, 1), records, requests };
}

async function bitrixSetup() {
  const emu = await bitrixEmu(); // real limits: standard plan, 50 burst, 2/s, operating budget
  seedBitrixDeals(emu, BITRIX_N);
  const p = await bitrixProvider(emu);
  const c = await inProcessClient([p]);
  structuredOf(await c.call('get_pipelines')); // metadata: 2 batch requests, cached
  return { emu, c };
}

export async function bitrixBulk() {
  const R = Math.ceil(BITRIX_N / 2500);
  const tLimitCold = Math.max(0, R - 50) / 2;
  const tLimitDrained = R / 2;
  const floor = await bitrixDirectFloor(BITRIX_N);

  log(`bitrix24: list_leads over ${BITRIX_N} deals, fresh bucket`);
  let { emu, c } = await bitrixSetup();
  let before = bitrixCounters(emu);
  let from = emu.requests.length;
  const cold = await readAll(c, { limit: BITRIX_LIMIT, entity: 'deal' });
  const coldCounters = delta(bitrixCounters(emu), before);
  const coldRequests = breakdown(emu, from);
  await c.close();
  await emu.close();

  log('bitrix24: list_leads with the burst already spent (sustained 2/s)');
  ({ emu, c } = await bitrixSetup());
  // Spend the burst the way a busy agent would have: cheap reads until the bucket is full (48 = the client's cap).
  for (let i = 0; i < 46; i++) structuredOf(await c.call('bitrix_call', { method: 'crm.settings.mode.get' }));
  before = bitrixCounters(emu);
  from = emu.requests.length;
  const drained = await readAll(c, { limit: BITRIX_LIMIT, entity: 'deal' });
  const drainedCounters = delta(bitrixCounters(emu), before);
  const drainedRequests = breakdown(emu, from);
  await c.close();
  await emu.close();

  log('bitrix24: naive read, 50 per page via bitrix_call crm.deal.list start=n (fresh bucket)');
  ({ emu, c } = await bitrixSetup());
  before = bitrixCounters(emu);
  const ids = new Set();
  let calls = 0;
  const t0 = performance.now();
  for (let start = 0; ;) {
    const r = structuredOf(await c.call('bitrix_call', { method: 'crm.deal.list', params: { order: { ID: 'ASC' }, select: ['*', 'UF_*'], start } }));
    calls += 1;
    for (const row of r.result ?? []) ids.add(row.ID);
    if (r.next === undefined) break;
    start = r.next;
  }
  const naiveMs = performance.now() - t0;
  const naiveCounters = delta(bitrixCounters(emu), before);
  await c.close();
  await emu.close();

  const coldCeiling = BITRIX_N / Math.max(tLimitCold, floor.ms / 1000);
  const drainedCeiling = BITRIX_N / Math.max(tLimitDrained, floor.ms / 1000);
  const coldRate = rate(cold.records, cold.ms);
  const drainedRate = rate(drained.records, drained.ms);
  const naiveRate = rate(ids.size, naiveMs);
  return {
    records_requested: BITRIX_N,
    ceiling_formula:
      'R = ⌈N/2500⌉ batch requests (50 commands × 50 rows); burst of 50 at the start, then 2/s: T_limit = max(0, R − 50)/2 s; ceiling = N / max(T_limit, T_direct), T_direct = those R requests sent directly to the emulator in this run. Burst spent: T_limit = R/2 s.',
    requests_needed: R,
    t_direct_ms: floor.ms,
    cold: {
      how: `list_leads {limit: ${BITRIX_LIMIT}} then cursor (deals), fresh bucket, metadata cached`,
      limit: BITRIX_LIMIT,
      t_limit_s: tLimitCold,
      ceiling_rec_s: round(coldCeiling, 1),
      ceiling_note: `the limit does not bind (R = ${R} ≤ 50 burst): the ceiling is the CRM's own speed for the optimal ${R} requests`,
      records: cold.records,
      tool_calls: cold.calls,
      ms: round(cold.ms, 1),
      rec_per_s: coldRate,
      ratio_to_ceiling: round(coldRate / coldCeiling, 3),
      emulator: coldCounters,
      requests_by_kind: coldRequests,
    },
    drained: {
      how: 'the same read after 48 requests filled the bucket: every request waits for the 2/s drain',
      t_limit_s: tLimitDrained,
      ceiling_rec_s: round(drainedCeiling, 1),
      records: drained.records,
      tool_calls: drained.calls,
      ms: round(drained.ms, 1),
      rec_per_s: drainedRate,
      ratio_to_ceiling: round(drainedRate / drainedCeiling, 3),
      emulator: drainedCounters,
      requests_by_kind: drainedRequests,
    },
    naive: {
      how: 'bitrix_call crm.deal.list {start: n} (50 per page, with counting), one HTTP call per page, fresh bucket',
      records: ids.size,
      tool_calls: calls,
      ms: round(naiveMs, 1),
      rec_per_s: naiveRate,
      t_limit_s: Math.max(0, Math.ceil(BITRIX_N / 50) - 50) / 2,
      emulator: naiveCounters,
    },
    speedup_vs_naive: { cold: round(naiveMs / cold.ms, 2), drained: round(naiveMs / drained.ms, 2) },
  };
}
