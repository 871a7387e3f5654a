/**
 * The house a newcomer can change: no source file outside the emulators grows past about 400 lines. (Which
 * file may import which is dependency-cruiser's job in `npm run lint`; test/integration/layers.test.ts shows
 * that its rules catch a planted violation.)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;
const MAX_LINES = 420;

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(relative(ROOT, p));
  }
  return out;
}

const lines = (file: string) => readFileSync(join(ROOT, file), 'utf8').split('\n').length - 1;

describe('file sizes', () => {
  const src = files(join(ROOT, 'src')).filter((f) => !f.startsWith('src/sandbox/'));

  it('the walk finds the wings, the services and the tools (the check below is not vacuous)', () => {
    expect(src.length).toBeGreaterThan(100);
    expect(src).toEqual(expect.arrayContaining(['src/crms/registry.ts', 'src/services/create-lead.ts', 'src/tools/invoke.ts', 'src/domain/errors.ts']));
  });

  it(`no file in src/ outside src/sandbox/ is over ${MAX_LINES} lines`, () => {
    const over = src.filter((f) => lines(f) > MAX_LINES).map((f) => `${f}: ${lines(f)} lines`);
    expect(over).toEqual([]);
  });
});
