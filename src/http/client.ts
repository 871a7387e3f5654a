/**
 * The one request pipeline every provider uses:
 *   grant check → origin check → rate limiter → auth → send (timeout) → error mapping → retry decision.
 * A refused request sends nothing. The credential is attached only to requests for the configured origin.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Effect, Grant, SafeUpdate } from '../policy/policy.js';
import { CrmError } from '../domain/errors.js';
import type { RateLimiter } from './limiter.js';
import { sleep } from './limiter.js';
import { backoffMs, shouldRetry, type OperationKind } from './retry.js';
import { redact } from '../util/redact.js';
import { log } from '../util/log.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export type QueryValue = string | number | boolean | undefined | null | Array<string | number>;

export interface RequestSpec {
  method: HttpMethod;
  /** Path relative to the origin, beginning with `/`. */
  path: string;
  query?: Record<string, QueryValue> | URLSearchParams;
  /** JSON body. */
  body?: unknown;
  /** Form body (application/x-www-form-urlencoded), used by some Bitrix24 clients. */
  form?: URLSearchParams;
  /** How safe a repeat is. */
  op: OperationKind;
  /** What this call may send. */
  grant: Grant;
  /** Override the adapter's classification (a provider that knows better, e.g. Bitrix batch). */
  effect?: Effect;
  signal?: AbortSignal;
  /** Extra headers (never authorization: the auth provider owns it). */
  headers?: Record<string, string>;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface CrmResponse<T = unknown> {
  status: number;
  data: T | undefined;
  headers: Record<string, string | string[] | undefined>;
  requestId?: string;
}

/** What a provider plugs into the pipeline. */
export interface ProviderAdapter {
  readonly name: string;
  /** Effect of an outgoing request, decided from the wire shape alone (the query as it is sent, too). May throw a refusal. */
  classify(method: HttpMethod, path: string, body: unknown, query: URLSearchParams): Effect;
  /**
   * The narrow update this request is (policy.ts SafeUpdate), decided from the same wire shape, or undefined
   * when it is anything else: only a request of exactly that shape passes a grant for that narrow update.
   */
  safeUpdate?(method: HttpMethod, path: string, body: unknown, query: URLSearchParams): SafeUpdate | undefined;
  /** Paths the credential may be sent to (e.g. `/api/v4/` on Kommo). */
  pathAllowed(path: string): boolean;
  /** Maps a response to an error, or undefined when it is a success. Sees 2xx too (Bitrix errors may come with 200). */
  mapError(res: RawResponse, parsed: unknown): CrmError | undefined;
  /** Request id for error reports. */
  requestId?(res: RawResponse): string | undefined;
}

/** Supplies credentials. `onUnauthorized` returns true when a fresh credential is available (one retry). */
export interface AuthProvider {
  headers(signal?: AbortSignal): Promise<Record<string, string>>;
  /** Adds credentials carried as parameters (Bitrix OAuth `auth`); default none. */
  query?(signal?: AbortSignal): Promise<Record<string, string>>;
  /** `used` is what the failed request carried, so a credential refreshed meanwhile is not refreshed again. */
  onUnauthorized(used: { headers: Record<string, string>; query: Record<string, string> }, err: CrmError): Promise<boolean>;
}

export interface HttpEvent {
  provider: string;
  method: HttpMethod;
  path: string;
  status: number;
  ms: number;
  attempt: number;
  error?: string;
  /** Time this attempt waited in the rate limiter before it was sent. */
  limiterWaitMs: number;
  /** The CRM's request id, when its response carries one. */
  requestId?: string;
}

const tap = new AsyncLocalStorage<(e: HttpEvent) => void>();

/**
 * Runs `fn` with `observer` seeing every attempt sent on its behalf, whichever provider sends it (the audit
 * log collects a tool call's CRM request ids this way without threading a callback through every provider).
 */
export function observeRequests<T>(observer: (e: HttpEvent) => void, fn: () => Promise<T>): Promise<T> {
  return tap.run(observer, fn);
}

export interface HttpCoreOptions {
  origin: string;
  adapter: ProviderAdapter;
  auth: AuthProvider;
  limiter: RateLimiter;
  timeoutMs: number;
  maxRetries: number;
  logger?: Logger;
  dispatcher?: Dispatcher;
  /** Called after every attempt (metrics, tests). */
  onEvent?: (e: HttpEvent) => void;
  /** Backoff base for retries (tests shorten it). */
  backoffBaseMs?: number;
}

/** Headers that ask a server to run another HTTP method than the request line's (X-HTTP-Method-Override and kin). */
const METHOD_OVERRIDE = /^x-(http-method(-override)?|method-override)$/i;

/** The longest server-requested wait (Retry-After) a call sits through before giving up. */
const MAX_WAIT_MS = 30_000;

/** undici is loaded on the first CRM request, not at start-up (start-up only needs to answer initialize). */
let undici: Promise<{ request: typeof import('undici').request; agent: Dispatcher }> | undefined;
export function loadUndici(): Promise<{ request: typeof import('undici').request; agent: Dispatcher }> {
  undici ??= import('undici').then((u) => ({ request: u.request, agent: new u.Agent({ connections: 16, keepAliveTimeout: 10_000, pipelining: 1 }) }));
  return undici;
}

export class HttpCore {
  private readonly currentOrigin: string;
  constructor(private readonly o: HttpCoreOptions) {
    this.currentOrigin = new URL(o.origin).origin;
  }

  /** The given logger, else the process logger (read late, so a logger set after start-up is used). */
  private get logger(): Logger {
    return this.o.logger ?? log();
  }

  /** The one origin credentials are sent to. */
  get origin(): string {
    return this.currentOrigin;
  }

  /**
   * A core that sends to `origin` instead (a Bitrix24 portal that answered "moved"; the provider first decides
   * whether the move may carry the credential). It shares the auth, limiter and options. This core keeps the
   * configured origin: a move is used for the one request that met it and is never adopted silently.
   */
  relocated(origin: string): HttpCore {
    return new HttpCore({ ...this.o, origin: new URL(origin).origin });
  }

  get adapter(): ProviderAdapter {
    return this.o.adapter;
  }

  /** Builds the absolute URL for a spec, refusing anything that would leave the configured origin. */
  buildUrl(path: string, query?: RequestSpec['query']): URL {
    if (!path.startsWith('/') || path.startsWith('//')) {
      throw new CrmError({ code: 'policy_denied', message: `Refused: request path must be relative to the account (got "${path}")` });
    }
    const url = new URL(path, this.origin);
    if (url.origin !== this.origin) {
      throw new CrmError({ code: 'policy_denied', message: 'Refused: the request would leave the configured CRM account origin' });
    }
    if (!this.o.adapter.pathAllowed(url.pathname)) {
      throw new CrmError({ code: 'policy_denied', message: `Refused: ${url.pathname} is not an API path this connection may call` });
    }
    if (query) {
      const entries = query instanceof URLSearchParams ? [...query.entries()] : flattenQuery(query);
      for (const [k, v] of entries) url.searchParams.append(k, v);
    }
    return url;
  }

  async request<T = unknown>(spec: RequestSpec): Promise<CrmResponse<T>> {
    const url = this.buildUrl(spec.path, spec.query);
    // A method-override header would make the CRM run another method than the one classified (PHP frameworks honour them).
    const override = Object.keys(spec.headers ?? {}).find((h) => METHOD_OVERRIDE.test(h.trim()));
    if (override) {
      throw new CrmError({ code: 'policy_denied', message: `Refused: the ${override} header would change the HTTP method the CRM runs; nothing was sent` });
    }
    const body = spec.body ?? spec.form;
    const effect = spec.effect ?? this.o.adapter.classify(spec.method, url.pathname, body, url.searchParams);
    // A grant for a narrow update (CRM_SAFE_UPDATES) admits an update only of exactly that shape, read from the wire.
    const narrow = spec.grant.narrowUpdates();
    const kind =
      !spec.grant.has(effect) && effect === 'update' && narrow.length
        ? this.o.adapter.safeUpdate?.(spec.method, url.pathname, body, url.searchParams)
        : undefined;
    if (!spec.grant.admits(effect, kind)) {
      this.logger.warn({ provider: this.o.adapter.name, method: spec.method, path: url.pathname, effect }, 'policy refused an outgoing request');
      const only = narrow.length ? ` beyond ${narrow.map((k) => `a ${k} update (CRM_SAFE_UPDATES=${k})`).join(' or ')}; nothing was sent` : '';
      throw new CrmError({
        code: 'policy_denied',
        message: `Refused by policy: this call may not send a ${effect} request (${spec.method} ${url.pathname})${only}`,
      });
    }

    // Serialised once, before anything is sent: a body that cannot be serialised is the caller's error, not a
    // network failure that "may have reached the CRM".
    const payload = serialiseBody(spec);

    let attempt = 0;
    let reauthed = false;
    for (;;) {
      const authHeaders = await this.o.auth.headers(spec.signal);
      const authQuery = (await this.o.auth.query?.(spec.signal)) ?? {};
      const sendUrl = new URL(url);
      for (const [k, v] of Object.entries(authQuery)) sendUrl.searchParams.set(k, v);
      const queued = Date.now();
      const release = await this.o.limiter.acquire(spec.signal);
      const started = Date.now();
      const waited = started - queued;
      let res: RawResponse;
      try {
        res = await this.send(spec, sendUrl, authHeaders, payload).finally(release);
      } catch (err) {
        const e = this.networkError(err, spec);
        this.emit(spec, url, 0, started, attempt, waited, undefined, e.code);
        if (shouldRetry(spec.op, { code: e.code, notProcessed: !e.ambiguous, transient: e.retryable }, attempt, this.o.maxRetries)) {
          await sleep(backoffMs(attempt, undefined, { baseMs: this.o.backoffBaseMs }), spec.signal);
          attempt += 1;
          continue;
        }
        throw e;
      }
      this.emit(spec, url, res.status, started, attempt, waited, this.o.adapter.requestId?.(res));

      let parsed: unknown;
      let parseFailed = false;
      if (res.text.length > 0) {
        try {
          parsed = JSON.parse(res.text);
        } catch {
          parseFailed = true;
        }
      }
      const mapped = this.o.adapter.mapError(res, parsed);
      const requestId = this.o.adapter.requestId?.(res);
      if (mapped) {
        if (mapped.code === 'auth' && !reauthed) {
          reauthed = true;
          if (await this.o.auth.onUnauthorized({ headers: authHeaders, query: authQuery }, mapped)) continue;
        }
        const notProcessed = mapped.code === 'rate_limited' || mapped.status === 503;
        // A wait longer than MAX_WAIT_MS is the caller's decision: fail now with retry_after instead of hanging.
        const tooLong = (mapped.retryAfterMs ?? 0) > MAX_WAIT_MS;
        if (!tooLong && shouldRetry(spec.op, { code: mapped.code, notProcessed, transient: mapped.retryable }, attempt, this.o.maxRetries)) {
          this.logger.debug({ provider: this.o.adapter.name, status: res.status, attempt }, 'retrying');
          await sleep(backoffMs(attempt, mapped.retryAfterMs, { baseMs: this.o.backoffBaseMs }), spec.signal);
          attempt += 1;
          continue;
        }
        throw mapped.retryable && spec.op === 'create' && !notProcessed ? withAmbiguity(mapped) : mapped;
      }
      if (parseFailed) {
        const e = new CrmError({
          code: 'upstream',
          message: `The CRM answered ${res.status} with a body that is not valid JSON (${res.text.length} bytes). Try again; if it persists the CRM may be having trouble.`,
          retryable: true,
          status: res.status,
          requestId,
          ambiguous: spec.op !== 'read',
        });
        if (shouldRetry(spec.op, { code: 'upstream', notProcessed: false, transient: true }, attempt, this.o.maxRetries)) {
          await sleep(backoffMs(attempt, undefined, { baseMs: this.o.backoffBaseMs }), spec.signal);
          attempt += 1;
          continue;
        }
        throw e;
      }
      return { status: res.status, data: parsed as T | undefined, headers: res.headers, requestId };
    }
  }

  private async send(spec: RequestSpec, url: URL, authHeaders: Record<string, string>, payload: Payload): Promise<RawResponse> {
    const headers: Record<string, string> = { ...spec.headers, ...authHeaders };
    this.logger.debug({ provider: this.o.adapter.name, method: spec.method, url: redact(url.toString()) }, 'crm request');
    return sendOnce(url, { method: spec.method, headers, payload, timeoutMs: this.o.timeoutMs, signal: spec.signal, dispatcher: this.o.dispatcher });
  }

  private networkError(err: unknown, spec: RequestSpec): CrmError {
    if (err instanceof CrmError) return err;
    if (spec.signal?.aborted) {
      return new CrmError({ code: 'network', message: 'The request was cancelled.', retryable: false, ambiguous: spec.op !== 'read' });
    }
    const { timedOut, neverSent, code: failure } = sendFailure(err);
    const what = timedOut
      ? `The CRM did not answer within ${this.o.timeoutMs} ms`
      : neverSent
        ? `Could not connect to the CRM (${failure})`
        : `The connection to the CRM failed (${failure})`;
    const ambiguous = !neverSent && spec.op !== 'read';
    return new CrmError({
      code: 'network',
      message: `${what}. ${neverSent ? 'Check the account address and network.' : ambiguous ? AMBIGUOUS_HINT : 'Try again later.'}`,
      retryable: true,
      ambiguous: !neverSent && spec.op !== 'read',
      cause: undefined,
    });
  }

  private emit(spec: RequestSpec, url: URL, status: number, started: number, attempt: number, limiterWaitMs: number, requestId?: string, error?: string): void {
    const e: HttpEvent = {
      provider: this.o.adapter.name,
      method: spec.method,
      path: url.pathname,
      status,
      ms: Date.now() - started,
      attempt,
      limiterWaitMs,
      error,
      ...(requestId ? { requestId } : {}),
    };
    this.o.onEvent?.(e);
    tap.getStore()?.(e);
  }
}

/** A serialised request body and its content type. */
export type Payload = { contentType: string; body: string } | undefined;

/**
 * One HTTP exchange, as every outgoing request makes it (HttpCore, and the OAuth token request in token.ts):
 * on the shared keep-alive agent, bounded by `timeoutMs` (and the caller's signal), the body read whole.
 */
export async function sendOnce(
  url: URL,
  o: { method: HttpMethod; headers?: Record<string, string>; payload?: Payload; timeoutMs: number; signal?: AbortSignal; dispatcher?: Dispatcher },
): Promise<RawResponse> {
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'crm-mcp', ...o.headers };
  if (o.payload) headers['content-type'] = o.payload.contentType;
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const { request, agent } = await loadUndici();
  const res = await request(url, { method: o.method, headers, body: o.payload?.body, signal, dispatcher: o.dispatcher ?? agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers as RawResponse['headers'], text };
}

/** What a failed `sendOnce` says about the request: timed out, or never left this machine (so a repeat is harmless). */
export function sendFailure(err: unknown): { timedOut: boolean; neverSent: boolean; code: string } {
  const e = err as { name?: string; code?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const timedOut = e?.name === 'TimeoutError' || e?.name === 'AbortError' || /timeout/i.test(code ?? '');
  // Connection refused / DNS failure: nothing reached the server, so even a create may be repeated.
  const neverSent = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
  return { timedOut, neverSent, code: code ?? e?.name ?? 'error' };
}

function serialiseBody(spec: RequestSpec): Payload {
  if (spec.form) return { contentType: 'application/x-www-form-urlencoded', body: spec.form.toString() };
  if (spec.body === undefined) return undefined;
  try {
    return { contentType: 'application/json', body: JSON.stringify(spec.body) };
  } catch (err) {
    throw new CrmError({ code: 'validation', message: `The request body cannot be sent as JSON (${(err as Error).name}). Nothing was sent.` });
  }
}

const AMBIGUOUS_HINT = 'The request may have reached the CRM, so the record may exist: search for it before creating it again.';

function withAmbiguity(e: CrmError): CrmError {
  return new CrmError({
    code: e.code,
    message: `${e.message} ${AMBIGUOUS_HINT}`,
    retryable: e.retryable,
    status: e.status,
    requestId: e.requestId,
    details: e.details,
    ambiguous: true,
    retryAfterMs: e.retryAfterMs,
  });
}

/** PHP-style query flattening: arrays become `key[]=v` unless the key already ends with a bracket index. */
export function flattenQuery(q: Record<string, QueryValue>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const item of v) out.push([`${k}[]`, String(item)]);
    else out.push([k, String(v)]);
  }
  return out;
}
