#!/usr/bin/env node
/**
 * Bundles the bin (dist/cli.js, as tsc wrote it) with esbuild into dist/cli.js plus dist/cli-*.js chunks; part
 * of `npm run build`, after tsc. Why: a stdio start used to load about 190 ES modules (our ~95 plus zod's and
 * the SDK's), and resolving, reading and linking them one by one cost more than running them; one graph of
 * a few files starts about as fast as a one-tool SDK server (bench/startup.mjs measures both side by side).
 *
 * - Code splitting keeps the lazy parts lazy: what `import()` loads (the HTTP service, the sandbox, the
 *   sub-commands, undici, jose, the Redis store, each CRM's provider) is a chunk loaded only when used.
 * - Every output file sits directly in dist/, where tsc's dist/version.js and dist/paths.js sit, so the
 *   paths they resolve from their own URL (../package.json, ./cli.js) hold in both layouts.
 * - Dependencies are bundled except what the code loads with createRequire at run time (libphonenumber-js),
 *   which still resolves from node_modules; package.json keeps every dependency, so npm, npx and the .mcpb
 *   (scripts/bundle.mjs copies dist/ and installs them) are unchanged. The other tsc output stays in dist/
 *   (the bench, the docs script and the packaging checks import it).
 *
 *   node scripts/build-bin.mjs     (run by `npm run build`; needs a fresh tsc output in dist/)
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const ENTRY = join(DIST, 'cli.js');
const MARK = '// crm-mcp bin bundle (scripts/build-bin.mjs)';
const CHUNK = /^cli-[A-Z0-9]{8}\.js$/;
/** Heads the bundled copy of dist/precomputed-schemas.js (test/unit/precomputed-schemas.test.ts finds it by this). */
const SCHEMAS_MARK = '// crm-mcp precomputed JSON Schemas (scripts/build-bin.mjs)';
/** Chunks of an earlier build stay this long, so a server started from it can still load its lazy parts. */
const STALE_AFTER_MS = 10 * 60_000;

/** Whether Node loads this file as CommonJS (.cjs, or .js under a package.json without "type": "module"). */
function isCommonJs(file) {
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, 'utf8')).type !== 'module';
  }
  return true;
}

/**
 * `await import('undici')` of a CommonJS package: Node gives the namespace named exports (module.exports'
 * keys), esbuild only `default`, so `u.Agent` would be undefined in the bundle alone. Such an import is sent
 * to a small ES module that re-exports the package's keys (read by loading it here) beside `default`.
 */
const cjsDynamicImports = {
  name: 'cjs-dynamic-imports',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const r = await b.resolve(args.path, { kind: 'import-statement', resolveDir: args.resolveDir });
      if (r.errors.length || r.external || !isCommonJs(r.path)) return undefined;
      return { path: args.path, namespace: 'cjs-dynamic-import', pluginData: { resolveDir: args.resolveDir, file: r.path } };
    });
    b.onLoad({ filter: /.*/, namespace: 'cjs-dynamic-import' }, (args) => {
      const { resolveDir, file } = args.pluginData;
      const names = Object.keys(createRequire(file)(file)).filter((k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k));
      const spec = JSON.stringify(args.path);
      return { resolveDir, loader: 'js', contents: `import m from ${spec};\nexport default m;\nexport const { ${names.join(', ')} } = m;\n` };
    });
  },
};

const entrySource = readFileSync(ENTRY, 'utf8');
if (entrySource.includes(MARK)) {
  process.stderr.write('build-bin: dist/cli.js is already a bundle; run `npm run build` (tsc writes it afresh first).\n');
  process.exit(1);
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const nodeMin = /\d+(\.\d+){0,2}/.exec(pkg.engines.node)?.[0] ?? '20';

/**
 * The first tools/list converts every listed tool's zod schemas to JSON Schema (≈ 20 ms for the default list
 * on a fresh process). Converted here instead, by the same code from the same tsc output (src/precompute-schemas.ts
 * jsonSchemasToPrecompute), and put into the bundle in place of the empty src/precomputed-schemas.ts.
 */
const { jsonSchemasToPrecompute } = await import(pathToFileURL(join(DIST, 'precompute-schemas.js')).href);
const precomputed = JSON.stringify(jsonSchemasToPrecompute());
const precomputedSchemas = {
  name: 'precomputed-schemas',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]precomputed-schemas\.js$/ }, () => ({
      loader: 'js',
      // A JSON.parse of one string is read faster than the same data as an object literal.
      contents: `${SCHEMAS_MARK}\nexport const PRECOMPUTED_JSON_SCHEMAS = JSON.parse(${JSON.stringify(precomputed)});\n`,
    }));
  },
};

// Written beside the output (same file system, so the renames below are atomic) and moved in when complete.
const tmp = mkdtempSync(join(DIST, '.build-bin-'));
try {
  const result = await build({
    entryPoints: [{ in: ENTRY, out: 'cli' }],
    outdir: tmp,
    bundle: true,
    splitting: true,
    chunkNames: 'cli-[hash]',
    format: 'esm',
    platform: 'node',
    target: `node${nodeMin}`,
    // Class and function names stay as written: error names and stack traces read the same as from tsc's output.
    keepNames: true,
    // CommonJS dependencies (pino, undici, keyv…) call require() for Node's built-ins, which an ES module has
    // no binding for; every output file gets one. The entry's #! line stays first (esbuild keeps it).
    banner: { js: `${MARK}\nimport { createRequire as __crmMcpCreateRequire } from 'node:module';\nconst require = __crmMcpCreateRequire(import.meta.url);` },
    legalComments: 'eof',
    plugins: [cjsDynamicImports, precomputedSchemas],
    metafile: true,
    logLevel: 'warning',
  });
  const written = Object.keys(result.metafile.outputs).map((f) => basename(f));
  // Chunks first, the entry last: the new dist/cli.js only ever points at chunks that are already in place.
  for (const f of written.filter((f) => f !== 'cli.js')) renameSync(join(tmp, f), join(DIST, f));
  renameSync(join(tmp, 'cli.js'), ENTRY);
  // tsc's map describes the two-line entry it wrote, not the bundle.
  rmSync(`${ENTRY}.map`, { force: true });

  const now = Date.now();
  for (const f of readdirSync(DIST)) {
    if (CHUNK.test(f) && !written.includes(f) && now - statSync(join(DIST, f)).mtimeMs > STALE_AFTER_MS) rmSync(join(DIST, f), { force: true });
  }
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  process.stdout.write(`build-bin: dist/cli.js + ${written.length - 1} chunks, ${(bytes / 2 ** 20).toFixed(1)} MB\n`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
