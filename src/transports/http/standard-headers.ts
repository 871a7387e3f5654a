/**
 * The 2026-07-28 standard request headers (`Mcp-Method`, `Mcp-Name`) checked against the JSON-RPC body.
 *
 * The spec (basic/transports/streamable-http.mdx, "Standard Request Headers" and "Server Validation"):
 * servers that process the body MUST reject a request whose headers do not match it, with HTTP 400 and
 * JSON-RPC error -32020 (HeaderMismatch); `Mcp-Name` mirrors `params.name` (tools/call, prompts/get) or
 * `params.uri` (resources/read) and may carry the Base64 sentinel `=?base64?…?=`, decoded before comparing.
 * The SDK checks this on 2026-07-28 requests only; this check runs on every request, whatever its era,
 * because the service's metrics labels and its rate limiter read the method and the name: once a header
 * disagrees with the body nothing downstream (a gateway routing on the header, this server executing the
 * body) can be trusted, so the request is refused before any of them sees it.
 */
import type { IncomingMessage } from 'node:http';

/** HeaderMismatch (spec schema `HeaderMismatchError`). */
export const HEADER_MISMATCH = -32020;

const PROTOCOL_VERSION_META_KEY = 'io.modelcontextprotocol/protocolVersion';
const NAME_SOURCE: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

export interface RequestFacts {
  /** The JSON-RPC method (`batch` for an array, `response` for a posted response, `invalid` otherwise). */
  method: string;
  /** `params.name` / `params.uri` for the methods that have one. */
  name?: string;
  /** `modern`: the body carries the 2026-07-28 per-request `_meta` envelope; else `legacy` (2025 era). */
  era: 'modern' | 'legacy';
  /** The protocol version the envelope names (modern only). */
  protocolVersion?: string;
  /** The request id, echoed in a refusal. */
  id: string | number | null;
}

export type HeaderCheck = { ok: true; facts: RequestFacts } | { ok: false; facts: RequestFacts; message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What the body says: method, name, era and id. */
export function factsOf(body: unknown): RequestFacts {
  if (Array.isArray(body)) return { method: 'batch', era: 'legacy', id: null };
  if (!isObject(body)) return { method: 'invalid', era: 'legacy', id: null };
  const id = typeof body.id === 'string' || typeof body.id === 'number' ? body.id : null;
  if (typeof body.method !== 'string') return { method: 'result' in body || 'error' in body ? 'response' : 'invalid', era: 'legacy', id };
  const params = isObject(body.params) ? body.params : undefined;
  const meta = params && isObject(params._meta) ? params._meta : undefined;
  const version = meta?.[PROTOCOL_VERSION_META_KEY];
  const field = Object.hasOwn(NAME_SOURCE, body.method) ? NAME_SOURCE[body.method] : undefined;
  const name = field && typeof params?.[field] === 'string' ? (params[field] as string) : undefined;
  return {
    method: body.method,
    ...(name !== undefined ? { name } : {}),
    era: meta && PROTOCOL_VERSION_META_KEY in meta ? 'modern' : 'legacy',
    ...(typeof version === 'string' ? { protocolVersion: version } : {}),
    id,
  };
}

/** A header's single value without surrounding optional whitespace; null when it was sent more than once. */
function single(headers: IncomingMessage['headers'], name: string): string | null | undefined {
  const raw = headers[name];
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) return raw.length === 1 ? raw[0]!.replace(/^[ \t]+|[ \t]+$/g, '') : null;
  return raw.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** Header and body values echoed in a refusal, cut short: they are the caller's own, but need not be long. */
const clip = (s: string) => (s.length > 80 ? `${s.slice(0, 80)}…` : s);

const SENTINEL = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/;

/** A header value per the spec's Value Encoding: the Base64 sentinel decoded (UTF-8); undefined when malformed. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith('=?base64?') && value.endsWith('?='))) return value;
  const m = SENTINEL.exec(value);
  if (!m || m[1]!.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(m[1]!, 'base64');
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return text.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Checks the headers that are present against the body. Absent headers are not required here: the SDK
 * requires them on 2026-07-28 requests (and answers -32020 itself), and 2025-era clients do not send them.
 */
export function checkStandardHeaders(headers: IncomingMessage['headers'], body: unknown): HeaderCheck {
  const facts = factsOf(body);
  const method = single(headers, 'mcp-method');
  if (method !== undefined) {
    if (method === null) return { ok: false, facts, message: 'Header mismatch: Mcp-Method was sent more than once' };
    if (facts.method === 'batch' || facts.method === 'response' || facts.method === 'invalid') {
      return { ok: false, facts, message: `Header mismatch: Mcp-Method header names "${clip(method)}" but the body is not a single request` };
    }
    if (method !== facts.method)
      return { ok: false, facts, message: `Header mismatch: Mcp-Method header names "${clip(method)}" but the body names method "${clip(facts.method)}"` };
  }
  const name = single(headers, 'mcp-name');
  if (name !== undefined && Object.hasOwn(NAME_SOURCE, facts.method)) {
    if (name === null) return { ok: false, facts, message: 'Header mismatch: Mcp-Name was sent more than once' };
    const decoded = decodeHeaderValue(name);
    if (decoded === undefined) return { ok: false, facts, message: 'Header mismatch: the Mcp-Name header carries an invalid Base64 sentinel value' };
    if (facts.name !== undefined && decoded !== facts.name) {
      return { ok: false, facts, message: `Header mismatch: Mcp-Name header names "${clip(decoded)}" but the body names "${clip(facts.name)}"` };
    }
  }
  return { ok: true, facts };
}
