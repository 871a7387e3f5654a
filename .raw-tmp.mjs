import { spawn } from 'node:child_process';
import { kommoEmu, serverEnv, median, CLI } from './bench/lib.mjs';
const { emu, token } = await kommoEmu();
function once(script, env) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, [script], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let buf = ''; let tInit;
    c.stdout.on('data', (d) => {
      buf += d;
      for (;;) { const i = buf.indexOf('\n'); if (i < 0) break; const line = buf.slice(0, i); buf = buf.slice(i + 1);
        const m = JSON.parse(line);
        if (m.id === 1) { tInit = performance.now() - t0; c.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n'); }
        if (m.id === 2) { const t = performance.now() - t0; c.kill(); resolve([tInit, t]); } }
    });
    c.stdin.write('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"0"}}}\n');
  });
}
const A = [], B = [];
const ALT = process.env.ALT_CLI;
for (let i = 0; i < 9; i++) {
  if (ALT) A.push(await once(ALT, serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token }))); else
  A.push(await once(CLI, serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token })));
  B.push(await once('bench/minimal-server.mjs', serverEnv({})));
}
const f = (X) => `init ${median(X.map((x) => x[0])).toFixed(0)} list ${median(X.map((x) => x[1])).toFixed(0)}`;
console.log('crm', f(A), '| min', f(B), 'ratio', (median(A.map((x) => x[1])) / median(B.map((x) => x[1]))).toFixed(2));
await emu.close(); process.exit(0);
