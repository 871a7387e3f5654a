/**
 * Shared bench plumbing: the emulators (from dist/), seeding extra records, MCP clients (in-process, stdio to
 * the built binary, Streamable HTTP), statistics and the machine description. Plain ESM on purpose: the bench
 * runs the shipped JavaScript in dist/, exactly what users run.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { startKommoEmulator } from '../dist/sandbox/kommo/index.js';
import { startBitrixEmulator } from '../dist/sandbox/bitrix24/index.js';
import { createServer } from '../dist/server.js';
import { buildKommoProvider } from '../dist/crms/kommo/provider.js';
import { buildBitrixProvider } from '../dist/crms/bitrix24/provider.js';
import { openStore } from '../dist/store/store.js';
import { createLogger, setLogger } from '../dist/util/log.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CLI = join(ROOT, 'dist', 'cli.js');

// In-process servers log only warnings (the spawned binaries keep their default `info`).
setLogger(createLogger({ level: 'warn' }));

export const READ_ONLY = { allowWrites: false, safeMode: true, allowDelete: false };
export const CREATE_ONLY = { allowWrites: true, safeMode: true, allowDelete: false };
export const FULL = { allowWrites: true, safeMode: false, allowDelete: true };

// ---------------------------------------------------------------- numbers

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => (s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] : NaN);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    p50: round(at(0.5)),
    p90: round(at(0.9)),
    p99: round(at(0.99)),
    mean: round(mean),
    min: round(s[0] ?? NaN),
    max: round(s.at(-1) ?? NaN),
  };
}

export function median(xs) {
  return stats(xs).p50;
}

export function round(x, digits = 3) {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function machine() {
  const cpus = os.cpus();
  let osName = `${os.type()} ${os.release()}`;
  try {
    const rel = readFileSync('/etc/os-release', 'utf8');
    const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(rel)?.[1];
    if (pretty) osName = `${pretty} (kernel ${os.release()})`;
  } catch {
    // not Linux: keep os.type()
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  return {
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    os: osName,
    arch: process.arch,
    load_average_at_start: os.loadavg().map((x) => round(x, 2)),
    crm_mcp_version: pkg.version,
    // The server runs on SDK v2 (@modelcontextprotocol/server); the bench's clients are SDK 1.x (@modelcontextprotocol/sdk).
    server_sdk_version: JSON.parse(readFileSync(join(ROOT, 'node_modules/@modelcontextprotocol/server/package.json'), 'utf8')).version,
    sdk_version: JSON.parse(readFileSync(join(ROOT, 'node_modules/@modelcontextprotocol/sdk/package.json'), 'utf8')).version,
  };
}

/** VmRSS / VmHWM of a process in MB, from /proc/<pid>/status (Linux). */
export function memoryOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rss_mb: round(kb('VmRSS') / 1024, 1), peak_rss_mb: round(kb('VmHWM') / 1024, 1) };
  } catch {
    return { rss_mb: null, peak_rss_mb: null };
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (Linux, 100 ticks/s). */
export function cpuSecondsOf(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------- emulators and seeding

/** Kommo emulator; `rateLimit: undefined` = the real limits (7 req/s per token, 50 per account, block after 10 429s). */
export async function kommoEmu(opts = {}) {
  const emu = await startKommoEmulator(opts);
  const token = emu.createLongLivedToken({ expiresInSec: 30 * 86400 });
  return { emu, token };
}

/** Bitrix24 emulator; default standard plan with the leaky bucket (50 burst, 2/s) and operating budget on. */
export async function bitrixEmu(opts = {}) {
  return startBitrixEmulator(opts);
}

/**
 * Grows the Kommo account to `total` leads by cloning the demo leads (same shapes, links to existing contacts
 * and companies, fresh ids from the account's own sequence): valid records as the emulator stores them.
 */
export function seedKommoLeads(emu, total) {
  const s = emu.state;
  const templates = [...s.leads.values()];
  let i = 0;
  while (s.leads.size < total) {
    const t = templates[i++ % templates.length];
    const id = s.nextId.lead++;
    const lead = structuredClone(t);
    lead.id = id;
    lead.name = `${t.name} (copy ${i})`;
    s.leads.set(id, lead);
  }
  return s.leads.size;
}

/** Grows the Bitrix24 portal to `total` deals by cloning demo deals with fresh ids from the portal sequence. */
export function seedBitrixDeals(emu, total) {
  const s = emu.state;
  const templates = [...s.deals.values()];
  let i = 0;
  while (s.deals.size < total) {
    const t = templates[i++ % templates.length];
    s.seq.deal += 1;
    const id = s.seq.deal;
    const rec = structuredClone(t);
    rec.ID = String(id);
    rec.TITLE = `${t.TITLE} (copy ${i})`;
    s.deals.set(id, rec);
  }
  return s.deals.size;
}

export function kommoCounters(emu) {
  return { requests: emu.requests.length, rate_limited_429: emu.stats.rateLimited, blocked_403: emu.stats.blocked };
}

export function bitrixCounters(emu) {
  return { requests: emu.requests.length, query_limit_exceeded_503: emu.stats.queryLimitExceeded, operation_time_limit_429: emu.stats.operationTimeLimit };
}

/** Counter differences (numbers subtract, booleans are taken from `after`). */
export function delta(after, before) {
  const out = {};
  for (const [k, v] of Object.entries(after)) out[k] = typeof v === 'number' ? v - (before[k] ?? 0) : v;
  return out;
}

// ---------------------------------------------------------------- providers and clients

export async function kommoProvider(emu, token, policy = READ_ONLY, limiter = undefined) {
  const store = await openStore('memory');
  const p = buildKommoProvider(
    { name: 'kommo', provider: 'kommo', baseUrl: emu.url, accessToken: token, policy: policy ?? READ_ONLY },
    { store, timeoutMs: 30_000, maxRetries: 3, limiter },
  );
  await p.init();
  return p;
}

export async function bitrixProvider(emu, policy = READ_ONLY) {
  const store = await openStore('memory');
  const p = buildBitrixProvider(
    { name: 'bitrix24', provider: 'bitrix24', webhookUrl: emu.webhookUrl, plan: 'standard', policy },
    { store, timeoutMs: 30_000, maxRetries: 3 },
  );
  await p.init();
  return p;
}

/**
 * An SDK Client connected in-process (InMemoryTransport) to createServer() over these providers. `toolsets`
 * as CRM_TOOLSETS gives them to the config loader (src/tools/toolsets.ts parseToolsets); omitted, every tool.
 */
export async function inProcessClient(providers, { toolsets } = {}) {
  const server = createServer({ config: { tools: toolsets ? { toolsets } : {} }, providers });
  const client = new Client({ name: 'bench', version: '0.0.0' });
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(st), client.connect(ct)]);
  return wrap(
    client,
    async () => {
      await client.close();
      await server.close();
    },
    { transport: ct },
  );
}

function wrap(client, close, extra = {}) {
  return {
    client,
    ...extra,
    /** Calls a tool; throws on a protocol error, returns the CallToolResult (check isError). */
    call: (name, args = {}) => client.callTool({ name, arguments: args }, undefined, { timeout: 120_000 }),
    close,
  };
}

export function textOf(res) {
  return (res.content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

export function structuredOf(res) {
  if (res.isError) throw new Error(`tool failed: ${textOf(res)}`);
  return res.structuredContent;
}

/** Environment for a spawned server: no inherited CRM variables, a throwaway data directory. */
export function serverEnv(extra) {
  const home = mkdtempSync(join(os.tmpdir(), 'crm-mcp-bench-'));
  return { PATH: process.env.PATH ?? '', HOME: home, CRM_MCP_HOME: home, ...extra };
}

/**
 * Spawns dist/cli.js (or another `script`: the start-up baseline) over stdio with an SDK Client; returns
 * timings of spawn → initialize → first tools/list.
 */
export async function stdioClient({ script = CLI, args = [], env }) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [script, ...args], env, stderr: 'pipe' });
  let stderr = '';
  transport.stderr?.on('data', (d) => {
    if (stderr.length < 20_000) stderr += String(d);
  });
  const client = new Client({ name: 'bench', version: '0.0.0' });
  const t0 = performance.now();
  try {
    await client.connect(transport, { timeout: 30_000 });
  } catch (e) {
    throw new Error(`stdio server failed to start: ${e.message}\n${stderr}`);
  }
  const tInit = performance.now();
  // When the tools/list answer arrives, before the SDK client works on it (Client.listTools() of SDK 1.x
  // compiles an Ajv validator for every output schema before it resolves: client time, not server time).
  let tAnswer = NaN;
  const deliver = transport.onmessage;
  transport.onmessage = (msg, extra) => {
    if (Number.isNaN(tAnswer) && Array.isArray(msg?.result?.tools)) tAnswer = performance.now();
    deliver?.(msg, extra);
  };
  const list = await client.listTools();
  const tList = performance.now();
  return wrap(client, () => client.close(), {
    pid: transport.pid,
    startup: { initialize_ms: round(tInit - t0, 1), tools_list_answer_ms: round(tAnswer - t0, 1), tools_list_ms: round(tList - t0, 1) },
    tools: list.tools,
    stderr: () => stderr,
  });
}

/** Spawns dist/cli.js --http on a free port; resolves with its URL once it prints it. */
export async function spawnHttpServer({ args = [], env }) {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, '--http', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => {
    if (err.length < 20_000) err += String(d);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`HTTP server did not start in 30 s\n${err}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += String(d);
      const m = /serving MCP \(Streamable HTTP\) at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`HTTP server exited with ${code}\n${err}`));
    });
  });
  const ready_ms = round(performance.now() - t0, 1);
  child.stdout.resume();
  return {
    url,
    pid: child.pid,
    ready_ms,
    stderr: () => err,
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

/** An SDK Client over Streamable HTTP to a running server. */
export async function httpClient(url) {
  const transport = new StreamableHTTPClientTransport(new URL(url));
  const client = new Client({ name: 'bench', version: '0.0.0' });
  await client.connect(transport);
  return wrap(client, () => client.close());
}

/** Times `n` sequential runs of `fn` (ms each). */
export async function timeEach(n, fn) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

export function log(...args) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${args.join(' ')}\n`);
}
