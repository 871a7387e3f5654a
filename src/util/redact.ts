/**
 * Secret redaction. Every credential the server learns (tokens, client secrets, webhook secrets) is
 * registered here, and every string that leaves the process through a log line, an error or a tool
 * result passes through `redact`. Pattern rules catch what was never registered (a token echoed back
 * by a CRM, a JWT in a URL).
 *
 * A CRM or a proxy may echo a credential in another spelling than it was sent: upper-cased (some gateways
 * upper-case what they log), percent-encoded, hex, or inside base64 (a Basic header, a debug dump). Each
 * registered secret is therefore matched in every such form, case-insensitively.
 */
const secrets = new Set<string>();
/** Lower-cased forms of every registered secret, longest first; rebuilt after a registration. */
let forms: string[] | undefined;

/** Register a secret value (ignored when shorter than 6 characters: too short to be a credential, too risky to blank out). */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 6 && !secrets.has(value)) {
    secrets.add(value);
    forms = undefined;
  }
}

/**
 * The runs of base64 text that carry `bytes` wherever they sit in a longer encoded value: the encoding of
 * the secret depends on its offset modulo 3 in the encoded bytes, so for each offset the characters that
 * also hold bits of the neighbours are cut off and the stable middle is kept. The secret's own encoding
 * (with and without padding) is kept whole as well, so an exact echo is masked completely.
 */
function base64Runs(bytes: Buffer): string[] {
  const whole = bytes.toString('base64');
  const out = [whole, whole.replace(/=+$/, '')];
  for (const offset of [0, 1, 2]) {
    const enc = Buffer.concat([Buffer.alloc(offset), bytes])
      .toString('base64')
      .replace(/=+$/, '');
    const head = [0, 2, 3][offset]!;
    const tail = (offset + bytes.length) % 3 === 0 ? 0 : 1;
    out.push(enc.slice(head, enc.length - tail));
  }
  return out;
}

/**
 * The spellings of a secret that are masked: as registered, percent-encoded (as a URL component, and every
 * byte), hex, base64 and base64url. Case variants (an upper-cased webhook secret, upper-case hex) are covered
 * by matching case-insensitively.
 */
export function secretForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const hex = bytes.toString('hex');
  const b64 = base64Runs(bytes);
  const all = [secret, encodeURIComponent(secret), hex.replace(/../g, '%$&'), hex, ...b64, ...b64.map((s) => s.replace(/\+/g, '-').replace(/\//g, '_'))];
  // Short runs (a base64 middle of a 6-character secret) would mask ordinary words.
  return [...new Set(all.filter((f) => f.length >= 6).map((f) => f.toLowerCase()))];
}

function allForms(): string[] {
  forms ??= [...new Set([...secrets].flatMap(secretForms))].sort((a, b) => b.length - a.length);
  return forms;
}

const escapeRe = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');

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
  const list = allForms();
  if (list.length > 0) {
    // A cheap scan first: most strings hold no secret, and building the expression costs more than looking.
    const lower = out.toLowerCase();
    const present = list.filter((f) => lower.includes(f));
    // Longest first, so a secret containing another (or one form containing another) is masked whole.
    if (present.length > 0) out = out.replace(new RegExp(present.map(escapeRe).join('|'), 'giu'), MASK);
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
  forms = undefined;
}
