/** Bitrix24 ids and dates as the REST API takes them. */
import { validationError } from '../../domain/errors.js';
import { parseDateInput } from '../../domain/dates.js';
import type { Id } from '../types.js';

/** A Bitrix24 id; `allowZero` for deal categories, where 0 is the General pipeline. */
export function bxId(v: Id, field?: string, allowZero = false): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(String(v).trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1)) {
    throw validationError(`${field ? `${field}: ` : ''}"${String(v)}" is not a valid Bitrix24 id (a ${allowZero ? 'non-negative' : 'positive'} whole number).`);
  }
  return n;
}

/** A date filter value: ISO 8601 with an explicit offset, as the portal compares it. */
export function bxDate(v: string, field: string): string {
  const t = parseDateInput(v, field);
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

export function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
