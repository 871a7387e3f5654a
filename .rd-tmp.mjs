import { build } from 'rolldown';
const t = performance.now();
await build({ input: 'dist/cli.js', platform: 'node', output: { dir: '/tmp/w/b/dist', format: 'esm', minify: process.argv[2] === 'min' }, external: [/^node:/] , logLevel: 'warn'});
console.log('built in', Math.round(performance.now() - t));
