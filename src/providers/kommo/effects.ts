/**
 * What a Kommo API v4 request does, decided from its method, path and body alone (docs/providers: the
 * Kommo fact sheet lists the endpoints). The rules say what users mean by the policy:
 * - create: a new CRM record (lead, contact, company, customer, note, task, call, incoming lead);
 * - update: a change to an existing record, including links between existing records;
 * - delete: removing data;
 * - admin: account configuration (webhooks, widgets, pipelines and stages, custom fields, tags, users,
 *   roles, sources, catalogs, templates, loss reasons) and outbound communication (Salesbot runs, chats);
 * - a path that is not in the table counts as admin, the strongest effect.
 * Paths are normalised before they are classified (decoded, lower-cased, trailing slashes dropped), and
 * anything that is not a plain path (`;`, `%`, dots, non-ASCII) is refused, so no spelling of a path can
 * be classified as something weaker than what Kommo would do with it.
 */
import type { Effect } from '../../policy/policy.js';

export type KommoMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface KommoRule {
  methods: readonly KommoMethod[];
  /** Matched against the normalised path with `{id}` for numeric segments and `{uid}` for others. */
  pattern: RegExp;
  effect: Effect;
  why: string;
}

/** The entities whose rows are CRM records. */
const RECORDS = '(leads|contacts|companies|customers)';

/**
 * First match wins. GET is a read on every path (Kommo's v4 GETs do not change data); the rules below are
 * for writes.
 */
export const KOMMO_RULES: readonly KommoRule[] = [
  // Links between existing records (POST /{entity}/link, /{entity}/{id}/link, …/unlink): changes to existing records.
  { methods: ['POST'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?/(link|unlink)$`), effect: 'update', why: 'links or unlinks existing records' },
  // Incoming leads (unsorted): creating one is a new record; accepting or linking changes it; declining deletes it.
  { methods: ['POST'], pattern: /^\/api\/v4\/leads\/unsorted\/(forms|sip|chats)$/, effect: 'create', why: 'adds incoming leads' },
  { methods: ['POST'], pattern: /^\/api\/v4\/leads\/unsorted\/\{(id|uid)\}\/(accept|link)$/, effect: 'update', why: 'accepts or links an incoming lead' },
  { methods: ['DELETE'], pattern: /^\/api\/v4\/leads\/unsorted\/\{(id|uid)\}\/decline$/, effect: 'delete', why: 'declines (removes) an incoming lead' },
  { methods: ['POST'], pattern: /^\/api\/v4\/leads\/unsorted\/\{(id|uid)\}\/decline$/, effect: 'delete', why: 'declines (removes) an incoming lead' },
  // Configuration that happens to live under an entity: pipelines/stages, fields, tags, loss reasons, segments.
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/leads\/pipelines(\/.*)?$/, effect: 'admin', why: 'changes pipelines or stages' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/[a-z_]+\/custom_fields(\/.*)?$/, effect: 'admin', why: 'changes custom fields' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/[a-z_]+\/tags(\/.*)?$/, effect: 'admin', why: 'changes the account tag list' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/leads\/loss_reasons(\/.*)?$/, effect: 'admin', why: 'changes loss reasons' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/customers\/(segments|mode)(\/.*)?$/, effect: 'admin', why: 'changes customer settings' },
  // Records.
  { methods: ['POST'], pattern: /^\/api\/v4\/leads\/complex$/, effect: 'create', why: 'adds leads with their contact and company' },
  { methods: ['POST'], pattern: new RegExp(`^/api/v4/${RECORDS}$`), effect: 'create', why: 'adds records' },
  { methods: ['PATCH', 'PUT'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?$`), effect: 'update', why: 'changes existing records' },
  { methods: ['POST'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?/notes$`), effect: 'create', why: 'adds notes' },
  { methods: ['PATCH', 'PUT'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?/notes(/\\{id\\})?$`), effect: 'update', why: 'changes notes' },
  { methods: ['POST'], pattern: /^\/api\/v4\/customers\/(\{id\}\/)?transactions$/, effect: 'create', why: 'adds customer transactions' },
  { methods: ['POST'], pattern: /^\/api\/v4\/customers\/\{id\}\/bonus_points$/, effect: 'update', why: 'changes a customer’s bonus points' },
  { methods: ['DELETE'], pattern: /^\/api\/v4\/customers\/\{id\}\/transactions\/\{id\}$/, effect: 'delete', why: 'removes a transaction' },
  { methods: ['POST'], pattern: /^\/api\/v4\/tasks$/, effect: 'create', why: 'adds tasks' },
  { methods: ['PATCH', 'PUT'], pattern: /^\/api\/v4\/tasks(\/\{id\})?$/, effect: 'update', why: 'changes tasks' },
  { methods: ['POST'], pattern: /^\/api\/v4\/calls$/, effect: 'create', why: 'logs calls' },
  // A chat bound to a contact, a talk closed: changes to existing records.
  { methods: ['POST'], pattern: /^\/api\/v4\/contacts\/chats$/, effect: 'update', why: 'binds chats to existing contacts' },
  { methods: ['POST'], pattern: /^\/api\/v4\/talks\/\{id\}\/close$/, effect: 'update', why: 'closes a conversation' },
  // Account configuration and outbound communication.
  {
    methods: ['POST', 'PATCH', 'PUT', 'DELETE'],
    pattern: /^\/api\/v4\/webhooks(\/.*)?$/,
    effect: 'admin',
    why: 'changes webhooks (where the account sends its data)',
  },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/widgets(\/.*)?$/, effect: 'admin', why: 'installs or removes integrations' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/(users|roles)(\/.*)?$/, effect: 'admin', why: 'changes users or roles' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/sources(\/.*)?$/, effect: 'admin', why: 'changes lead sources' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/catalogs(\/.*)?$/, effect: 'admin', why: 'changes lists (catalogs) and their elements' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/chats(\/.*)?$/, effect: 'admin', why: 'changes chat templates or sends messages' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/(salesbot|bots)(\/.*)?$/, effect: 'admin', why: 'runs Salesbot (outbound messages)' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/short_links(\/.*)?$/, effect: 'admin', why: 'creates short links' },
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/account(\/.*)?$/, effect: 'admin', why: 'changes the account' },
];

export type NormalisedPath = { ok: true; path: string } | { ok: false; problem: string };

/**
 * Decodes percent-escapes (up to three layers, as a proxy might), drops trailing slashes and lower-cases;
 * refuses anything that is not a plain path of `[a-z0-9_-]` segments under /api/v4/.
 */
export function normaliseKommoPath(raw: string): NormalisedPath {
  let p = raw.trim();
  for (let i = 0; i < 3; i++) {
    let next: string;
    try {
      next = decodeURIComponent(p);
    } catch {
      return { ok: false, problem: 'the path has a broken percent-escape' };
    }
    if (next === p) break;
    p = next;
  }
  if (/%/.test(p)) return { ok: false, problem: 'the path is encoded more than three times' };
  p = p.replace(/\/+$/, '').toLowerCase();
  if (!/^\/api\/v4(\/[a-z0-9_-]+)+$/.test(p)) {
    return { ok: false, problem: 'a path is /api/v4/ followed by plain segments of letters, digits, "_" and "-" (no "..", "//", ";", dots or spaces)' };
  }
  return { ok: true, path: p };
}

/** `/api/v4/leads/123/notes` → `/api/v4/leads/{id}/notes`; an unsorted uid becomes `{uid}`. */
export function kommoTemplate(path: string): string {
  return path
    .split('/')
    .map((seg, i, all) => (/^\d+$/.test(seg) ? '{id}' : all[i - 1] === 'unsorted' && !['forms', 'sip', 'chats', 'summary'].includes(seg) ? '{uid}' : seg))
    .join('/');
}

export interface KommoClassification {
  effect: Effect;
  why: string;
  /** True when no rule matched: the effect is the strongest because the path is unknown. */
  unknown: boolean;
}

/** True when a create body addresses an existing record (an item-level `id`), which Kommo may take as "update it". */
export function bodyNamesExisting(body: unknown): boolean {
  const items = Array.isArray(body) ? body : body && typeof body === 'object' ? [body] : [];
  return items.some((it) => it && typeof it === 'object' && !Array.isArray(it) && Object.keys(it).some((k) => k.toLowerCase() === 'id'));
}

/** The effect of a request given its normalised path (see normaliseKommoPath). */
export function classifyKommoRequest(method: string, normalisedPath: string, body?: unknown): KommoClassification {
  const m = method.toUpperCase();
  if (m === 'GET') return { effect: 'read', why: 'reads', unknown: false };
  const template = kommoTemplate(normalisedPath);
  const rule = KOMMO_RULES.find((r) => (r.methods as readonly string[]).includes(m) && r.pattern.test(template));
  if (!rule) return { effect: 'admin', why: `${m} ${template} is not in the classification table`, unknown: true };
  if (rule.effect === 'create' && bodyNamesExisting(body)) {
    return { effect: 'update', why: 'the body names an existing record by id, which may update it', unknown: false };
  }
  return { effect: rule.effect, why: rule.why, unknown: false };
}

/** Wire classification for the HTTP core: unparsable paths are the strongest effect. */
export function classifyKommo(method: string, path: string, body?: unknown): Effect {
  const n = normaliseKommoPath(path);
  if (!n.ok) return 'admin';
  return classifyKommoRequest(method, n.path, body).effect;
}
