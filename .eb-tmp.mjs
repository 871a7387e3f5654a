import { build } from 'esbuild';
const split = process.argv[2] === 'split';
const out = process.argv[3];
const t = performance.now();
const r = await build({
  entryPoints: ['dist/cli.js'], bundle: true, platform: 'node', format: 'esm', target: 'node20',
  ...(split ? { splitting: true, outdir: out, chunkNames: 'chunk-[hash]' } : { outfile: `${out}/cli.js` }),
  banner: { js: "import { createRequire as __crmMcpCreateRequire } from 'node:module'; const require = __crmMcpCreateRequire(import.meta.url);" },
  logLevel: 'warning', metafile: true,
});
console.log('built', Math.round(performance.now() - t), 'ms');
for (const [f, o] of Object.entries(r.metafile.outputs)) console.log(f, o.bytes);
