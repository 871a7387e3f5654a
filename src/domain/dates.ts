/**
 * Dates from agents, checked the same way on every CRM: ISO 8601 (a date, or a date-time with an optional
 * zone) or Unix seconds. `Date.parse` alone reads "-5" as the year 2001, so nothing else is accepted.
 */
import { validationError } from './errors.js';

const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Milliseconds since the epoch, or a validation error naming the field and the accepted forms. */
export function parseDateInput(v: string | number, field: string): number {
  if (typeof v === 'number' || /^\d{9,10}$/.test(String(v).trim())) {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw validationError(`${field}: "${String(v)}" is not a date; use ISO 8601 like 2026-12-01T15:00:00Z or Unix seconds.`);
    return n * 1000;
  }
  const s = String(v).trim();
  const t = ISO.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(t)) throw validationError(`${field}: "${s.slice(0, 40)}" is not a date; use ISO 8601 like 2026-12-01 or 2026-12-01T15:00:00Z.`);
  return t;
}

/** A deadline: a valid date that is not in the past (a minute of grace for clocks and typing). */
export function parseDeadline(v: string | number, field: string, now = Date.now()): number {
  const t = parseDateInput(v, field);
  if (t < now - 60_000) {
    throw validationError(`${field}: ${new Date(t).toISOString()} is in the past (now is ${new Date(now).toISOString()}); give a future deadline.`);
  }
  return t;
}
