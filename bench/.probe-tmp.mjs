import { kommoEmu, serverEnv, stdioClient, median, CLI } from './lib.mjs';
import { spawn } from 'node:child_process';
const { emu, token } = await kommoEmu();
const a = [], b = [];
for (let i = 0; i < 7; i++) {
  const c = await stdioClient({ env: serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token }) });
  a.push(c.startup.tools_list_ms); await c.close();
  const m = await stdioClient({ script: new URL('./minimal-server.mjs', import.meta.url).pathname, env: serverEnv({}) });
  b.push(m.startup.tools_list_ms); await m.close();
}
console.log('crm', a.join(' '), 'median', median(a));
console.log('min', b.join(' '), 'median', median(b), 'ratio', median(a) / median(b));
await emu.close();
process.exit(0);
