/**
 * The protocol revisions a client may use, in a -32022 (UnsupportedProtocolVersion) answer. The SDK's entry
 * points (`createMcpHandler`, `serveStdio`) list only the 2026-07-28 revision there, the one `server/discover`
 * negotiates; but the same endpoint serves the 2025 revisions through `initialize`, and a client that knows
 * only those should learn that it can connect with one. Both transports pass their answers through here.
 */
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/server';

export const UNSUPPORTED_PROTOCOL_VERSION = -32022;

interface RpcError {
  error?: { code?: unknown; data?: { supported?: unknown } };
}

/** The message with every served revision in a -32022 error's `supported` (newest era first); any other message as it is. */
export function withServedVersions<T>(message: T): T {
  const e = (message as RpcError | null)?.error;
  if (!e || e.code !== UNSUPPORTED_PROTOCOL_VERSION || !Array.isArray(e.data?.supported)) return message;
  const supported = [...new Set([...(e.data.supported as string[]), ...SUPPORTED_PROTOCOL_VERSIONS])];
  return { ...(message as object), error: { ...e, data: { ...e.data, supported } } } as T;
}

/** An HTTP answer of the SDK with withServedVersions applied to its JSON body (only a 400 can carry -32022). */
export async function responseWithServedVersions(response: Response): Promise<Response> {
  if (response.status !== 400 || !/json/i.test(response.headers.get('content-type') ?? '')) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const fixed = body === undefined ? body : withServedVersions(body);
  const headers = new Headers(response.headers);
  headers.delete('content-length');
  return new Response(fixed !== body ? JSON.stringify(fixed) : text, { status: response.status, headers });
}
