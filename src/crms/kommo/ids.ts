/** Kommo ids and dates as the API takes them: positive whole numbers, Unix seconds. */
import { validationError } from '../../domain/errors.js';
import { parseDateInput } from '../../domain/dates.js';
import type { Id } from '../types.js';

export function toId(v: Id, field: string): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw validationError(`${field}: "${String(v)}" is not a valid id (a positive whole number).`);
  return n;
}

/** Accepts ISO dates/date-times or Unix seconds; returns Unix seconds. */
export function toUnix(v: string | number, field: string): number {
  return Math.floor(parseDateInput(v, field) / 1000);
}
