/**
 * 3. Server overhead per tool call, and the memory part of 4.
 *
 * The clients' own limiters hold Kommo to 7 requests/s and Bitrix24 to its bucket whatever the CRM says, so a
 * latency series over uncached calls would measure the limiter, not the server. The main series therefore uses
 * get_pipelines, which the server answers from its metadata cache (no CRM request after the first call), over
 * stdio (spawned dist/cli.js) and over Streamable HTTP (spawned dist/cli.js --http, stateless: one POST per
 * call). The reference is a direct HTTP request to the emulator (GET /api/v4/leads/pipelines, keep-alive undici)
 * in the same run: overhead = tool-call p50 − direct-request p50. A second, smaller series measures an uncached
 * pass-through call (kommo_request GET of the same path, one CRM request per call) paced at one call per
 * 150 ms so it never waits in the 7/s limiter; the emulator behind it has its rate limit off.
 */
import { Agent, request } from 'undici';
import { createServer } from '../dist/server.js';
import {
  httpClient,
  inProcessClient,
  kommoEmu,
  kommoProvider,
  log,
  memoryOf,
  round,
  serverEnv,
  sleep,
  spawnHttpServer,
  stats,
  stdioClient,
  timeEach,
} from './lib.mjs';

const N = 2000;
const WARM = 200;
const PACED_N = 60;
const PACE_MS = 150;

async function series(call, onCall) {
  for (let i = 0; i < WARM; i++) await call();
  let done = WARM;
  return timeEach(N, async () => {
    await call();
    done += 1;
    onCall?.(done);
  });
}

async function paced(fn) {
  const out = [];
  for (let i = 0; i < PACED_N; i++) {
    const t = performance.now();
    await fn();
    const ms = performance.now() - t;
    out.push(ms);
    await sleep(Math.max(0, PACE_MS - ms));
  }
  return out;
}

function checked(res) {
  if (res.isError) throw new Error(`tool error: ${JSON.stringify(res.content)}`);
  return res;
}

/**
 * What the stateless HTTP transport pays per POST before any tool runs: createServer() over the same
 * providers (time, heap allocated per server) and, with --expose-gc, the heap after forced GC while thousands
 * of servers are built and dropped (flat = garbage, not a leak).
 */
async function perRequestServer(provider) {
  const deps = { config: { tools: {} }, providers: [provider] };
  for (let i = 0; i < 50; i++) createServer(deps);
  const n = 500;
  const t = performance.now();
  for (let i = 0; i < n; i++) createServer(deps);
  const createMs = (performance.now() - t) / n;
  const out = { create_server_ms: round(createMs, 2) };
  if (typeof globalThis.gc === 'function') {
    const heap = () => {
      globalThis.gc();
      return process.memoryUsage().heapUsed;
    };
    const h0 = heap();
    const keep = [];
    for (let i = 0; i < 100; i++) keep.push(createServer(deps));
    out.heap_kb_per_server = Math.round((heap() - h0) / 100 / 1024);
    keep.length = 0;
    const series = [round(heap() / 2 ** 20, 1)];
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < 1000; i++) createServer(deps);
      series.push(round(heap() / 2 ** 20, 1));
    }
    out.heap_after_gc_mb = series;
    out.servers_built = 2000;
  }
  return out;
}

export async function overheadAndMemory() {
  const { emu, token } = await kommoEmu({ rateLimit: false });
  const agent = new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  const direct = async () => {
    const res = await request(`${emu.url}/api/v4/leads/pipelines`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      dispatcher: agent,
    });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`direct: ${res.statusCode}`);
  };

  log('overhead: direct HTTP requests to the emulator');
  const directMs = await series(direct);
  const directPaced = await paced(direct);

  log('overhead: in-process MCP client (no transport)');
  const inproc = await inProcessClient([await kommoProvider(emu, token)]);
  const inprocMs = await series(async () => checked(await inproc.call('get_pipelines')));
  await inproc.close();
  const perRequest = await perRequestServer(await kommoProvider(emu, token));

  // The CRM path without transports or pacing: the same pass-through in-process, the provider given a no-op
  // limiter (its constructor option) so back-to-back calls measure the pipeline, not the 7/s limit.
  log('overhead: uncached pass-through in-process, limiter disabled');
  const noLimit = await inProcessClient([await kommoProvider(emu, token, undefined, { acquire: async () => () => undefined, waiting: 0 })]);
  const passIn = await series(async () => checked(await noLimit.call('kommo_request', { method: 'GET', path: '/api/v4/leads/pipelines' })));
  await noLimit.close();

  // kommo_request is in the raw toolset, off on a fresh install.
  const env = serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token, CRM_TOOLSETS: 'all' });

  log('overhead: stdio (spawned dist/cli.js)');
  const stdio = await stdioClient({ env });
  const memStdio = { after_start: memoryOf(stdio.pid) };
  const stdioMs = await series(
    async () => checked(await stdio.call('get_pipelines')),
    (n) => {
      if (n === 1000) memStdio.after_1000_calls = memoryOf(stdio.pid);
    },
  );
  const stdioPaced = await paced(async () => checked(await stdio.call('kommo_request', { method: 'GET', path: '/api/v4/leads/pipelines' })));
  memStdio.after_all_calls = { calls: WARM + N + PACED_N, ...memoryOf(stdio.pid) };
  await stdio.close();

  log('overhead: Streamable HTTP (spawned dist/cli.js --http)');
  const srv = await spawnHttpServer({ env });
  const http = await httpClient(srv.url);
  const memHttp = { after_start: memoryOf(srv.pid) };
  const httpMs = await series(
    async () => checked(await http.call('get_pipelines')),
    (n) => {
      if (n === 1000) memHttp.after_1000_calls = memoryOf(srv.pid);
    },
  );
  const httpPaced = await paced(async () => checked(await http.call('kommo_request', { method: 'GET', path: '/api/v4/leads/pipelines' })));
  memHttp.after_all_calls = { calls: WARM + N + PACED_N, ...memoryOf(srv.pid) };
  await http.close();
  await srv.close();
  await agent.close();
  await emu.close();

  const d = stats(directMs);
  const dp = stats(directPaced);
  const over = (s, base) => ({ p50_ms: round(s.p50 - base.p50), p99_ms: round(s.p99 - base.p99) });
  const S = { stdio: stats(stdioMs), http: stats(httpMs), in_process: stats(inprocMs) };
  const P = { stdio: stats(stdioPaced), http: stats(httpPaced) };
  return {
    method: `${N} sequential calls after ${WARM} warm-up calls; times from the client's call to its answer`,
    direct_request: { what: 'GET /api/v4/leads/pipelines straight to the emulator (undici, keep-alive)', ...d },
    cached_tool: {
      tool: 'get_pipelines (answered from the server metadata cache)',
      stdio: { ...S.stdio, overhead_vs_direct: over(S.stdio, d) },
      http: { ...S.http, overhead_vs_direct: over(S.http, d) },
      in_process: {
        ...S.in_process,
        overhead_vs_direct: over(S.in_process, d),
        note: 'InMemoryTransport in the bench process: the server and SDK cost without any transport',
      },
    },
    uncached_passthrough: {
      tool: `kommo_request GET /api/v4/leads/pipelines (1 CRM request per call), ${PACED_N} calls paced at ${PACE_MS} ms`,
      direct_paced: dp,
      in_process_no_limiter: {
        what: `the same call back to back (${N} calls), in-process transport, provider limiter replaced by a no-op; vs the unpaced direct series`,
        ...stats(passIn),
        overhead_vs_direct: over(stats(passIn), d),
      },
      stdio: { ...P.stdio, overhead_vs_direct: over(P.stdio, dp) },
      http: { ...P.http, overhead_vs_direct: over(P.http, dp) },
    },
    per_request_server: { what: 'createServer() per stateless HTTP POST, measured in the bench process', ...perRequest },
    memory: { stdio: memStdio, http: memHttp },
  };
}
