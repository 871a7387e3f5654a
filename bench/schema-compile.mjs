/**
 * What crm-mcp's output schemas cost a client: each fresh process builds the JSON-schema validator exactly as
 * an SDK client does on tools/list (1.x: `Client.listTools()` → `AjvJsonSchemaValidator.getValidator()` per
 * tool with an outputSchema, classic Ajv + ajv-formats, allErrors; 2.x: the same provider class of
 * @modelcontextprotocol/client, Ajv2020, built lazily on the first schema) and compiles every output schema of
 * the default tools/list. Fresh processes because the first compile in a process also pays Ajv's warm-up,
 * which is what a client starting up pays. Used by bench/startup.mjs; standalone:
 *
 *   node bench/schema-compile.mjs [schemas.json]   (default: the tools/list of dist/cli.js → a Kommo emulator)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, kommoEmu, median, round, serverEnv, stdioClient } from './lib.mjs';

const PROVIDERS = {
  sdk1: '@modelcontextprotocol/sdk/validation/ajv',
  sdk2: '@modelcontextprotocol/client/validators/ajv',
};

/** The tools of a normal start's tools/list (name → outputSchema), as the client receives them. */
export async function listedOutputSchemas() {
  const { emu, token } = await kommoEmu();
  try {
    const c = await stdioClient({ env: serverEnv({ KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: token }) });
    await c.close();
    return Object.fromEntries(c.tools.filter((t) => t.outputSchema).map((t) => [t.name, t.outputSchema]));
  } finally {
    await emu.close();
  }
}

/** Median over `runs` fresh processes of the time to compile every schema with `sdk`'s client-side validator. */
export function compileCost(schemas, { runs = 7, sdk = 'sdk1' } = {}) {
  const file = join(mkdtempSync(join(os.tmpdir(), 'crm-mcp-schemas-')), 'schemas.json');
  writeFileSync(file, JSON.stringify(schemas));
  const code = `
    import { readFileSync } from 'node:fs';
    const { AjvJsonSchemaValidator } = await import(${JSON.stringify(PROVIDERS[sdk])});
    const schemas = JSON.parse(readFileSync(${JSON.stringify(file)}, 'utf8'));
    const v = new AjvJsonSchemaValidator();
    const per = {};
    const t0 = performance.now();
    for (const [name, s] of Object.entries(schemas)) { const t = performance.now(); v.getValidator(s); per[name] = performance.now() - t; }
    process.stdout.write(JSON.stringify({ total: performance.now() - t0, per }));`;
  const out = [];
  for (let i = 0; i < runs; i++) out.push(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' })));
  const per = Object.fromEntries(Object.keys(schemas).map((n) => [n, round(median(out.map((o) => o.per[n])), 2)]));
  return { runs, schemas: Object.keys(schemas).length, total_ms_median: round(median(out.map((o) => o.total)), 1), per_tool_ms_median: per };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const schemas = process.argv[2] ? JSON.parse(readFileSync(process.argv[2], 'utf8')) : await listedOutputSchemas();
  if (process.env.SAVE_SCHEMAS) writeFileSync(process.env.SAVE_SCHEMAS, JSON.stringify(schemas, null, 1));
  const bytes = Buffer.byteLength(JSON.stringify(schemas));
  console.log(JSON.stringify({ bytes, sdk1: compileCost(schemas), sdk2: compileCost(schemas, { sdk: 'sdk2' }) }, null, 1));
  process.exit(0);
}
