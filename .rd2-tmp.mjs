import { build } from 'rolldown';
await build({ input: 'dist/cli.js', platform: 'node', output: { dir: '/tmp/w/b2/dist', format: 'esm' }, external: [/^node:/, /^[^./]/], logLevel: 'warn' });
