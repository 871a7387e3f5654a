/**
 * Every "§N" or "§N.N" the code cites resolves to a heading of the API notes vendored in docs/providers/:
 * files under a kommo/ folder cite docs/providers/kommo.md, files under a bitrix24/ folder cite
 * docs/providers/bitrix24.md, and any other file one of the two.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function sections(doc: string): Set<string> {
  const text = readFileSync(join(ROOT, 'docs', 'providers', doc), 'utf8');
  const out = new Set<string>();
  for (const m of text.matchAll(/^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s/gm)) out.add(m[1]!);
  return out;
}

describe('citations resolve inside the repository', () => {
  const kommo = sections('kommo.md');
  const bitrix = sections('bitrix24.md');

  it('the vendored notes have their numbered sections', () => {
    expect(kommo.has('5.5')).toBe(true);
    expect(bitrix.has('7.7')).toBe(true);
  });

  it('every § citation in src/ names a section of the right notes', () => {
    const bad: string[] = [];
    let count = 0;
    for (const file of files(join(ROOT, 'src'))) {
      const rel = relative(ROOT, file);
      const docs = rel.includes('/kommo/') ? [kommo] : rel.includes('/bitrix24/') ? [bitrix] : [kommo, bitrix];
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/§\s?(\d+(?:\.\d+)*)/g)) {
        count += 1;
        const n = m[1]!.replace(/\.$/, '');
        if (!docs.some((d) => d.has(n))) bad.push(`${rel}: §${n}`);
      }
    }
    expect(count).toBeGreaterThan(100);
    expect(bad).toEqual([]);
  });
});
