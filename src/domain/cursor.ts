/** Opaque pagination cursors: base64url JSON, validated on the way back in. */
import { validationError } from './errors.js';

export function encodeCursor(state: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
}

export function decodeCursor<T extends Record<string, unknown>>(cursor: string, check: (v: Record<string, unknown>) => v is T): T {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (v && typeof v === 'object' && check(v as Record<string, unknown>)) return v as T;
  } catch {
    // fall through
  }
  throw validationError('Invalid cursor: pass back exactly the `cursor` value a previous call returned, or omit it to start from the first page.');
}
