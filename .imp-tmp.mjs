const list = process.argv.slice(2);
const out = [];
for (const spec of list) { const t = performance.now(); await import(spec.startsWith('dist/') ? new URL(spec, 'file:///work/main/').href : spec); out.push(`${spec} ${(performance.now() - t).toFixed(1)}`); }
console.log(out.join(' | '));
