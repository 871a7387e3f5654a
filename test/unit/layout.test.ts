/**
 * The house a newcomer can change (issue 11): no source file outside the emulators grows past about 400
 * lines, and the shared workflows in src/services/ stay CRM-neutral (they work over provider primitives and
 * never reach into a CRM's folder).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const MAX_LINES = 420;

/**
 * Files over the limit when the limit was introduced, none of them part of the provider split: each may not
 * grow past the size it had then, and leaves this list once it is split (the test says when).
 */
const NOT_YET_SPLIT: Record<string, number> = {};

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(relative(ROOT, p));
  }
  return out;
}

const lines = (file: string) => readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1;

/** The module specifiers a file imports or re-exports (static and dynamic). */
function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(
    /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
  )) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

const crmSpecific = (spec: string) => /(^|\/)providers\/(kommo|bitrix24)(\/|$)|^\.\.\/providers\/(kommo|bitrix24)/.test(spec);

describe('file sizes', () => {
  const src = files(join(ROOT, 'src')).filter((f) => !f.startsWith('src/sandbox/'));

  it('the walk finds the providers and services (the checks below are not vacuous)', () => {
    expect(src).toEqual(expect.arrayContaining(['src/providers/kommo/provider.ts', 'src/providers/bitrix24/provider.ts', 'src/services/create-lead.ts']));
  });

  it(`no file in src/ outside src/sandbox/ is over ${MAX_LINES} lines`, () => {
    const over = src.filter((f) => lines(f) > MAX_LINES && !(f in NOT_YET_SPLIT)).map((f) => `${f}: ${lines(f)} lines`);
    expect(over).toEqual([]);
  });

  it('the files not yet split do not grow, and leave the list once they fit', () => {
    const grown = Object.entries(NOT_YET_SPLIT)
      .filter(([f, max]) => lines(f) > max)
      .map(([f, max]) => `${f}: ${lines(f)} lines (was ${max})`);
    expect(grown).toEqual([]);
    const fits = Object.keys(NOT_YET_SPLIT).filter((f) => lines(f) <= MAX_LINES);
    expect(fits, 'now within the limit: remove from NOT_YET_SPLIT').toEqual([]);
  });
});

describe('src/services stays CRM-neutral', () => {
  it('the import scan sees static, re-exported and dynamic imports', () => {
    const sample =
      "import { a } from '../providers/kommo/map.js';\nexport { b } from '../providers/types.js';\nconst c = await import('../providers/bitrix24/api.js');\n";
    expect(importsOf(sample)).toEqual(['../providers/kommo/map.js', '../providers/types.js', '../providers/bitrix24/api.js']);
    expect(importsOf(sample).filter(crmSpecific)).toEqual(['../providers/kommo/map.js', '../providers/bitrix24/api.js']);
  });

  it('no file in src/services imports from providers/kommo or providers/bitrix24', () => {
    const services = files(join(ROOT, 'src/services'));
    expect(services.length).toBeGreaterThanOrEqual(5);
    const bad = services.flatMap((f) =>
      importsOf(readFileSync(join(ROOT, f), 'utf8'))
        .filter(crmSpecific)
        .map((spec) => `${f} imports ${spec}`),
    );
    expect(bad).toEqual([]);
  });

  it('both providers run create_lead and create_contact through the shared services', () => {
    for (const f of ['src/providers/kommo/leads.ts', 'src/providers/bitrix24/leads.ts'])
      expect(importsOf(readFileSync(join(ROOT, f), 'utf8'))).toContain('../../services/create-lead.js');
    for (const f of ['src/providers/kommo/contacts.ts', 'src/providers/bitrix24/contacts.ts'])
      expect(importsOf(readFileSync(join(ROOT, f), 'utf8'))).toContain('../../services/create-contact.js');
  });
});
