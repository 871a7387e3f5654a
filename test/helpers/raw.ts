/** Raw HTTP to an emulator (no client code in between): what a test sends is exactly what goes on the wire. */
import { request } from 'undici';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The content-type header ('' when absent). */
  type: string;
  text: string;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** `body`: a string is sent as it is, anything else as JSON; `token`: a bearer token, when given. */
export async function rawRequest(url: string, method: string, o: { token?: string | null; body?: unknown } = {}): Promise<RawResponse> {
  const res = await request(url, {
    method: method as 'GET',
    headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body),
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, type: String(res.headers['content-type'] ?? ''), text, json };
}
