#!/usr/bin/env node
/**
 * Writes the generated parts of the docs from the built registry and env table (`npm run docs` builds first):
 *
 *   README.md    the tool table (src/docs.ts) and the Configuration table (src/config/env-docs.ts)
 *   server.json  packages[].environmentVariables for the MCP registry
 *
 *   node scripts/docs.mjs [--check]
 *
 * `--check` writes nothing and exits 1 naming the stale files (the tests check the same).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(join(ROOT, 'dist', p)).href;
if (!existsSync(join(ROOT, 'dist', 'docs.js'))) {
  process.stderr.write('docs: dist/ is missing: run `npm run build` first (or `npm run docs`).\n');
  process.exit(1);
}
const { renderReadme } = await import(dist('docs.js'));
const { renderConfigReadme, renderServerJson } = await import(dist('config/env-docs.js'));

const files = [
  { path: join(ROOT, 'README.md'), render: (s) => renderConfigReadme(renderReadme(s)) },
  { path: join(ROOT, 'server.json'), render: renderServerJson },
];
const check = process.argv.includes('--check');
const stale = [];
for (const f of files) {
  const now = readFileSync(f.path, 'utf8');
  const next = f.render(now);
  if (next === now) continue;
  stale.push(f.path);
  if (!check) writeFileSync(f.path, next);
}
if (check && stale.length) {
  process.stderr.write(`docs: stale (run \`npm run docs\`): ${stale.join(', ')}\n`);
  process.exit(1);
}
process.stdout.write(stale.length ? `docs: wrote ${stale.join(', ')}\n` : 'docs: up to date\n');
