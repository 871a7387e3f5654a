/**
 * Shared test plumbing: emulators on port 0, a real MCP Client (SDK v2) connected in-process, traffic helpers.
 * In-process pairs speak the 2025 era (the SDK has no in-memory 2026-07-28 entry); test/protocol-eras.test.ts
 * covers 2026-07-28 over stdio and HTTP.
 */
import { Client, InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { Writable } from 'node:stream';
import type { KommoConnection } from '../../src/crms/kommo/connection.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import { buildKommoProvider, type KommoProvider } from '../../src/crms/kommo/provider.js';
import type { RecordedRequest } from '../../src/sandbox/harness.js';
import { startKommoEmulator, type KommoEmulator, type KommoEmulatorOptions } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { openStore, type Store } from '../../src/store/store.js';
import { createLogger, setLogger } from '../../src/util/log.js';

export const READ_ONLY: PolicyFlags = { allowWrites: false, safeMode: true, allowDelete: false, allowAdmin: false };
export const CREATE_ONLY: PolicyFlags = { allowWrites: true, safeMode: true, allowDelete: false, allowAdmin: false };
export const WRITE: PolicyFlags = { allowWrites: true, safeMode: false, allowDelete: false, allowAdmin: false };
export const FULL: PolicyFlags = { allowWrites: true, safeMode: false, allowDelete: true, allowAdmin: false };
/** Writes plus admin (configuration and outbound messages), without deletes. */
export const ADMIN: PolicyFlags = { allowWrites: true, safeMode: false, allowDelete: false, allowAdmin: true };
/** Everything on. */
export const ALL: PolicyFlags = { allowWrites: true, safeMode: false, allowDelete: true, allowAdmin: true };

/** Captures log lines so tests can scan them for secrets. */
export const logLines: string[] = [];
setLogger(
  createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk));
        cb();
      },
    }),
  }),
);

export async function startKommo(opts: KommoEmulatorOptions = {}): Promise<KommoEmulator> {
  return startKommoEmulator(opts);
}

export interface Connected {
  client: Client;
  provider: KommoProvider;
  store: Store;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  flags?: PolicyFlags;
  connection?: Partial<KommoConnection>;
  store?: Store;
  timeoutMs?: number;
  maxRetries?: number;
  /** Replaces the in-process limiter (shared Redis limiters in multi-instance tests). */
  limiter?: import('../../src/http/limiter.js').RateLimiter;
}

export async function connectKommo(emu: KommoEmulator, o: ConnectOptions = {}): Promise<Connected> {
  const conn: KommoConnection = {
    name: 'kommo',
    provider: 'kommo',
    baseUrl: emu.url,
    accessToken: o.connection?.oauth ? undefined : emu.createLongLivedToken(),
    policy: o.flags ?? READ_ONLY,
    ...o.connection,
  };
  const store = o.store ?? (await openStore('memory'));
  const provider = buildKommoProvider(conn, { store, limiter: o.limiter, timeoutMs: o.timeoutMs ?? 3000, maxRetries: o.maxRetries ?? 3, backoffBaseMs: 20 });
  await provider.init();
  const server = createServer({ config: { tools: {} }, providers: [provider] });
  const client = new Client({ name: 'test', version: '0.0.0' });
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(st), client.connect(ct)]);
  return {
    client,
    provider,
    store,
    call: (name, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

/** Requests that would change data (anything but GET) to the CRM API. */
export function writesTo(requests: RecordedRequest[]): RecordedRequest[] {
  return requests.filter((r) => r.method !== 'GET' && r.path.startsWith('/api/v4/'));
}

/**
 * A tool result as either SDK generation types it (v2 widened `structuredContent` to unknown), so test files
 * still on the v1 client can use these helpers too.
 */
export interface AnyToolResult {
  content?: Array<{ type: string; text?: string }>;
  structuredContent?: unknown;
  isError?: boolean;
}

export function text(res: AnyToolResult): string {
  return (res.content ?? []).map((c) => (c.type === 'text' ? (c.text ?? '') : '')).join('\n');
}

export function structured<T = Record<string, unknown>>(res: AnyToolResult): T {
  if (res.isError) throw new Error(`tool failed: ${text(res)}`);
  return res.structuredContent as T;
}

export function errorOf(res: AnyToolResult): { code: string; message: string; retryable: boolean } {
  if (!res.isError) throw new Error(`expected an error, got ${text(res)}`);
  const json = text(res).slice(text(res).indexOf('\n') + 1);
  return (JSON.parse(json) as { error: { code: string; message: string; retryable: boolean } }).error;
}

// ---------------------------------------------------------------- Bitrix24

import type { BitrixConnection } from '../../src/crms/bitrix24/connection.js';
import { buildBitrixProvider, type BitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { startBitrixEmulator, type BitrixEmulator, type BitrixEmulatorOptions } from '../../src/sandbox/bitrix24/index.js';
import { runningEmulatorOrigins } from '../../src/sandbox/origins.js';

export async function startBitrix(opts: BitrixEmulatorOptions = {}): Promise<BitrixEmulator> {
  return startBitrixEmulator(opts);
}

export interface ConnectedBitrix extends Omit<Connected, 'provider'> {
  provider: BitrixProvider;
}

export async function connectBitrix(
  emu: BitrixEmulator,
  o: { flags?: PolicyFlags; connection?: Partial<BitrixConnection>; store?: Store; maxRetries?: number; timeoutMs?: number } = {},
): Promise<ConnectedBitrix> {
  const conn: BitrixConnection = {
    name: 'bitrix24',
    provider: 'bitrix24',
    webhookUrl: o.connection?.oauth ? undefined : emu.webhookUrl,
    plan: 'standard',
    policy: o.flags ?? READ_ONLY,
    ...o.connection,
  };
  const store = o.store ?? (await openStore('memory'));
  // A portal move between two emulators this test started may carry the webhook secret, as under --sandbox.
  const trustedOrigins = runningEmulatorOrigins();
  const provider = buildBitrixProvider(conn, { store, timeoutMs: o.timeoutMs ?? 3000, maxRetries: o.maxRetries ?? 3, backoffBaseMs: 20, trustedOrigins });
  await provider.init();
  const server = createServer({ config: { tools: {} }, providers: [provider] });
  const client = new Client({ name: 'test', version: '0.0.0' });
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(st), client.connect(ct)]);
  return {
    client,
    provider,
    store,
    call: (name, args = {}) => client.callTool({ name, arguments: args }) as Promise<CallToolResult>,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

/** Bitrix REST calls (method names, lower-cased, without .json) the emulator received, batch commands excluded. */
export function bitrixMethods(requests: RecordedRequest[]): string[] {
  return requests
    .filter((r) => r.path.includes('/rest/'))
    .map((r) =>
      r.path
        .replace(/^.*\/rest\/(\d+\/[^/]+\/)?/, '')
        .replace(/\.json$|\/$/g, '')
        .toLowerCase(),
    );
}
