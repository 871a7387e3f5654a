/**
 * The layer rules of docs/architecture.md are enforced by dependency-cruiser in `npm run lint`. This test runs
 * the project's own rules (.dependency-cruiser.cjs) over small planted trees and shows that each kind of
 * violation is caught: an import that runs up (also from a wing's core into the tool layer its top may use), an
 * import circle, an emulator importing client code, a general file importing a CRM's wing, and one wing importing
 * another. A tree that keeps the rules passes.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin', 'depcruise');
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes the files into a fresh tree and returns the names of the rules dependency-cruiser reports. */
async function violations(files: Record<string, string>): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'crm-mcp-layers-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const out = await new Promise<string>((resolve) => {
    execFile(BIN, ['src', '-c', join(ROOT, '.dependency-cruiser.cjs'), '--output-type', 'json'], { cwd: dir }, (_err, stdout) => resolve(stdout));
  });
  const report = JSON.parse(out) as { summary: { violations: Array<{ rule: { name: string } }> } };
  return [...new Set(report.summary.violations.map((v) => v.rule.name))].sort();
}

/** A tree that keeps every rule: each layer imports only layers below it. */
const CLEAN: Record<string, string> = {
  'src/util/text.ts': 'export const trim = (s: string) => s.trim();\n',
  'src/domain/errors.ts': "import { trim } from '../util/text.js';\nexport class CrmError extends Error {}\nexport const t = trim;\n",
  'src/crms/contract.ts': "import type { CrmError } from '../domain/errors.js';\nexport type E = CrmError;\n",
  'src/crms/acme/api.ts': "import type { E } from '../contract.js';\nexport type A = E;\n",
  'src/crms/registry.ts': "import type { A } from './acme/api.js';\nexport type R = A;\n",
  'src/services/create.ts': "import type { E } from '../crms/contract.js';\nexport type S = E;\n",
  'src/tools/create.ts': "import type { S } from '../services/create.js';\nexport type T = S;\n",
  'src/sandbox/acme/index.ts': 'export const emulator = 1;\n',
};

describe('the layer rules catch what they forbid', () => {
  it('a tree that keeps the rules has no violation', async () => {
    expect(await violations(CLEAN)).toEqual([]);
  });

  it('an import that runs up (the domain importing a tool)', async () => {
    const found = await violations({ ...CLEAN, 'src/domain/bad.ts': "import type { T } from '../tools/create.js';\nexport type B = T;\n" });
    expect(found).toEqual(['no-upward-import-from-domain']);
  });

  it('a CRM wing importing the services above it (the workflow upside down)', async () => {
    const found = await violations({ ...CLEAN, 'src/crms/acme/leads.ts': "import type { S } from '../../services/create.js';\nexport type L = S;\n" });
    expect(found).toEqual(['no-upward-import-from-crm-wings']);
  });

  it("a wing's tool file may use the tool layer; the wing's core may not (it sits below the services)", async () => {
    const tool = { 'src/tools/define.ts': 'export const defineTool = <T>(t: T) => t;\n' };
    const top = await violations({
      ...CLEAN,
      ...tool,
      'src/crms/acme/raw-tool.ts': "import { defineTool } from '../../tools/define.js';\nexport const t = defineTool(1);\n",
    });
    expect(top).toEqual([]);
    const core = await violations({
      ...CLEAN,
      ...tool,
      'src/crms/acme/raw.ts': "import { defineTool } from '../../tools/define.js';\nexport const t = defineTool(1);\n",
    });
    expect(core).toEqual(['no-upward-import-from-crm-wings']);
  });

  it('an import circle', async () => {
    const found = await violations({
      ...CLEAN,
      'src/services/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'src/services/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    });
    expect(found).toEqual(['no-circular']);
  });

  it('an emulator importing client code', async () => {
    const found = await violations({ ...CLEAN, 'src/sandbox/acme/bad.ts': "import type { E } from '../../crms/contract.js';\nexport type X = E;\n" });
    expect(found).toEqual(['emulators-stand-alone']);
  });

  it('a general file importing a CRM wing instead of the registry', async () => {
    const found = await violations({ ...CLEAN, 'src/tools/bad.ts': "import type { A } from '../crms/acme/api.js';\nexport type X = A;\n" });
    expect(found).toEqual(['wing-only-through-registry']);
  });

  it('one wing importing another', async () => {
    const found = await violations({ ...CLEAN, 'src/crms/other/api.ts': "import type { A } from '../acme/api.js';\nexport type O = A;\n" });
    expect(found).toEqual(['wings-apart']);
  });
});
