/** The request body of /mcp: bounded while it streams in, then parsed as JSON. */
import type { IncomingMessage } from 'node:http';

/** Default largest body (bytes). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export class BodyTooLarge extends Error {}

/** Reads the body, failing as soon as it passes `max` bytes (whether or not a content-length was sent). */
export function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > max) {
        over = true;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!over) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** `closeConnection`: the rest of the body is not wanted, so the connection closes after the answer. */
export type BodyResult = { ok: true; parsed: unknown } | { ok: false; status: 400 | 413; closeConnection?: boolean };

/**
 * The parsed JSON body, or why not: 413 when it is over `max` (a declared content-length over it is refused
 * before reading), 400 when it is not JSON.
 */
export async function readJsonBody(req: IncomingMessage, max: number): Promise<BodyResult> {
  if (Number(req.headers['content-length'] ?? 0) > max) return { ok: false, status: 413 };
  try {
    return { ok: true, parsed: JSON.parse(await readBody(req, max)) as unknown };
  } catch (err) {
    return err instanceof BodyTooLarge ? { ok: false, status: 413, closeConnection: true } : { ok: false, status: 400 };
  }
}
