/** Time helpers: PHP `date('c')` strings in the portal's time zone and the `time` envelope object (§3). */

/** The demo portal lives at UTC+03:00 (a typical Russian portal); all dates are rendered in that offset. */
export const PORTAL_OFFSET_MIN = 180;

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** `2024-05-23T18:18:25+03:00` (PHP `date('c')`, §3). */
export function phpDate(ms: number, offsetMin = PORTAL_OFFSET_MIN): string {
  const d = new Date(ms + offsetMin * 60_000);
  const sign = offsetMin >= 0 ? '+' : '-';
  const off = Math.abs(offsetMin);
  return (
    `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `${sign}${pad(Math.floor(off / 60))}:${pad(off % 60)}`
  );
}

/**
 * Parses a date the way a portal would read it from a filter or a field: ISO with or without an offset
 * (no offset = portal time), `YYYY-MM-DD`, or `DD.MM.YYYY[ HH:MM:SS]`. Returns epoch ms or undefined.
 */
export function parseBxDate(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v > 1e11 ? v : v * 1000;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (!s) return undefined;
  const ru = /^(\d{2})\.(\d{2})\.(\d{4})(?:\s+(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(s);
  if (ru) {
    const iso = `${ru[3]}-${ru[2]}-${ru[1]}T${ru[4] ?? '00'}:${ru[5] ?? '00'}:${ru[6] ?? '00'}`;
    return parseBxDate(iso);
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return parseBxDate(`${s}T00:00:00`);
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(s);
  const t = Date.parse(hasZone ? s : `${s.replace(' ', 'T')}${offsetSuffix()}`);
  return Number.isNaN(t) ? undefined : t;
}

function offsetSuffix(offsetMin = PORTAL_OFFSET_MIN): string {
  const sign = offsetMin >= 0 ? '+' : '-';
  const off = Math.abs(offsetMin);
  return `${sign}${pad(Math.floor(off / 60))}:${pad(off % 60)}`;
}

/** The `time` object of a response (§3). `operating*` keys only where the sheet says they appear. */
export interface BxTime {
  start: number;
  finish: number;
  duration: number;
  processing: number;
  date_start: string;
  date_finish: string;
  operating_reset_at?: number;
  operating?: number;
}

export function makeTime(startMs: number, finishMs: number, processingMs: number, operating?: { resetAt?: number; operating: number }): BxTime {
  const t: BxTime = {
    start: startMs / 1000,
    finish: finishMs / 1000,
    duration: (finishMs - startMs) / 1000,
    processing: processingMs / 1000,
    date_start: phpDate(startMs),
    date_finish: phpDate(finishMs),
  };
  if (operating) {
    if (operating.resetAt !== undefined) t.operating_reset_at = operating.resetAt;
    t.operating = operating.operating;
  }
  return t;
}

/** Wall clock with sub-millisecond resolution, so `duration` and `processing` are never all zeros. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
