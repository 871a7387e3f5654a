/**
 * Typed calls to Bitrix24 through the HTTP core: one REST method (POST JSON, the way the official SDK does),
 * one `batch` of up to 50 commands, the per-method operating budget (§5) and portal moves (§1.1). Every
 * answer read here is checked against the lenient schemas (schemas.ts) before anything maps it.
 */
import type { Logger } from 'pino';
import type { BitrixConnection } from './connection.js';
import type { HttpCore } from '../../http/client.js';
import { CrmError } from '../../domain/errors.js';
import type { OperationKind } from '../../http/retry.js';
import type { Store } from '../../store/store.js';
import type { CallContext, PlannedRequest } from '../types.js';
import { classifyBatch, classifyCall, classifyMethod, normalizeMethod } from './methods.js';
import { LoadTracker } from './readahead.js';
import { decidePortalMove, isRedirect, portalMoveKey, redirectTarget, withoutLocation, type PortalMove } from './relocation.js';
import { BBatch, parseBitrix } from './schemas.js';

export interface CallResult<T = unknown> {
  result: T;
  next?: number;
  total?: number;
}

export interface BatchResult {
  result: Record<string, unknown>;
  errors: Record<string, { error: string; error_description: string }>;
  total: Record<string, number>;
  next: Record<string, number>;
}

/** How a call may be retried, from its effect: a batch of writes is never retried as if it were a read (a create inside could run twice). */
function operationOf(method: string, params: Record<string, unknown>): OperationKind {
  const effect = method === 'batch' ? classifyBatch(params.cmd).effect : classifyCall(method, params);
  return effect === 'read' ? 'read' : effect === 'create' || method === 'batch' ? 'create' : 'idempotent';
}

export class BitrixApi {
  /** What each method's calls cost on this portal (`time.processing`/`operating`), to size read-ahead. */
  readonly load = new LoadTracker();
  /** Per-method operating budget (§5): the last `time.operating_reset_at` seen, and blocks after OPERATION_TIME_LIMIT. */
  private readonly operating = new Map<string, { resetAt?: number; blockedUntil?: number }>();
  /** The move this provider last followed (doctor shows it), recorded in the store for `crm-mcp doctor` too. */
  pendingMove: PortalMove | undefined;
  /**
   * The `auth_connector` offline events were bound with (events-offline.ts): sent with every write, so the
   * server's own changes do not come back as offline events (b24restdocs offline-events.md "How to Avoid Cycles").
   */
  authConnector: string | undefined;

  constructor(
    readonly http: HttpCore,
    /** `/rest/{user}/{secret}/` for webhooks, `/rest/` for OAuth. */
    readonly basePath: string,
    private readonly conn: BitrixConnection,
    private readonly moveStore: Store,
    private readonly log?: Logger,
    /** Emulator origins a move may carry the credential between (relocation.ts); none for a real portal. */
    private readonly trustedOrigins: readonly string[] = [],
  ) {}

  /** Calls one REST method (POST JSON, the way the official SDK does), following a portal move once. */
  async call<T = unknown>(ctx: CallContext, method: string, params: Record<string, unknown> = {}, op?: OperationKind): Promise<CallResult<T>> {
    // The caller that classified the call already says how it may be retried (bitrix_call, batch): it is not
    // classified again here; the HTTP core still classifies the body it sends.
    const kind: OperationKind = op ?? operationOf(method, params);
    if (this.authConnector && !method.startsWith('event.') && kind !== 'read' && params.auth_connector === undefined)
      params = { ...params, auth_connector: this.authConnector };
    const spec = { method: 'POST' as const, path: `${this.basePath}${method}.json`, body: params, op: kind, grant: ctx.grant, signal: ctx.signal };
    // A batch is not refused for a paused command inside: Bitrix24 answers that command alone with an error.
    if (method !== 'batch') this.checkOperating(method);
    let res;
    try {
      try {
        res = await this.http.request<{ result: T; next?: number; total?: number; time?: unknown }>(spec);
      } catch (e) {
        const move = this.portalMove(e);
        if (!move) throw e;
        // §1.1: the portal's address changed; repeat the same call (body intact) on the new host, for this
        // request only: the move lasts once the user changes the configured address (doctor says so).
        this.log?.warn(
          { provider: 'bitrix24', from: this.http.origin, to: move },
          'portal moved: following it for this request; update the configured address',
        );
        await this.notePendingMove(move);
        try {
          res = await this.http.relocated(move).request<{ result: T; next?: number; total?: number; time?: unknown }>(spec);
        } catch (e2) {
          throw withoutLocation(e2);
        }
      }
    } catch (e) {
      throw this.onOperatingLimit(e, method);
    }
    const data = res.data;
    if (!data || typeof data !== 'object' || !('result' in data)) {
      throw new CrmError({ code: 'upstream', message: `Bitrix24 answered ${method} without a result envelope.`, retryable: kind === 'read' });
    }
    if (method === 'batch') {
      const times = (data.result as { result_time?: unknown } | undefined)?.result_time;
      const cmd = (params.cmd ?? {}) as Record<string, string>;
      if (times && typeof times === 'object')
        for (const [k, t] of Object.entries(times)) if (cmd[k]) this.noteTime(normalizeMethod(cmd[k].split('?')[0]!) ?? '', t);
    } else this.noteTime(method, data.time);
    return { result: data.result, next: data.next, total: data.total };
  }

  /** One `batch` request (≤ 50 commands). Per-command errors are returned, not thrown. */
  async batch(ctx: CallContext, cmd: Record<string, string>, halt = false, opOverride?: OperationKind): Promise<BatchResult> {
    const keys = Object.keys(cmd);
    if (keys.length === 0) return { result: {}, errors: {}, total: {}, next: {} };
    if (keys.length > 50) throw new Error('internal: batch over 50 commands');
    const effects = batchMethods(cmd).map((m) => classifyMethod(m));
    const op: OperationKind = effects.every((e) => e === 'read') ? 'read' : effects.some((e) => e === 'create') ? 'create' : 'idempotent';
    const r = await this.call<unknown>(ctx, 'batch', { halt: halt ? 1 : 0, cmd }, opOverride ?? op);
    // PHP serialises empty maps as [] (§3): the schema reads them as empty.
    const b = parseBitrix(BBatch, r.result, 'batch');
    return {
      result: b.result ?? {},
      errors: b.result_error ?? {},
      total: (b.result_total ?? {}) as Record<string, number>,
      next: (b.result_next ?? {}) as Record<string, number>,
    };
  }

  plan(method: string, params: unknown): PlannedRequest {
    return { method: 'POST', url: `${this.http.origin}${this.basePath.replace(/\/rest\/(\d+)\/[^/]+\//, '/rest/$1/***/')}${method}.json`, body: params };
  }

  /**
   * A read-only snapshot of the operating budget (§5) as the portal reported it in `time` so far: per method,
   * seconds spent in the 10-minute window, recent seconds per call, the reset time and any pause (`doctor --deep`).
   */
  operatingBudget(): Array<{
    method: string;
    reported: boolean;
    operating_sec: number;
    per_call_sec: number;
    reset_at: number | null;
    paused_until: number | null;
  }> {
    return this.load.entries().map(([method, l]) => {
      const o = this.operating.get(method);
      return {
        method,
        reported: l.reported === true,
        operating_sec: l.operating,
        per_call_sec: l.perCallSec,
        reset_at: o?.resetAt ?? null,
        paused_until: o?.blockedUntil ?? null,
      };
    });
  }

  /** Remembers when a method's operating budget resets (from the last successful response's `time`). */
  private noteTime(method: string, time: unknown): void {
    this.load.note(method, time);
    const at = (time as { operating_reset_at?: unknown } | undefined)?.operating_reset_at;
    if (typeof at !== 'number' || !Number.isFinite(at)) return;
    const entry = this.operating.get(method) ?? {};
    entry.resetAt = at * 1000;
    this.operating.set(method, entry);
  }

  /** A method blocked by OPERATION_TIME_LIMIT is not called again before its reset: nothing is sent. */
  private checkOperating(method: string): void {
    const until = this.operating.get(method)?.blockedUntil;
    if (until !== undefined && until > Date.now()) throw pausedError(method, until);
  }

  /** On OPERATION_TIME_LIMIT (§5) pause that method until `operating_reset_at` (at least 10 s, as the official SDK does). */
  private onOperatingLimit(e: unknown, method: string): unknown {
    if (!(e instanceof CrmError) || String((e.details as { bitrix_error?: unknown } | undefined)?.bitrix_error ?? '').toUpperCase() !== 'OPERATION_TIME_LIMIT')
      return e;
    // `batch` itself is not metered (§5; its commands are, and report per command): never pause it whole.
    if (method === 'batch') return e;
    const entry = this.operating.get(method) ?? {};
    const now = Date.now();
    entry.blockedUntil = Math.max(now + 10_000, entry.resetAt && entry.resetAt > now ? entry.resetAt : now + 60_000);
    this.operating.set(method, entry);
    return pausedError(method, entry.blockedUntil);
  }

  /**
   * The origin a "moved" answer may be followed to, undefined when `e` is no redirect; throws (without the
   * Location, which carries the secret) when the move may not carry the credential (see relocation.ts).
   */
  private portalMove(e: unknown): string | undefined {
    if (!isRedirect(e)) return undefined;
    const decision = decidePortalMove(this.http.origin, redirectTarget(e), this.basePath, this.trustedOrigins);
    if (decision.follow) return decision.origin;
    this.log?.warn({ provider: 'bitrix24', status: e.status, reason: decision.reason }, 'portal redirect refused: nothing was sent to the new address');
    throw new CrmError({
      code: 'config',
      status: e.status,
      message: `Bitrix24 answered ${e.status} (moved) and the redirect was not followed: ${decision.reason}. Nothing was sent there. If your portal's address really changed, open the portal in a browser and update ${this.conn.webhookUrl ? 'BITRIX_WEBHOOK_BASE' : 'BITRIX_PORTAL'}.`,
    });
  }

  private async notePendingMove(to: string): Promise<void> {
    if (this.pendingMove?.to === to) return;
    this.pendingMove = { from: this.http.origin, to, seen_at: new Date().toISOString() };
    await this.moveStore.set(portalMoveKey(this.http.origin), this.pendingMove).catch(() => undefined);
  }
}

function pausedError(method: string, until: number): CrmError {
  return new CrmError({
    code: 'rate_limited',
    retryable: true,
    retryAfterMs: until - Date.now(),
    message: `Bitrix24 has paused ${method} for this webhook/app (OPERATION_TIME_LIMIT: its processing-time budget for 10 minutes is spent). Other methods still work; retry ${method} in about ${Math.ceil((until - Date.now()) / 1000)} s.`,
  });
}

/** The normalised methods a batch `cmd` map calls (`method?query` values). */
function batchMethods(cmd: unknown): string[] {
  if (!cmd || typeof cmd !== 'object') return [];
  return Object.values(cmd as Record<string, unknown>).map((c) => {
    const raw = String(c).split('?')[0]!;
    return normalizeMethod(raw) ?? raw;
  });
}
