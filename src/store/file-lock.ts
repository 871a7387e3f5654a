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
import { link, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { log } from '../util/log.js';

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
  /** Keep the lock while `fn` runs: refresh its `at` every staleMs/3 (see keepRenewed). */
  renew?: boolean;
}

/**
 * Keeps a held lock alive: `extend` every `everyMs` until the returned stop is awaited. Without it a holder
 * that legitimately outlives the TTL (a slow CRM, a bulk import batch holding many persons' locks) loses the
 * lock to the next waiter while still working. `extend` answering false means the lock is no longer ours (we
 * overran the TTL before a renewal got through and someone took it over): that is logged once and renewal ends;
 * what protects the holder's work from then on is its own checks (a create's look-before-retry). An `extend`
 * that throws (Redis briefly unreachable) is tried again at the next tick: the lock may well still be ours.
 * Stop waits for a renewal in flight, so none lands after the caller has released the lock.
 */
export function keepRenewed(lock: string, everyMs: number, extend: () => Promise<boolean>): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(tick, everyMs);
    timer.unref();
  };
  const tick = () => {
    inflight = extend().then(
      (ours) => {
        if (ours) return schedule();
        log().warn({ lock }, 'lock lost while its holder was still working (it overran the lock TTL); another caller may have entered');
      },
      (e: unknown) => {
        log().warn({ lock, err: (e as Error)?.message ?? String(e) }, 'lock renewal failed; trying again');
        schedule();
      },
    );
  };
  schedule();
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await inflight;
  };
}

/** Moves our lock's `at` forward; false when the lock is no longer ours. */
async function refresh(path: string, mine: LockInfo, staleMs: number): Promise<boolean> {
  const now = await readInfo(path);
  if (now?.token !== mine.token) return false;
  // Past the stale age a waiter may be taking it over this instant: writing it back could undo their takeover.
  if (Date.now() - now.at > staleMs) return false;
  const next: LockInfo = { ...mine, at: Date.now() };
  // Written aside and renamed over, so a waiter reading the lock never sees it empty or half-written.
  const aside = `${path}.${mine.token}.renew`;
  try {
    await writeFile(aside, JSON.stringify(next), { mode: 0o600 });
    await rename(aside, path);
  } catch (e) {
    await unlink(aside).catch(() => undefined);
    throw e;
  }
  mine.at = next.at;
  return true;
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
  const stop = o.renew ? keepRenewed(o.what, Math.max(1, Math.floor(o.staleMs / 3)), () => refresh(path, mine, o.staleMs)) : undefined;
  try {
    return await fn();
  } finally {
    await stop?.();
    // Release only our own lock: after a takeover (we overran staleMs) the file is someone else's.
    const now = await readInfo(path);
    if (now?.token === mine.token) await unlink(path).catch(() => undefined);
  }
}
