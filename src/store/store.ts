/**
 * The key-value store for tokens and cache, on keyv so another backend (Redis) slots in behind the same
 * interface. Default: a durable JSON file under the user's data directory.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import Keyv from 'keyv';
import { DurableFileStore } from './file-store.js';

export interface Store {
  get<T>(key: string): Promise<T | undefined>;
  /** Resolves only when the value is durable (written to disk for the file store). */
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
  /** Human description for doctor/get_account (no secrets). */
  readonly description: string;
}

export function defaultDataDir(): string {
  return process.env.CRM_MCP_HOME ?? join(homedir(), '.crm-mcp');
}

class KeyvStore implements Store {
  constructor(
    private readonly kv: Keyv,
    readonly description: string,
  ) {}
  async get<T>(key: string): Promise<T | undefined> {
    return (await this.kv.get(key)) as T | undefined;
  }
  async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
    const ok = await this.kv.set(key, value, ttlMs);
    if (ok === false) throw new Error(`store write failed for ${key}`);
  }
  async delete(key: string): Promise<void> {
    await this.kv.delete(key);
  }
  async close(): Promise<void> {
    await this.kv.disconnect().catch(() => undefined);
  }
}

/**
 * `spec`: undefined → file under the data dir; `memory` → in-process only (tests, sandbox);
 * `file:/path` or a plain path → that file.
 */
export async function openStore(spec: string | undefined): Promise<Store> {
  if (spec === 'memory') return new KeyvStore(new Keyv({ namespace: 'crm' }), 'memory (not persisted)');
  if (spec && /^rediss?:\/\//.test(spec)) {
    throw new Error('CRM_MCP_STORE: Redis stores are not supported yet; use a file path');
  }
  const file = spec ? spec.replace(/^file:(\/\/)?/, '') : join(defaultDataDir(), 'store.json');
  const kv = new Keyv({ store: new DurableFileStore(file) as unknown as Map<string, unknown>, namespace: 'crm' });
  return new KeyvStore(kv, `file ${file}`);
}
