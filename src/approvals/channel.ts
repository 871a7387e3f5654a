/**
 * What the approval gate needs of the MCP request a call came in: who is calling (the principal an approval
 * is bound to), whether the client can put a question to a person (form elicitation, declared by the client),
 * and, on a retried call, the client's answers and the request state the server sent with its question.
 *
 * Both protocol eras take one path: the gate returns an `input_required` result; on 2026-07-28 the client
 * fulfils it and retries, on a 2025 revision the SDK's legacy shim sends `elicitation/create` and re-enters
 * the handler with the answer. On a 2025 revision served statelessly over HTTP the server never saw the
 * client's initialize, so it cannot ask (no capability), and the operator's channels are used.
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  createRequestStateCodec,
  type ClientCapabilities,
  type RequestStateCodec,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { bearerPrincipal } from './ids.js';
import type { ApprovalDesk } from './desk.js';

export interface ApprovalChannel {
  /** Who the approval is bound to: the OAuth client, the bearer token's hash, `http` without a token, or `stdio`. */
  readonly principal: string;
  /** The client declared form elicitation for this request (or, on a 2025 connection, at initialize). */
  readonly canAsk: boolean;
  /** The client's name and version, for the audit line of an answer given there. */
  readonly client: string;
  /** The retried call's answers (`inputResponses`), untrusted. */
  readonly responses?: Record<string, unknown>;
  /** The retried call's request state, exactly as echoed (verified by the gate). */
  readonly state?: unknown;
  /** The SDK context (the request-state codec binds to the principal through it). */
  readonly ctx: ServerContext;
}

/** What of the low-level server the channel reads on a 2025 connection. */
export interface ClientFacts {
  getClientCapabilities(): ClientCapabilities | undefined;
  getClientVersion(): { name: string; version: string } | undefined;
}

export function principalOf(ctx: ServerContext): string {
  const clientId = ctx.http?.authInfo?.clientId;
  if (clientId) return `client:${clientId}`;
  if (!ctx.http) return 'stdio';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(ctx.http.req?.headers.get('authorization') ?? '')?.[1];
  return bearer ? bearerPrincipal(bearer) : 'http';
}

function formElicitation(caps: ClientCapabilities | undefined): boolean {
  const e = caps?.elicitation as Record<string, unknown> | undefined;
  // An empty elicitation capability means form mode (the spec's backwards-compatible reading).
  return e !== undefined && (Object.keys(e).length === 0 || e.form !== undefined);
}

export function channelOf(ctx: ServerContext, server: ClientFacts): ApprovalChannel {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const modern = envelope?.[PROTOCOL_VERSION_META_KEY] !== undefined;
  const caps = modern ? (envelope?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined) : server.getClientCapabilities();
  const info =
    (modern ? (envelope?.['io.modelcontextprotocol/clientInfo'] as { name?: string; version?: string } | undefined) : server.getClientVersion()) ?? {};
  return {
    principal: principalOf(ctx),
    canAsk: formElicitation(caps),
    client: `${info.name ?? 'unknown'} ${info.version ?? ''}`.trim(),
    responses: ctx.mcpReq.inputResponses,
    state: ctx.mcpReq.requestState(),
    ctx,
  };
}

export interface QuestionState {
  /** The approval record the question is about. */
  n: string;
}

const codecs = new WeakMap<ApprovalDesk, Promise<RequestStateCodec<QuestionState>>>();

/**
 * The SDK's HMAC request-state codec under a key derived from the desk's secret (shared by every instance on
 * the store), bound to the principal, valid as long as an approval.
 */
export function questionCodec(desk: ApprovalDesk): Promise<RequestStateCodec<QuestionState>> {
  let c = codecs.get(desk);
  if (!c) {
    c = desk
      .derivedKey('request-state')
      .then((key) => createRequestStateCodec<QuestionState>({ key, ttlSeconds: Math.ceil(desk.settings.ttlMs / 1000), bind: principalOf }));
    codecs.set(desk, c);
  }
  return c;
}
