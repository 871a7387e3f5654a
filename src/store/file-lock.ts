/**
 * A lock between processes sharing one data directory (a second stdio instance, `crm-mcp doctor`,
 * `crm-mcp auth` next to a running server), with no native addon: a lock file created with O_EXCL (`wx`)
 * holding the owner's pid, host, a random token and the time it was taken. A holder that crashed (its pid is
 * gone on this host) or held it longer than `staleMs` loses it to the next waiter; the takeover renames the
 * stale file away first and checks it took the one it judged stale, so two waiters cannot both take it.
 * The Redis store does the same job with SET NX PX (see store.ts).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';

interface LockInfo {
  pid: number;
  host: string;
  token: string;
  /** Epoch ms when taken. */
  at: number;
}

export class LockTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LockTimeoutError';
  }
}

export interface FileLockOptions {
  /** A lock older than this is taken over (a holder must finish well within it). */
  staleMs: number;
  /** Give up waiting after this long. */
  timeoutMs: number;
  /** Named in the timeout error. */
  what: string;
}

const HOST = hostname();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

async function readInfo(path: string): Promise<LockInfo | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.token === 'string' && typeof v.at === 'number' && typeof v.host === 'string') return v as LockInfo;
  } catch {
    // missing, or being written this instant (created but not yet filled)
  }
  return undefined;
}

function stale(info: LockInfo, staleMs: number): boolean {
  if (Date.now() - info.at > staleMs) return true;
  return info.host === HOST && info.pid !== process.pid && !alive(info.pid);
}

async function tryCreate(path: string, info: LockInfo): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await fh.writeFile(JSON.stringify(info));
  } finally {
    await fh.close();
  }
  return true;
}

/** Moves a lock judged stale out of the way; puts it back when it turned out to be a fresh one. */
async function takeOver(path: string, judged: LockInfo): Promise<void> {
  const aside = `${path}.${randomUUID()}.stale`;
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // released or taken over meanwhile
    throw e;
  }
  const got = await readInfo(aside);
  if (got && got.token !== judged.token) {
    // Another waiter replaced the stale lock between our read and the rename: restore theirs (link fails if a
    // third one already holds the path, which is then theirs to keep).
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

/** Runs `fn` holding the lock file `path`. */
export async function withFileLock<T>(path: string, o: FileLockOptions, fn: () => Promise<T>): Promise<T> {
  const mine: LockInfo = { pid: process.pid, host: HOST, token: randomUUID(), at: Date.now() };
  const deadline = Date.now() + o.timeoutMs;
  let seenSince: { token: string; first: number } | undefined;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    mine.at = Date.now();
    if (await tryCreate(path, mine)) break;
    const held = await readInfo(path);
    if (held && stale(held, o.staleMs)) {
      await takeOver(path, held);
      continue;
    }
    if (!held) {
      // An unreadable lock (a holder that died between creating and filling it) is judged by how long we
      // have seen it unreadable.
      if (!seenSince || seenSince.token !== '') seenSince = { token: '', first: Date.now() };
      else if (Date.now() - seenSince.first > o.staleMs) {
        await unlink(path).catch(() => undefined);
        seenSince = undefined;
        continue;
      }
    }
    if (Date.now() > deadline) {
      throw new LockTimeoutError(
        `Timed out waiting for the lock on ${o.what}, held by process ${held?.pid ?? '?'}${held && held.host !== HOST ? ` on ${held.host}` : ''}.`,
      );
    }
    await new Promise((r) => setTimeout(r, wait));
  }
  try {
    return await fn();
  } finally {
    // Release only our own lock: after a takeover (we overran staleMs) the file is someone else's.
    const now = await readInfo(path);
    if (now?.token === mine.token) await unlink(path).catch(() => undefined);
  }
}
