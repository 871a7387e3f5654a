/**
 * `npm run bench`: builds, then runs every benchmark once against the CRM emulators with the real limits and
 * writes bench/results.json and bench/RESULTS.md. Not part of `npm test` (timings never gate a test).
 *
 *   node --expose-gc bench/run.mjs [--only=bulk,search,overhead,startup,context,load,import | --only startup] [--render-only]
 *
 * --only runs the named parts and prints their checks; it leaves bench/results.json and bench/RESULTS.md alone
 * (a partial run would drop the other figures) and writes its results to a temporary file it names.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { bitrixBulk, kommoBulk } from './bulk-read.mjs';
import { contextCost } from './context.mjs';
import { ROOT, log, machine, round } from './lib.mjs';
import { load } from './load.mjs';
import { importBench } from './import.mjs';
import { overheadAndMemory } from './overhead.mjs';
import { buildChecks, renderMarkdown } from './report.mjs';
import { requestsPerSearch } from './search.mjs';
import { startup } from './startup.mjs';

// The SDK's HTTP client hands one AbortSignal to every fetch, and undici warns once it holds 1500 listeners:
// a client-side artefact of the bench's long-lived clients, not of the server under test.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'MaxListenersExceededWarning') process.stderr.write(`${w.name}: ${w.message}\n`);
});

// --render-only: rebuild the checks and RESULTS.md from an existing results.json (after editing report.mjs).
if (process.argv.includes('--render-only')) {
  const file = join(ROOT, 'bench', 'results.json');
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  saved.checks = buildChecks(saved);
  writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
  writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), renderMarkdown(saved, saved.checks));
  log('re-rendered bench/RESULTS.md from bench/results.json');
  process.exit(0);
}

const onlyAt = process.argv.indexOf('--only');
const only = (onlyAt > 0 ? process.argv[onlyAt + 1] : process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length))?.split(',');
const want = (name) => !only || only.includes(name);

const started = performance.now();
const results = { date: new Date().toISOString(), machine: machine() };
log(`machine: ${results.machine.cpu}, ${results.machine.cores} cores, node ${results.machine.node}`);

if (want('bulk')) results.bulk_read = { kommo: await kommoBulk(), bitrix24: await bitrixBulk() };
if (want('search')) results.requests_per_search = await requestsPerSearch();
if (want('overhead')) results.overhead = await overheadAndMemory();
if (want('startup')) results.startup = await startup();
if (want('context')) results.context = await contextCost();
if (want('load')) results.load = await load();
if (want('import')) results.bulk_import = await importBench();

results.load_average_at_end = os.loadavg().map((x) => round(x, 2));
results.run_seconds = round((performance.now() - started) / 1000, 1);
results.checks = buildChecks(results);

if (only) {
  const file = join(mkdtempSync(join(os.tmpdir(), 'crm-mcp-bench-')), 'results.json');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  for (const x of results.checks)
    process.stdout.write(`${x.section} | ${x.figure} | ${x.value} | ${x.target} | ${x.pass === null ? 'info' : x.pass ? 'pass' : 'FAIL'}\n`);
  log(`--only ${only.join(',')}: bench/RESULTS.md and bench/results.json left as they were; these results are in ${file}`);
  process.exit(0);
}

const outDir = join(ROOT, 'bench');
writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(outDir, 'RESULTS.md'), renderMarkdown(results, results.checks));
const failed = results.checks.filter((c) => c.pass === false);
log(`done in ${results.run_seconds} s: ${results.checks.filter((c) => c.pass).length} pass, ${failed.length} fail; see bench/RESULTS.md`);
process.exit(0);
