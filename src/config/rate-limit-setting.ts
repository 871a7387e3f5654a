/** The setting of the HTTP service's inbound rate limit: its options and how `CRM_MCP_HTTP_RATE_LIMIT` is read (transports/http/rate-limit.ts enforces it). */
export interface RateLimitOptions {
  /** Sustained `tools/call` requests per minute per client. */
  perMinute: number;
  /** Calls a client may make at once before the sustained rate applies (default: a tenth of a minute's worth, at least 1). */
  burst?: number;
  /** Clock (tests). */
  now?: () => number;
}

/**
 * `CRM_MCP_HTTP_RATE_LIMIT`: `<calls>/<unit>` with unit `s`, `min` or `h` (`120/min`), optionally
 * `,burst=<n>`; `off` (or empty) disables. Returns the options, undefined for off, or an error message.
 */
export function parseRateLimit(raw: string | undefined): RateLimitOptions | undefined | { error: string } {
  const v = raw?.trim().toLowerCase();
  if (!v || v === 'off' || v === '0') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*\/\s*(s|sec|second|m|min|minute|h|hour)\s*(?:,\s*burst\s*=\s*(\d+))?$/.exec(v);
  if (!m) return { error: `"${raw}" is not a rate: use e.g. 120/min, 5/s or 600/h (optionally ",burst=20"), or off` };
  const n = Number(m[1]);
  const unit = m[2]!;
  const perMinute = unit.startsWith('s') ? n * 60 : unit.startsWith('h') ? n / 60 : n;
  if (!(perMinute > 0)) return { error: `"${raw}": the rate must be above zero (or off)` };
  return { perMinute, ...(m[3] ? { burst: Number(m[3]) } : {}) };
}
