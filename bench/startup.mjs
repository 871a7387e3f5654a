/**
 * 4. Start-up: spawn → initialize → first tools/list answer over stdio, median of several runs, for a normal
 * start pointed at an already-running emulator (KOMMO_BASE_URL + KOMMO_ACCESS_TOKEN) and for `--sandbox`
 * (which also starts both emulators and seeds their demo data). The floor is a bare `node` process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { CLI, ROOT, kommoEmu, log, median, memoryOf, round, serverEnv, stats, stdioClient } from './lib.mjs';

const RUNS = 5;

function spawnToExit(args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'ignore'] });
    child.once('error', reject);
    child.once('exit', () => resolve(performance.now() - t0));
  });
}

async function runs(label, opts) {
  const list = [];
  const init = [];
  const rss = [];
  let tools = 0;
  for (let i = 0; i < RUNS; i++) {
    const c = await stdioClient(opts);
    list.push(c.startup.tools_list_ms);
    init.push(c.startup.initialize_ms);
    rss.push(memoryOf(c.pid).rss_mb);
    tools = c.tools.length;
    await c.close();
  }
  log(`start-up ${label}: ${list.map((x) => Math.round(x)).join(', ')} ms`);
  return { runs: RUNS, tools_listed: tools, to_tools_list_ms: { median: median(list), ...stats(list) }, to_initialize_ms_median: median(init), rss_after_start_mb_median: median(rss) };
}

/**
 * Where start-up time goes: one fresh process imports the server's dependencies one after another and reports
 * each import's incremental time (shared sub-dependencies are charged to the first importer). The last two are
 * what `--http` adds, loaded lazily by entry/serve.ts so a stdio start does not pay for them.
 */
const IMPORTS = [
  'zod',
  '@modelcontextprotocol/server',
  '@modelcontextprotocol/server/stdio',
  'pino',
  'keyv',
  'undici',
  'jose',
  'libphonenumber-js',
  'dist/server.js',
  'dist/providers/factory.js',
  'dist/transports/http/service.js (--http only)',
  'dist/metrics/metrics.js (--http only)',
];

function importCosts() {
  const specs = IMPORTS.map((m) => (m.startsWith('dist/') ? pathToFileURL(`${ROOT}${m.split(' ')[0]}`).href : m));
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
  const normal = await runs('normal', { env: serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token }) });
  const requestsAtStart = emu.requests.length;
  await emu.close();
  const sandbox = await runs('--sandbox', { args: ['--sandbox'], env: serverEnv({}) });
  return {
    method: `spawn (StdioClientTransport) → initialize → tools/list answered, ${RUNS} runs each, median`,
    node_floor_ms: { what: 'spawn `node -e 0` until exit', median: round(median(floor), 1) },
    version_flag_ms: { what: 'spawn `dist/cli.js --version` until exit (loads every top-level import)', median: round(median(version), 1) },
    import_ms_median: importCosts(),
    normal: { ...normal, crm_requests_during_start: requestsAtStart },
    sandbox,
  };
}
