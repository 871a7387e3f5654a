/**
 * Secret redaction. Every credential the server learns (tokens, client secrets, webhook secrets) is
 * registered here, and every string that leaves the process through a log line, an error or a tool
 * result passes through `redact`. Pattern rules catch what was never registered (a token echoed back
 * by a CRM, a JWT in a URL).
 */
const secrets = new Set<string>();

/** Register a secret value (ignored when shorter than 6 characters: too short to be a credential, too risky to blank out). */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 6) secrets.add(value);
}

const MASK = '[REDACTED]';
const PATTERNS: Array<[RegExp, string]> = [
  // Authorization headers and bearer tokens in any text.
  [/(bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, `$1${MASK}`],
  // JWTs anywhere.
  [/eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, MASK],
  // Bitrix24 inbound webhook secret: /rest/{user}/{secret}/
  [/(\/rest\/\d+\/)[A-Za-z0-9]{4,}(?=\/|$)/g, `$1${MASK}`],
  // OAuth fields in JSON or form bodies.
  // Not after a letter or "_": "KOMMO_CLIENT_SECRET: required" is a message naming a variable, not a value
  // (registered secrets are masked by value anyway).
  [/((?<![A-Za-z0-9_])"?(?:access_token|refresh_token|client_secret|application_token|password)"?\s*[:=]\s*"?)[^"&\s,}]{4,}/gi, `$1${MASK}`],
];

export function redact(text: string): string {
  let out = text;
  // Longest first, so a secret containing another is masked whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  for (const [re, rep] of PATTERNS) out = out.replace(re, rep);
  return out;
}

/** Deep-redacts a JSON-like value (strings anywhere in it). */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[redact(k)] = redactValue(v);
    return out as T;
  }
  return value;
}

/** For tests. */
export function clearSecrets(): void {
  secrets.clear();
}
