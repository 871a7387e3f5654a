/**
 * The audit log's file I/O: appending with size-based rotation (`<file>` → `<file>.1` … `<file>.N`), and
 * reading a bounded tail. Kept apart from audit-log.ts, which decides what goes into an entry.
 */
import { open, rename, rm } from 'node:fs/promises';

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
  }
}

/** `<file>.N-1` → `<file>.N` … `<file>` → `<file>.1`; the oldest beyond `keep` is dropped (keep 0: start over). */
async function rotate(file: string, keep: number): Promise<void> {
  if (keep <= 0) {
    await rm(file, { force: true });
    return;
  }
  await rm(`${file}.${keep}`, { force: true });
  for (let i = keep - 1; i >= 1; i--) await renameIfExists(`${file}.${i}`, `${file}.${i + 1}`);
  await rename(file, `${file}.1`);
}

/**
 * Appends `line` (mode 0600), rotating first when it would take a non-empty file past `maxBytes`. The size
 * is read from the open file each time, so a file another process appended to is measured correctly.
 */
export async function appendRotating(file: string, line: string, maxBytes: number, keep: number): Promise<void> {
  let fh = await open(file, 'a', 0o600);
  try {
    const { size } = await fh.stat();
    if (size > 0 && size + Buffer.byteLength(line) > maxBytes) {
      await fh.close();
      await rotate(file, keep);
      fh = await open(file, 'a', 0o600);
    }
    await fh.appendFile(line);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** The complete lines in the last `maxBytes` of `file`, or undefined when it does not exist. */
export async function readTailLines(file: string, maxBytes: number): Promise<{ lines: string[]; bytes: number } | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await fh.read(buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n');
    if (start > 0) lines.shift(); // a partial first line
    return { lines: lines.filter((l) => l.trim()), bytes: buf.length };
  } finally {
    await fh.close();
  }
}
