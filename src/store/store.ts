/**
 * The key-value store for tokens and cache, on keyv: a durable JSON file under the user's data directory
 * by default, in-process memory for tests and the sandbox, or Redis (`redis://host:port/db`) through keyv's
 * Redis adapter when several server instances share tokens, rate limits and refresh locks.
 */
import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Keyv from 'keyv';
import { DurableFileStore } from './file-store.js';
import { keepRenewed, LockTimeoutError } from './file-lock.js';
import { redact } from '../util/redact.js';

/** The node-redis client the Redis store shares with the limiters and locks. */
export type RedisClient = import('@keyv/redis').RedisClientType;

export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  /** Resolves only when the value is durable (written to disk for the file store, acknowledged by Redis). */
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Runs `fn` while holding the lock `name`: across every process sharing a Redis store, within this
   * process otherwise. The lock expires after `ttlMs` so a crashed holder cannot wedge the others. Waiting
   * ends after `waitMs` (default 2 × ttlMs) with a LockBusyError. With `options.renew` the lock is extended
   * every ttlMs/3 while `fn` runs, so a holder outliving the TTL keeps it (the TTL then only bounds a crash).
   */
  withLock<T>(name: string, ttlMs: number, fn: () => Promise<T>, waitMs?: number, options?: LockOptions): Promise<T>;
  /** Throws when the backend cannot be reached (readiness probes). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Human description for doctor/get_account (no secrets). */
  readonly description: string;
  /** Set for Redis stores: shared rate limiters use it. */
  readonly redis?: RedisClient;
  /** Set for file stores: the JSON file, beside which the event log keeps its own file. */
  readonly filePath?: string;
}

export interface LockOptions {
  /**
   * Extend the lock every ttlMs/3 until `fn` settles (Redis: compare-and-PEXPIRE on the holder's token; file:
   * the lock file's `at`, if still ours; memory: in-process, nothing expires). A renewal that finds the lock
   * gone logs a warning and stops.
   */
  renew?: boolean;
}

export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** The lock stayed held by someone else for the whole wait (the holder is alive and busy, or has not expired yet). */
export class LockBusyError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LockBusyError';
  }
}

export function defaultDataDir(): string {
  return process.env.CRM_MCP_HOME ?? join(homedir(), '.crm-mcp');
}

/** In-process locks: one promise chain per name. */
class LocalLocks {
  private readonly tails = new Map<string, Promise<void>>();
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const tail = prev.then(() => mine);
    this.tails.set(name, tail);
    await prev;
    try {
      return await fn();
    } finally {
      done();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

class KeyvStore implements Store {
  protected readonly locks = new LocalLocks();
  constructor(
    protected readonly kv: Keyv,
    readonly description: string,
  ) {}
  /** Runs one backend operation; subclasses turn backend failures into a StoreError. */
  protected guard<T>(_what: string, op: () => Promise<T>): Promise<T> {
    return op();
  }
  async get<T>(key: string): Promise<T | undefined> {
    return (await this.guard('read', () => this.kv.get(key))) as T | undefined;
  }
  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    const ok = await this.guard('write', () => this.kv.set(key, value, ttlMs));
    if (ok === false) throw new StoreError(`store write failed for ${key}`);
  }
  async delete(key: string): Promise<void> {
    await this.guard('delete', () => this.kv.delete(key));
  }
  withLock<T>(name: string, _ttlMs: number, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(name, fn);
  }
  async ping(): Promise<void> {
    await this.kv.get('__ping__');
  }
  async close(): Promise<void> {
    await this.kv.disconnect().catch(() => undefined);
  }
}

/** The JSON file: locks hold across the processes sharing the file (a lock file per name, see file-lock.ts). */
class FileStore extends KeyvStore {
  constructor(
    kv: Keyv,
    private readonly file: DurableFileStore,
    description: string,
    readonly filePath: string,
  ) {
    super(kv, description);
  }

  /** Local chain first (one waiter per process), then the lock file across processes. */
  override withLock<T>(name: string, ttlMs: number, fn: () => Promise<T>, waitMs?: number, options?: LockOptions): Promise<T> {
    return this.locks.run(name, () =>
      this.file.withLock(name, ttlMs, fn, waitMs, options).catch((e: unknown) => {
        throw e instanceof LockTimeoutError ? new LockBusyError(e.message, { cause: e }) : e;
      }),
    );
  }
}

const UNLOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** Redis through @keyv/redis; the same client serves locks (SET NX PX + compare-and-delete) and limiters. */
class RedisStore extends KeyvStore {
  constructor(
    kv: Keyv,
    readonly redis: RedisClient,
    description: string,
  ) {
    super(kv, description);
  }

  protected override async guard<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      const why = redact((e as Error)?.message ?? String(e));
      throw new StoreError(`The Redis store is unreachable (${what}: ${why}). Check CRM_MCP_STORE and that Redis is running; calls resume when it is back.`, {
        cause: e,
      });
    }
  }

  /** Local chain first (one waiter per process), then the Redis lock across processes. */
  override withLock<T>(name: string, ttlMs: number, fn: () => Promise<T>, waitMs?: number, options?: LockOptions): Promise<T> {
    return this.locks.run(name, async () => {
      const key = `crm-mcp:lock:${name}`;
      const token = randomUUID();
      const deadline = Date.now() + (waitMs ?? ttlMs * 2);
      for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
        const got = await this.guard('lock', () => this.redis.set(key, token, { NX: true, PX: ttlMs }));
        if (got === 'OK') break;
        if (Date.now() > deadline) throw new LockBusyError(`Timed out waiting for the lock ${name} held by another crm-mcp instance.`);
        await new Promise((r) => setTimeout(r, wait));
      }
      const renew = () => this.guard('renew', () => this.redis.eval(RENEW, { keys: [key], arguments: [token, String(ttlMs)] }));
      const stop = options?.renew ? keepRenewed(name, Math.max(1, Math.floor(ttlMs / 3)), async () => (await renew()) === 1) : undefined;
      try {
        return await fn();
      } finally {
        await stop?.();
        await this.redis.eval(UNLOCK, { keys: [key], arguments: [token] }).catch(() => undefined);
      }
    });
  }

  override async ping(): Promise<void> {
    await this.guard('ping', () => this.redis.ping());
  }

  override async close(): Promise<void> {
    await this.redis.close().catch(() => undefined);
  }
}

async function openRedis(url: string): Promise<Store> {
  const { createClient, default: KeyvRedis } = await import('@keyv/redis');
  const shown = redact(url.replace(/\/\/[^@/]*@/, '//***@'));
  let connected = false;
  const client = createClient({
    url,
    // Fail fast while disconnected (a clear error) instead of queueing calls; reconnect in the background
    // once we have been connected (at start-up a failure is reported instead of retried forever).
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 3000,
      reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(100 * 2 ** retries, 2000) : cause),
    },
  }) as unknown as RedisClient;
  client.on('error', () => undefined); // surfaced per call; reconnects on its own
  try {
    await client.connect();
    connected = true;
  } catch (e) {
    await client.close().catch(() => undefined);
    throw new StoreError(`CRM_MCP_STORE: cannot connect to Redis at ${shown} (${(e as Error).message}).`, { cause: e });
  }
  const adapter = new KeyvRedis(client, { namespace: 'crm-mcp', throwOnErrors: true, throwOnConnectError: true });
  const kv = new Keyv({ store: adapter, namespace: 'crm-mcp', throwOnErrors: true, useKeyPrefix: false });
  kv.on('error', () => undefined);
  return new RedisStore(kv, client, `redis ${shown}`);
}

const STORE_FORMS = 'a file path (or file:/path), memory, redis://host:port/db or rediss://host:port/db';

/**
 * Why `spec` is not a store address, or undefined when it is one. A string that starts like a URL with a
 * scheme we do not speak (`ftp://x`, `redis:/x`) must not be taken for a relative path: it would quietly
 * create a folder named `ftp:` and keep the tokens there. A single letter before the colon is a Windows
 * drive (`C:\data\store.json`).
 */
export function storeSpecProblem(spec: string | undefined): string | undefined {
  if (!spec || spec === 'memory') return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(spec)?.[1];
  if (!scheme || scheme.length === 1) return undefined;
  const s = scheme.toLowerCase();
  if (s === 'file' || ((s === 'redis' || s === 'rediss') && /^rediss?:\/\//i.test(spec))) return undefined;
  return `"${redact(spec.replace(/\/\/[^@/]*@/, '//***@'))}" is not a store address; use ${STORE_FORMS}`;
}

/**
 * `spec`: undefined → file under the data dir; `memory` → in-process only (tests, sandbox);
 * `redis://…` / `rediss://…` → Redis; `file:/path` or a plain path → that file.
 */
export async function openStore(spec: string | undefined): Promise<Store> {
  const problem = storeSpecProblem(spec);
  if (problem) throw new StoreError(`CRM_MCP_STORE: ${problem}`);
  if (spec === 'memory') return new KeyvStore(new Keyv({ namespace: 'crm' }), 'memory (not persisted)');
  if (spec && /^rediss?:\/\//i.test(spec)) return openRedis(spec);
  const file = spec ? spec.replace(/^file:(\/\/)?/i, '') : join(defaultDataDir(), 'store.json');
  let backend: DurableFileStore;
  try {
    backend = new DurableFileStore(file);
  } catch (err) {
    const msg = (err as Error)?.message ?? String(err);
    if (msg.startsWith('CRM_MCP_STORE')) throw err;
    // A bare "EACCES: permission denied, mkdir" does not say which setting chose the place.
    const code = (err as { code?: string }).code ?? 'error';
    const which = spec
      ? `CRM_MCP_STORE points at ${file}, whose directory cannot be created or written (${code}). Point CRM_MCP_STORE at a writable file`
      : `The data directory ${defaultDataDir()} (CRM_MCP_HOME, default ~/.crm-mcp) cannot be created or written (${code}). Set CRM_MCP_HOME to a writable directory, or CRM_MCP_STORE to a writable file`;
    throw new StoreError(`${which}.`, { cause: err });
  }
  const kv = new Keyv({ store: backend as unknown as Map<string, unknown>, namespace: 'crm' });
  return new FileStore(kv, backend, `file ${file}`, file);
}
