import { build } from 'esbuild';
const out = process.argv[2]; const minify = process.argv[3] === 'min';
const r = await build({
  entryPoints: ['dist/cli.js'], bundle: true, platform: 'node', format: 'esm', target: 'node20', splitting: true, outdir: out, chunkNames: 'chunk-[hash]', minify,
  banner: { js: "import { createRequire as __crmMcpCreateRequire } from 'node:module'; const require = __crmMcpCreateRequire(import.meta.url);" },
  logLevel: 'warning', metafile: true,
});
const outs = r.metafile.outputs;
const key = (f) => f.replace(/^.*\/dist\//, '');
const seen = new Set(); let bytes = 0;
const walk = (f) => { if (seen.has(f)) return; seen.add(f); bytes += outs[f].bytes; for (const i of outs[f].imports) if (i.kind === 'import-statement' && outs[i.path]) walk(i.path); };
const entry = Object.keys(outs).find((f) => f.endsWith('/cli.js'));
walk(entry);
console.log('static graph', [...seen].map((f) => `${key(f)} ${outs[f].bytes}`).join(', '), 'total', bytes);
for (const f of seen) { const ins = Object.entries(outs[f].inputs).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 8); console.log(key(f), ins.map(([k, v]) => `${k.replace('node_modules/', '')} ${v.bytesInOutput}`).join(' | ')); }
