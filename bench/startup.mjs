/**
 * 4. Start-up: spawn → initialize → first tools/list answer over stdio, median of several runs, for a normal
 * start pointed at an already-running emulator (KOMMO_BASE_URL + KOMMO_ACCESS_TOKEN) and for `--sandbox`
 * (which also starts both emulators and seeds their demo data), side by side with two baselines measured the
 * same way in the same run: a minimal SDK v2 server with one tool (bench/minimal-server.mjs), and the fastest
 * peer, @theyahia/amocrm-mcp (a devDependency: SDK 1.x, zod 3, 19 tools, no output schemas). The runs of all
 * variants are interleaved (round i runs each once, the order rotating), so machine noise lands on all of
 * them alike; the ratio of medians is the figure the targets are set on. The floor is a bare `node` process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, ROOT, kommoEmu, log, median, memoryOf, round, serverEnv, stats, stdioClient } from './lib.mjs';
import { compileCost } from './schema-compile.mjs';

const RUNS = 9;
const MINIMAL = join(ROOT, 'bench', 'minimal-server.mjs');
const PEER_DIR = join(ROOT, 'node_modules', '@theyahia', 'amocrm-mcp');
const PEER = join(PEER_DIR, 'dist', 'index.js');
/**
 * The peer reads its settings only when a tool calls amoCRM (dist/client.js getConfig) and builds
 * https://<subdomain>.amocrm.ru from them, so it cannot be pointed at the emulator; placeholders keep it as
 * configured as a real install would be, and start-up → tools/list sends nothing.
 */
const PEER_ENV = { AMOCRM_SUBDOMAIN: 'bench-placeholder', AMOCRM_ACCESS_TOKEN: 'bench-placeholder' };
/** tsc's output without the bin bundle of scripts/build-bin.mjs: dist/entry/cli.js run as dist/cli.js would. */
const UNBUNDLED = ['--input-type=module', '-e', `import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'entry', 'cli.js')).href)}).then((m) => m.run([]));`];

function spawnToExit(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child.once('error', reject);
    child.once('exit', () => resolve(performance.now() - t0));
  });
}

/** One spawn → initialize → tools/list of a variant; `answer` is when the tools/list answer arrived. */
async function once(opts) {
  const c = await stdioClient(opts);
  const out = {
    answer: c.startup.tools_list_answer_ms,
    resolved: c.startup.tools_list_ms,
    init: c.startup.initialize_ms,
    rss: memoryOf(c.pid).rss_mb,
    tools: c.tools.length,
    outputSchemas: Object.fromEntries(c.tools.filter((t) => t.outputSchema).map((t) => [t.name, t.outputSchema])),
  };
  await c.close();
  return out;
}

function summary(samples) {
  const col = (k) => samples.map((x) => x[k]);
  return {
    runs: samples.length,
    tools_listed: samples[0]?.tools,
    output_schemas: Object.keys(samples[0]?.outputSchemas ?? {}).length,
    output_schemas_bytes: Buffer.byteLength(JSON.stringify(samples[0]?.outputSchemas ?? {})),
    to_tools_list_answer_ms: { median: median(col('answer')), ...stats(col('answer')) },
    to_tools_list_resolved_ms: { median: median(col('resolved')), ...stats(col('resolved')) },
    to_initialize_ms_median: median(col('init')),
    rss_after_start_mb_median: median(col('rss')),
  };
}

/** Runs every variant RUNS times, interleaved: round i runs each once, starting one further along the list. */
async function interleaved(variants) {
  const names = Object.keys(variants);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < RUNS; i++) {
    for (let j = 0; j < names.length; j++) {
      const n = names[(i + j) % names.length];
      samples[n].push(await once(variants[n]()));
    }
  }
  for (const n of names) log(`start-up ${n}: ${samples[n].map((x) => `${Math.round(x.answer)}/${Math.round(x.resolved)}`).join(', ')} ms (answer/resolved)`);
  const out = Object.fromEntries(names.map((n) => [n, summary(samples[n])]));
  Object.defineProperty(out, 'schemasOf', { value: (n) => samples[n][0]?.outputSchemas ?? {} });
  return out;
}

const ratio = (a, b) => ({
  answer: round(a.to_tools_list_answer_ms.median / b.to_tools_list_answer_ms.median, 2),
  resolved: round(a.to_tools_list_resolved_ms.median / b.to_tools_list_resolved_ms.median, 2),
});

/** What a stdio start reads from dist/: the bin bundle's entry and the chunks it imports statically. */
function binShape() {
  const files = readdirSync(join(ROOT, 'dist')).filter((f) => /^cli(-[A-Z0-9]{8})?\.js$/.test(f));
  const seen = new Set();
  let bytes = 0;
  const walk = (f) => {
    if (seen.has(f) || !files.includes(f)) return;
    seen.add(f);
    const src = readFileSync(join(ROOT, 'dist', f), 'utf8');
    bytes += Buffer.byteLength(src);
    for (const m of src.matchAll(/^(?:import|export)\b[^;]*?from\s+"\.\/(cli-[A-Z0-9]{8}\.js)"|^import\s+"\.\/(cli-[A-Z0-9]{8}\.js)"/gm)) walk(m[1] ?? m[2]);
  };
  walk('cli.js');
  const bundled = readFileSync(join(ROOT, 'dist', 'cli.js'), 'utf8').includes('scripts/build-bin.mjs');
  return { bundled, files_in_dist: files.length, static_graph: { files: seen.size, mb: round(bytes / 2 ** 20, 2) } };
}

/**
 * Where start-up time goes without the bundle: one fresh process imports, one after another, what a stdio
 * start of tsc's output loads (in that order; shared sub-dependencies are charged to the first importer) and
 * reports each import's incremental time. `dist/config/config.js` brings the tool registry (every tool's zod
 * schemas) with it; `dist/crms/kommo/provider.js` is what buildApp loads for a Kommo connection. The
 * rest is loaded lazily by entry/serve.ts, app.ts and the HTTP core, so a stdio start does not pay for it.
 */
const IMPORTS = [
  'zod',
  '@modelcontextprotocol/server',
  'pino',
  'keyv',
  'dist/config/config.js',
  'dist/server.js',
  'dist/app.js',
  'dist/entry/serve.js',
  'dist/crms/kommo/provider.js',
  '@modelcontextprotocol/server/stdio',
  'undici (first CRM request)',
  'libphonenumber-js (first phone)',
  'jose (OAuth only)',
  'dist/transports/http/service.js (--http only)',
  'dist/metrics/metrics.js (--http only)',
];

function importCosts() {
  const specs = IMPORTS.map((m) => (m.startsWith('dist/') ? pathToFileURL(`${ROOT}${m.split(' ')[0]}`).href : m.split(' ')[0]));
  const code = `const out = {}; for (const [label, spec] of ${JSON.stringify(IMPORTS.map((m, i) => [m, specs[i]]))}) { const t = performance.now(); try { await import(spec); out[label] = Math.round((performance.now() - t) * 10) / 10; } catch (e) { out[label] = null; } } process.stdout.write(JSON.stringify(out));`;
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' })));
  const out = {};
  for (const m of IMPORTS) out[m] = median(runs.map((r) => r[m]).filter((x) => x !== null));
  return out;
}

export async function startup() {
  log('start-up');
  const floor = [];
  for (let i = 0; i < RUNS; i++) floor.push(await spawnToExit(['-e', '0']));
  const version = [];
  for (let i = 0; i < RUNS; i++) version.push(await spawnToExit([CLI, '--version']));

  const { emu, token } = await kommoEmu();
  const normalEnv = () => serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token });
  const v = await interleaved({
    normal: () => ({ env: normalEnv() }),
    minimal: () => ({ script: MINIMAL, env: serverEnv({}) }),
    peer: () => ({ script: PEER, env: serverEnv(PEER_ENV) }),
    sandbox: () => ({ args: ['--sandbox'], env: serverEnv({}) }),
    normal_unbundled: () => ({ script: UNBUNDLED[0], args: UNBUNDLED.slice(1), env: normalEnv() }),
  });
  const requestsAtStart = emu.requests.length;
  await emu.close();
  const schemas = v.schemasOf('normal');
  log(`start-up: compiling ${Object.keys(schemas).length} output schemas as the SDK clients do, fresh processes`);
  const compile = { sdk1: compileCost(schemas, { sdk: 'sdk1' }), sdk2: compileCost(schemas, { sdk: 'sdk2' }) };
  const peerVersion = JSON.parse(readFileSync(join(PEER_DIR, 'package.json'), 'utf8')).version;
  return {
    method: `spawn (StdioClientTransport) → initialize → tools/list, ${RUNS} runs of each variant interleaved, median. "answer": the tools/list answer has arrived at the client; "resolved": the SDK 1.x Client.listTools() has returned (it first compiles an Ajv validator per output schema: client work that grows with the output schemas)`,
    runs: RUNS,
    node_floor_ms: { what: 'spawn `node -e 0` until exit', median: round(median(floor), 1) },
    version_flag_ms: { what: 'spawn `dist/cli.js --version` until exit (loads every top-level import)', median: round(median(version), 1) },
    bin: binShape(),
    import_ms_median: importCosts(),
    minimal: { what: 'bench/minimal-server.mjs: SDK v2 McpServer, one tool with a zod input schema, serveStdio', ...v.minimal },
    peer: {
      what: `@theyahia/amocrm-mcp ${peerVersion} (node_modules, dist/index.js): SDK 1.x McpServer, zod 3, StdioServerTransport; AMOCRM_* placeholders (it reads them on the first CRM call only)`,
      version: peerVersion,
      ...v.peer,
      ratio_to_minimal: ratio(v.peer, v.minimal),
    },
    normal: { ...v.normal, crm_requests_during_start: requestsAtStart, ratio_to_minimal: ratio(v.normal, v.minimal), ratio_to_peer: ratio(v.normal, v.peer) },
    output_schema_compile: {
      what: "the client's side of tools/list in a fresh process: getValidator() of each SDK's AjvJsonSchemaValidator over the normal start's output schemas (bench/schema-compile.mjs), median",
      ...compile,
    },
    sandbox: { ...v.sandbox, ratio_to_minimal: ratio(v.sandbox, v.minimal) },
    normal_unbundled: {
      what: "tsc's output (dist/entry/cli.js) without the bin bundle, same normal start",
      ...v.normal_unbundled,
      ratio_to_minimal: ratio(v.normal_unbundled, v.minimal),
    },
  };
}
