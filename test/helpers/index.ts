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
import { createServer, type ServerDeps } from '../../src/server.js';
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

/** An SDK client connected in-process to one server. */
export interface Linked {
  client: Client;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  /** Closes the client, then the server. */
  close(): Promise<void>;
}

/** A client (named `name`, for audit entries) linked in-process to a server built from `deps`. */
export async function linkClient(deps: ServerDeps, name = 'test', version = '0.0.0'): Promise<Linked> {
  const server = createServer(deps);
  const client = new Client({ name, version });
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(st), client.connect(ct)]);
  return {
    client,
    call: (tool, args = {}) => client.callTool({ name: tool, arguments: args }) as Promise<CallToolResult>,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

/** Closes what a test opened, in the order given; what never opened (a failed beforeAll) is skipped. */
export async function closeAll(...xs: Array<{ close(): Promise<unknown> } | undefined>): Promise<void> {
  for (const x of xs) await x?.close();
}

export interface Connected extends Linked {
  provider: KommoProvider;
  store: Store;
}

export interface ConnectOptions {
  flags?: PolicyFlags;
  connection?: Partial<KommoConnection>;
  store?: Store;
  timeoutMs?: number;
  maxRetries?: number;
  backoffBaseMs?: number;
  /** Replaces the in-process limiter (shared Redis limiters in multi-instance tests). */
  limiter?: import('../../src/http/limiter.js').RateLimiter;
}

/** A Kommo provider on the emulator, signed in with a long-lived token (or `connection.oauth`), initialised. */
export async function kommoProvider(emu: KommoEmulator, o: ConnectOptions = {}): Promise<KommoProvider> {
  const conn: KommoConnection = {
    name: 'kommo',
    provider: 'kommo',
    baseUrl: emu.url,
    accessToken: o.connection?.oauth ? undefined : emu.createLongLivedToken(),
    policy: o.flags ?? READ_ONLY,
    ...o.connection,
  };
  const store = o.store ?? (await openStore('memory'));
  const provider = buildKommoProvider(conn, {
    store,
    limiter: o.limiter,
    timeoutMs: o.timeoutMs ?? 3000,
    maxRetries: o.maxRetries ?? 3,
    backoffBaseMs: o.backoffBaseMs ?? 20,
  });
  await provider.init();
  return provider;
}

export async function connectKommo(emu: KommoEmulator, o: ConnectOptions = {}): Promise<Connected> {
  const store = o.store ?? (await openStore('memory'));
  const provider = await kommoProvider(emu, { ...o, store });
  return { ...(await linkClient({ config: { tools: {} }, providers: [provider] })), provider, store };
}

/** A Kommo emulator (no rate limit unless `emulator` says) with a client connected to it. */
export async function kommoSession(o: ConnectOptions = {}, emulator: KommoEmulatorOptions = {}): Promise<{ emu: KommoEmulator; c: Connected }> {
  const emu = await startKommo({ rateLimit: false, ...emulator });
  return { emu, c: await connectKommo(emu, o) };
}

/** Both emulators, neither rate-limited. */
export async function startBoth(): Promise<{ kommo: KommoEmulator; bitrix: BitrixEmulator }> {
  return { kommo: await startKommo({ rateLimit: false }), bitrix: await startBitrix({ rateLimit: false }) };
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

export interface ConnectedBitrix extends Linked {
  provider: BitrixProvider;
  store: Store;
}

export interface ConnectBitrixOptions extends Omit<ConnectOptions, 'connection'> {
  connection?: Partial<BitrixConnection>;
}

export async function connectBitrix(emu: BitrixEmulator, o: ConnectBitrixOptions = {}): Promise<ConnectedBitrix> {
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
  const provider = buildBitrixProvider(conn, {
    store,
    limiter: o.limiter,
    timeoutMs: o.timeoutMs ?? 3000,
    maxRetries: o.maxRetries ?? 3,
    backoffBaseMs: o.backoffBaseMs ?? 20,
    trustedOrigins,
  });
  await provider.init();
  return { ...(await linkClient({ config: { tools: {} }, providers: [provider] })), provider, store };
}

/** A Bitrix24 emulator (no rate limit unless `emulator` says) with a client connected to it. */
export async function bitrixSession(o: ConnectBitrixOptions = {}, emulator: BitrixEmulatorOptions = {}): Promise<{ emu: BitrixEmulator; c: ConnectedBitrix }> {
  const emu = await startBitrix({ rateLimit: false, ...emulator });
  return { emu, c: await connectBitrix(emu, o) };
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
