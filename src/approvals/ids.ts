/**
 * Approval ids: `apr_<nonce>.<mac>`, where the MAC is HMAC-SHA256 (keyed by a random secret kept in the store)
 * over the principal that asked, a digest of the exact arguments and the expiry. The nonce names the store
 * record; the MAC ties the id to who may use it and for which call, so an id made up, altered, or carried
 * to other arguments or another client is refused before anything runs.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const ID = /^apr_([A-Za-z0-9_-]{12})\.([A-Za-z0-9_-]{22})$/;

/** JSON with every object's keys sorted and undefined left out: one text per value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The digest an approval is bound to: the tool, the connection and the arguments as the tool receives them
 * (the approval field itself left out by the caller), so an id approved for one call fits no other.
 */
export function argsDigest(tool: string, connection: string, args: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalJson({ tool, connection, args })).digest('base64url');
}

export function newNonce(): string {
  return randomBytes(9).toString('base64url');
}

export function macOf(key: Buffer, nonce: string, principal: string, digest: string, expires: number): string {
  return createHmac('sha256', key).update(`crm-mcp.approval.v1\0${nonce}\0${principal}\0${digest}\0${expires}`).digest('base64url').slice(0, 22);
}

export function formatId(nonce: string, mac: string): string {
  return `apr_${nonce}.${mac}`;
}

/** The nonce and MAC of an id, or undefined when it does not have the shape of one. */
export function parseId(id: string): { nonce: string; mac: string } | undefined {
  const m = ID.exec(id.trim());
  return m ? { nonce: m[1]!, mac: m[2]! } : undefined;
}

/** Constant-time comparison of two MACs. */
export function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The principal of a bearer token: its hash, never the token. */
export function bearerPrincipal(token: string): string {
  return `bearer:${createHash('sha256').update(token).digest('hex').slice(0, 16)}`;
}
