/**
 * The bin bundle carries every tool's JSON Schemas converted at build time (scripts/build-bin.mjs, from
 * src/precompute-schemas.ts), so its first tools/list converts nothing. They must be exactly what zod
 * converts from the source now, and the bin must list exactly what tsc's output (which converts at run time)
 * lists. Run after `npm run build`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { jsonSchemasToPrecompute } from '../../src/precompute-schemas.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { baseEnv, tempHome } from '../helpers/cli.js';
import { startKommo } from '../helpers/index.js';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const ASSIGN = 'PRECOMPUTED_JSON_SCHEMAS = JSON.parse(';

/** The map the bundle parses at start: the string literal handed to JSON.parse, read back as JavaScript would. */
function bundled(): Record<string, unknown> {
  const files = readdirSync(DIST).filter((f) => /^cli(-[A-Z0-9]{8})?\.js$/.test(f));
  const hits = files.map((f) => readFileSync(join(DIST, f), 'utf8')).filter((src) => src.includes(ASSIGN));
  expect(hits, 'exactly one bundle file assigns the precomputed schemas').toHaveLength(1);
  const src = hits[0]!;
  const start = src.indexOf(ASSIGN) + ASSIGN.length;
  const literal = src.slice(start, src.indexOf(');\n', start));
  return JSON.parse(new Function(`return ${literal};`)() as string) as Record<string, unknown>;
}

async function listTools(args: string[], env: Record<string, string>): Promise<unknown[]> {
  const transport = new StdioClientTransport({ command: process.execPath, args, env: { ...baseEnv(), ...env }, stderr: 'ignore' });
  const client = new Client({ name: 'test', version: '0.0.0' });
  await client.connect(transport);
  try {
    return (await client.listTools()).tools;
  } finally {
    await client.close();
  }
}

describe('precomputed JSON Schemas in the bin bundle', () => {
  let emu: KommoEmulator;
  beforeAll(async () => {
    emu = await startKommo();
  });
  afterAll(async () => {
    await emu?.close();
  });

  it('are exactly what zod converts from the source now, for every tool (input with and without the approval field, output)', () => {
    const now = jsonSchemasToPrecompute();
    expect(Object.keys(now).length).toBeGreaterThan(30);
    expect(bundled()).toEqual(now);
  });

  for (const [label, extra] of [
    ['every toolset, full mode', { CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_DELETE: 'true', CRM_TOOLSETS: 'all' }],
    ['CRM_CONFIRM_WRITES (the approval field)', { CRM_ALLOW_WRITES: 'true', CRM_CONFIRM_WRITES: 'true' }],
  ] as const) {
    it(`${label}: the bin lists what tsc's output converts at run time, schema for schema`, { timeout: 60_000 }, async () => {
      const env = (): Record<string, string> => {
        const home = tempHome();
        return { HOME: home, CRM_MCP_HOME: home, KOMMO_BASE_URL: emu.url, KOMMO_ACCESS_TOKEN: emu.createLongLivedToken({ expiresInSec: 3600 }), ...extra };
      };
      const unbundled = ['--input-type=module', '-e', `import(${JSON.stringify(join(DIST, 'entry', 'cli.js'))}).then((m) => m.run([]));`];
      const [bin, tsc] = await Promise.all([listTools([join(DIST, 'cli.js')], env()), listTools(unbundled, env())]);
      expect(bin.length).toBeGreaterThan(9);
      expect(bin).toEqual(tsc);
    });
  }
});
