/**
 * The HTTP harness both CRM emulators run on: a real node:http server on 127.0.0.1 that records every
 * request it receives and can be scripted to misbehave (faults), so tests can assert on the wire
 * traffic instead of on mocks.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { registerEmulatorOrigin, unregisterEmulatorOrigin } from './origins.js';

/** One request as the emulator saw it. `status` is 0 when the connection was dropped or never answered. */
export interface RecordedRequest {
  readonly method: string;
  /** Path without the query string, e.g. `/api/v4/leads`. */
  readonly path: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  status: number;
  /** True when the emulator's handler ran (state may have changed), false for faults that refuse before processing. */
  processed: boolean;
  /** Free-form tag set by the emulator (e.g. `rate_limited`, `blocked`, `QUERY_LIMIT_EXCEEDED`). */
  tag?: string;
  readonly at: number;
}

export type Fault =
  /** Answer with this status/body without processing the request (rate limit, 5xx from a gateway...). */
  | { kind: 'status'; status: number; body?: string; contentType?: string; headers?: Record<string, string> }
  /**
   * Answer without processing, with a body built from the request: a CRM (or a proxy in front of it) that
   * echoes what it received (the Authorization header, the URL with a webhook secret) into its error body.
   */
  | {
      kind: 'echo';
      respond: (req: { headers: IncomingHttpHeaders; url: string; body: string }) => { status: number; body: unknown; headers?: Record<string, string> };
    }
  /** Accept the request and never answer (until the emulator closes or the client gives up). */
  | { kind: 'timeout' }
  /** Drop the connection before processing. */
  | { kind: 'reset-before' }
  /** Process the request (state changes!) and then drop the connection: the classic lost response. */
  | { kind: 'reset-after' }
  /** Process, then answer 200 with a body that is not valid JSON. */
  | { kind: 'malformed' }
  /** Process, then answer with the first half of the real body. */
  | { kind: 'truncated' }
  /** Process, then answer 204 with no body. */
  | { kind: 'no-content' }
  /** Process, then answer after `ms` milliseconds. */
  | { kind: 'slow'; ms: number };

export interface FaultMatch {
  method?: string;
  /** Substring of, or regular expression over, the request path. */
  path?: string | RegExp;
}

interface FaultRule {
  fault: Fault;
  remaining: number;
  match?: FaultMatch;
}

export interface EmuRequest {
  readonly method: string;
  readonly url: URL;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
  readonly record: RecordedRequest;
}

export interface EmuResponse {
  status: number;
  headers?: Record<string, string>;
  /** A string or Buffer is sent as is; anything else is JSON-encoded. Omit for an empty body. */
  body?: unknown;
  /** A special action instead of a normal answer (used by emulators for their own scripted behaviour). */
  drop?: boolean;
}

export type EmuHandler = (req: EmuRequest) => EmuResponse | Promise<EmuResponse>;

export interface HarnessOptions {
  host?: string;
  port?: number;
  /** Largest accepted body; a larger one gets 413. */
  maxBodyBytes?: number;
}

export class EmulatorHarness {
  readonly requests: RecordedRequest[] = [];
  private readonly rules: FaultRule[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  private server: Server | undefined;
  private origin = '';

  constructor(
    private readonly handler: EmuHandler,
    private readonly options: HarnessOptions = {},
  ) {}

  /** The origin, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    if (!this.origin) throw new Error('emulator not started');
    return this.origin;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.onRequest(req.method ?? 'GET', req.url ?? '/', req.headers, req, res));
    server.keepAliveTimeout = 5_000;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    const addr = server.address() as AddressInfo;
    this.origin = `http://${addr.address}:${addr.port}`;
    registerEmulatorOrigin(this.origin);
    return this.origin;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (this.origin) unregisterEmulatorOrigin(this.origin);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Script a fault for the next `times` requests that match. */
  injectFault(fault: Fault, options: { times?: number; match?: FaultMatch } = {}): void {
    this.rules.push({ fault, remaining: options.times ?? 1, match: options.match });
  }

  clearFaults(): void {
    this.rules.length = 0;
  }

  /** Forget the recorded traffic (state is kept). */
  resetLog(): void {
    this.requests.length = 0;
  }

  private takeFault(method: string, path: string): Fault | undefined {
    const i = this.rules.findIndex((r) => r.remaining > 0 && matches(r.match, method, path));
    if (i < 0) return undefined;
    const rule = this.rules[i]!;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.rules.splice(i, 1);
    return rule.fault;
  }

  private async onRequest(method: string, rawUrl: string, headers: IncomingHttpHeaders, req: NodeJS.ReadableStream, res: ServerResponse): Promise<void> {
    let body: string;
    try {
      body = await readBody(req, this.options.maxBodyBytes ?? 8 * 1024 * 1024);
    } catch {
      res.writeHead(413, { 'content-type': 'text/plain' }).end('Payload Too Large');
      return;
    }
    const url = new URL(rawUrl, this.origin || 'http://127.0.0.1');
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      url: rawUrl,
      headers,
      body,
      status: 0,
      processed: false,
      at: Date.now(),
    };
    this.requests.push(record);

    const fault = this.takeFault(method, url.pathname);
    if (fault?.kind === 'status') {
      record.status = fault.status;
      record.tag = 'fault';
      res.writeHead(fault.status, { 'content-type': fault.contentType ?? 'application/json', ...fault.headers });
      res.end(fault.body ?? '');
      return;
    }
    if (fault?.kind === 'echo') {
      const out = fault.respond({ headers, url: rawUrl, body });
      record.status = out.status;
      record.tag = 'fault';
      res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers });
      res.end(typeof out.body === 'string' ? out.body : JSON.stringify(out.body));
      return;
    }
    if (fault?.kind === 'timeout') {
      record.tag = 'fault';
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    if (fault?.kind === 'reset-before') {
      record.tag = 'fault';
      res.socket?.destroy();
      return;
    }

    let out: EmuResponse;
    try {
      record.processed = true;
      out = await this.handler({ method, url, path: url.pathname, headers, rawBody: body, record });
    } catch (err) {
      // An emulator bug must be loud in tests, not a silent hang.
      out = { status: 500, body: { title: 'EmulatorError', status: 500, detail: String((err as Error)?.stack ?? err) } };
    }
    if (out.drop) {
      res.socket?.destroy();
      return;
    }
    let payload: string | Buffer =
      out.body === undefined ? '' : typeof out.body === 'string' || Buffer.isBuffer(out.body) ? out.body : JSON.stringify(out.body);
    let status = out.status;
    const outHeaders: Record<string, string> = { ...out.headers };

    switch (fault?.kind) {
      case 'reset-after':
        record.tag = 'fault';
        res.socket?.destroy();
        return;
      case 'malformed':
        record.tag = 'fault';
        status = 200;
        payload = '{"_embedded": {"leads": [ {"id": 1,, oops';
        break;
      case 'truncated':
        record.tag = 'fault';
        payload = payload.slice(0, Math.floor(payload.length / 2));
        break;
      case 'no-content':
        record.tag = 'fault';
        status = 204;
        payload = '';
        break;
      case 'slow':
        record.tag = 'fault';
        this.hanging.add(res);
        await new Promise((r) => setTimeout(r, fault.ms));
        this.hanging.delete(res);
        if (res.destroyed) return;
        break;
      default:
        break;
    }
    record.status = status;
    if (status === 204 || status === 304) {
      res.writeHead(status, outHeaders).end();
      return;
    }
    res.writeHead(status, { 'content-length': String(Buffer.byteLength(payload)), ...outHeaders });
    res.end(payload);
  }
}

function matches(m: FaultMatch | undefined, method: string, path: string): boolean {
  if (!m) return true;
  if (m.method && m.method.toUpperCase() !== method.toUpperCase()) return false;
  if (m.path !== undefined) {
    if (typeof m.path === 'string' ? !path.includes(m.path) : !m.path.test(path)) return false;
  }
  return true;
}

function readBody(req: NodeJS.ReadableStream, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('too large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A small deterministic PRNG (mulberry32) so demo data is the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Parses PHP-style bracket parameters (`filter[id][]=1`, `filter[id][0]=1`, `filter[created_at][from]=…`,
 * `fields[PHONE][0][VALUE]=…`) into nested objects; numeric-keyed objects become arrays.
 */
export function parsePhpQuery(params: Iterable<[string, string]>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [rawKey, value] of params) {
    const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(rawKey);
    if (!m) {
      root[rawKey] = value;
      continue;
    }
    const keys = [m[1]!, ...[...m[2]!.matchAll(/\[([^\]]*)\]/g)].map((x) => x[1]!)];
    let node: Record<string, unknown> = root;
    for (let i = 0; i < keys.length; i++) {
      let key = keys[i]!;
      const last = i === keys.length - 1;
      if (key === '') key = String(Object.keys(node).length);
      if (last) node[key] = value;
      else {
        const next = node[key];
        if (typeof next !== 'object' || next === null) node[key] = {};
        node = node[key] as Record<string, unknown>;
      }
    }
  }
  return arrayify(root) as Record<string, unknown>;
}

function arrayify(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  for (const k of keys) o[k] = arrayify(o[k]);
  if (keys.length > 0 && keys.every((k, i) => k === String(i))) return keys.map((k) => o[k]);
  return o;
}
