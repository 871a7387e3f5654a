/**
 * Dates from agents, checked the same way on every CRM: ISO 8601 (a date, or a date-time with an optional
 * zone) or Unix seconds. `Date.parse` alone reads "-5" as the year 2001 and rolls an impossible day over
 * (`2027-02-30` becomes March 2), so the form and every calendar part are checked before it is called.
 */
import { validationError } from './errors.js';

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):?(\d{2}))?)?$/;

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Why the parts of an ISO date are no real date or time, or undefined when they are. */
function calendarProblem(m: RegExpExecArray): string | undefined {
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12) return `there is no month ${m[2]}`;
  const days = daysIn(year, month);
  if (day < 1 || day > days) return `${MONTHS[month - 1]} ${year} has ${days} days`;
  if (m[4] !== undefined && Number(m[4]) > 23) return `there is no hour ${m[4]} (00–23)`;
  if (m[5] !== undefined && Number(m[5]) > 59) return `there is no minute ${m[5]} (00–59)`;
  if (m[6] !== undefined && Number(m[6]) > 59) return `there is no second ${m[6]} (00–59)`;
  // Real offsets run from -12:00 to +14:00.
  if (m[8] !== undefined && (Number(m[8]) > 14 || Number(m[9]) > 59)) return `${m[7]} is not a time-zone offset`;
  return undefined;
}

/** Milliseconds since the epoch, or a validation error naming the field and the accepted forms. */
export function parseDateInput(v: string | number, field: string): number {
  if (typeof v === 'number' || /^\d{9,10}$/.test(String(v).trim())) {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0)
      throw validationError(`${field}: "${String(v)}" is not a date; use ISO 8601 like 2026-12-01T15:00:00Z or Unix seconds.`);
    return n * 1000;
  }
  const s = String(v).trim();
  const m = ISO.exec(s);
  const problem = m ? calendarProblem(m) : undefined;
  if (problem) throw validationError(`${field}: "${s}" is not a real date: ${problem}.`);
  const t = m ? Date.parse(s) : NaN;
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
