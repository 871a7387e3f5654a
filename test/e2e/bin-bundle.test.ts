/**
 * The bin (dist/cli.js) is the esbuild bundle scripts/build-bin.mjs writes after tsc (`npm run build`): a stdio
 * start reads a few files instead of resolving some 190 modules one by one. What it must keep: nothing
 * resolved from node_modules or tsc's output at start, every lazily loaded chunk intact, and the named exports
 * of a CommonJS package loaded with import(). Run after `npm run build`. (Start-up time is measured in bench/.)
 */
import { describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const CHUNK = /^cli-[A-Z0-9]{8}\.js$/;

/** Specifiers of a file's static imports and re-exports (esbuild writes each at the start of a line). */
function staticImports(file: string): string[] {
  const src = readFileSync(join(DIST, file), 'utf8');
  return [...src.matchAll(/^(?:import|export)\b[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"|^import\s*\{[^}]*\}\s*from\s*'([^']+)'/gm)].map(
    (m) => (m[1] ?? m[2] ?? m[3])!,
  );
}

/** Chunks the bundle's files load with import(), by file name. */
function dynamicImports(file: string): string[] {
  return [...readFileSync(join(DIST, file), 'utf8').matchAll(/\bimport\("\.\/(cli-[A-Z0-9]{8}\.js)"\)/g)].map((m) => m[1]!);
}

describe('the bin bundle', () => {
  it('dist/cli.js and what it imports statically load only Node built-ins and its own chunks', () => {
    expect(readFileSync(join(DIST, 'cli.js'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    const seen = new Set<string>();
    const outside: string[] = [];
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of staticImports(file)) {
        const local = /^\.\/(cli-[A-Z0-9]{8}\.js)$/.exec(spec)?.[1];
        if (local) walk(local);
        else if (!isBuiltin(spec)) outside.push(`${file} → ${spec}`);
      }
    };
    walk('cli.js');
    expect(outside).toEqual([]);
    expect(seen.size).toBeGreaterThan(1);
  });

  it('every chunk, the lazily loaded ones too, links and evaluates', async () => {
    const chunks = new Set<string>();
    const pending = ['cli.js'];
    while (pending.length) {
      const file = pending.pop()!;
      for (const spec of [...staticImports(file).map((s) => s.replace(/^\.\//, '')), ...dynamicImports(file)]) {
        if (CHUNK.test(spec) && !chunks.has(spec)) {
          chunks.add(spec);
          pending.push(spec);
        }
      }
    }
    // The sandbox, the HTTP service and the sub-commands are chunks loaded with import() only.
    expect(readdirSync(DIST).filter((f) => CHUNK.test(f)).length).toBeGreaterThanOrEqual(chunks.size);
    const failed: string[] = [];
    for (const c of chunks) await import(pathToFileURL(join(DIST, c)).href).catch((err: Error) => failed.push(`${c}: ${err.message}`));
    expect(failed).toEqual([]);
  });

  it('undici, a CommonJS package the HTTP core loads with import(), keeps its named exports (esbuild alone gives only `default`)', async () => {
    // The HTTP core's chunk exports its send step (every outgoing request, the OAuth token requests too); the
    // newest such chunk is this build's (an earlier build's chunks stay a while for servers still running).
    const file = readdirSync(DIST)
      .filter((f) => CHUNK.test(f) && /^export \{[^}]*\bsendOnce\b/m.test(readFileSync(join(DIST, f), 'utf8')))
      .sort((a, b) => statSync(join(DIST, b)).mtimeMs - statSync(join(DIST, a)).mtimeMs)[0];
    expect(file, 'the chunk that exports sendOnce').toBeTruthy();
    const { sendOnce } = (await import(pathToFileURL(join(DIST, file!)).href)) as {
      sendOnce: (url: URL, o: { method: string; timeoutMs: number }) => Promise<{ status: number; text: string }>;
    };
    // Sending needs undici's `request` and `Agent`, the named exports esbuild alone would lose.
    const server = createServer((_req, res) => res.end('{"ok":true}')).listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const res = await sendOnce(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), { method: 'GET', timeoutMs: 5000 });
      expect(res).toMatchObject({ status: 200, text: '{"ok":true}' });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
