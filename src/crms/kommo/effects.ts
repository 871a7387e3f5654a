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
 * be classified as something weaker than what Kommo would do with it. A write's query parameters are in the
 * table too (most writes take none: any other is the strongest effect), a method override (`_method`) is
 * refused outright, and the body can only make a request stronger (effects-body.ts: ids of existing
 * records, data a PATCH removes, tags by name, complex leads that duplicate control may merge).
 */
import { CrmError } from '../../domain/errors.js';
import { strongestEffect, type Effect, type SafeUpdate } from '../../policy/policy.js';
import {
  type BodyFinding,
  complexTouchesExisting,
  namesExisting,
  namesTags,
  phpShape,
  stageMoveBody,
  taskDoneBody,
  TooDeep,
  updateRemoves,
} from './effects-body.js';

export type KommoMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface KommoRule {
  methods: readonly KommoMethod[];
  /** Matched against the normalised path with `{id}` for numeric segments and `{uid}` for others. */
  pattern: RegExp;
  effect: Effect;
  why: string;
  /**
   * The query parameters this write takes, each with the effect it gives the request (at least the rule's
   * own). Any other parameter on a write is outside the table: the strongest effect.
   */
  query?: Readonly<Record<string, { effect: Effect; why: string }>>;
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
  // Turning customers on and picking their mode is admin-only in Kommo itself (§13.1).
  { methods: ['POST', 'PATCH', 'PUT', 'DELETE'], pattern: /^\/api\/v4\/customers\/(segments|mode)(\/.*)?$/, effect: 'admin', why: 'changes customer settings' },
  // Records.
  { methods: ['POST'], pattern: /^\/api\/v4\/leads\/complex$/, effect: 'create', why: 'adds leads with their contact and company' },
  { methods: ['POST'], pattern: new RegExp(`^/api/v4/${RECORDS}$`), effect: 'create', why: 'adds records' },
  { methods: ['PATCH', 'PUT'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?$`), effect: 'update', why: 'changes existing records' },
  { methods: ['POST'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?/notes$`), effect: 'create', why: 'adds notes' },
  { methods: ['PATCH', 'PUT'], pattern: new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?/notes(/\\{id\\})?$`), effect: 'update', why: 'changes notes' },
  {
    methods: ['POST'],
    pattern: /^\/api\/v4\/customers\/(\{id\}\/)?transactions$/,
    effect: 'create',
    why: 'adds customer transactions',
    // The transaction is new, but `accrue_bonus` credits bonus points to the existing customer (§13.2).
    query: { accrue_bonus: { effect: 'update', why: 'credits bonus points to an existing customer (`accrue_bonus`)' } },
  },
  // Earns or redeems points on an existing customer: a change to that record, never a new one (§13.3).
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
  /** Set when the request is exactly one narrow update (CRM_SAFE_UPDATES): see narrowUpdateOf. */
  safeUpdate?: SafeUpdate;
}

/**
 * The name PHP gives a query key (Kommo reads its query as PHP does): it ends at a NUL byte, leading spaces
 * go, ` ` and `.` become `_`, and `key[…]` is `key`. So `accrue.bonus=1` is `accrue_bonus`.
 */
export function phpQueryName(raw: string): string {
  let k = raw.split('\0')[0]!.replace(/^ +/, '');
  const open = k.indexOf('[');
  if (open >= 0 && k.indexOf(']', open) > open) k = k.slice(0, open);
  return k.replace(/[ .[]/g, '_');
}

/**
 * A query parameter that PHP frameworks read as the HTTP method to run (`_method`, honoured on a POST by
 * Symfony and Laravel): the request would do something other than what its method was classified as.
 */
export function methodOverrideParam(query: Iterable<[string, string]>): string | undefined {
  for (const [k] of query) if (phpQueryName(k).toLowerCase() === '_method') return k;
  return undefined;
}

function refuseOverride(key: string): CrmError {
  return new CrmError({
    code: 'policy_denied',
    message: `Refused: the query parameter "${key.slice(0, 60)}" asks the CRM to run another HTTP method than the one this request was classified by, so it is never sent. Use that method instead.`,
  });
}

const RECORD_PATCH = new RegExp(`^/api/v4/${RECORDS}(/\\{id\\})?$`);

/**
 * The effect of a request given its normalised path (see normaliseKommoPath), its body and its query: the
 * path's rule, raised by what the query and the body do (effects-body.ts). Throws a policy refusal for a
 * method override in the query, which no effect covers.
 */
export function classifyKommoRequest(method: string, normalisedPath: string, body?: unknown, query?: Iterable<[string, string]>): KommoClassification {
  const m = method.toUpperCase();
  const params = query ? [...query] : [];
  const override = methodOverrideParam(params);
  if (override !== undefined) throw refuseOverride(override);
  if (m === 'GET') return { effect: 'read', why: 'reads', unknown: false };
  const template = kommoTemplate(normalisedPath);
  const rule = KOMMO_RULES.find((r) => (r.methods as readonly string[]).includes(m) && r.pattern.test(template));
  if (!rule) return { effect: 'admin', why: `${m} ${template} is not in the classification table`, unknown: true };
  const findings: BodyFinding[] = [{ effect: rule.effect, why: rule.why }];
  for (const [k] of params) {
    const q = rule.query?.[phpQueryName(k)];
    findings.push(q ?? { effect: 'admin', why: `the query parameter "${k.slice(0, 60)}" is not in the classification table for ${m} ${template}` });
  }
  let shaped: unknown;
  try {
    shaped = phpShape(body);
  } catch (e) {
    if (!(e instanceof TooDeep)) throw e;
    return { effect: 'admin', why: 'the body is nested too deep to classify', unknown: false };
  }
  if (rule.effect === 'create' && namesExisting(shaped)) {
    findings.push({ effect: 'update', why: 'the body names an existing record by id, which may update it' });
  }
  if (template === '/api/v4/leads/complex' && complexTouchesExisting(shaped)) {
    findings.push({
      effect: 'update',
      why: "embeds a contact or company: with the account's duplicate control on, Kommo merges such a lead into the existing contact's open lead (§5.5)",
    });
  }
  if ((m === 'PATCH' || m === 'PUT') && RECORD_PATCH.test(template)) {
    const removes = updateRemoves(shaped);
    if (removes) findings.push(removes);
  }
  if (namesTags(shaped)) {
    findings.push({
      effect: 'admin',
      why: 'names tags by name: a name the account does not have is added to its tag list (configuration); give existing tags as {"id": …} (GET /api/v4/{entity}/tags)',
    });
  }
  const effect = strongestEffect(findings.map((f) => f.effect));
  const why = findings.find((f) => f.effect === effect)!.why;
  const safeUpdate = effect === 'update' && params.length === 0 ? narrowUpdateOf(m, template, shaped) : undefined;
  return { effect, why, unknown: false, ...(safeUpdate ? { safeUpdate } : {}) };
}

/**
 * The narrow update a write is, from its method, path template and body as PHP reads it: a PATCH of one lead
 * whose body has `status_id` and at most `pipeline_id` and `loss_reason_id` (§5.4, §7: won 142 / lost 143)
 * is a stage move; a PATCH of one task whose body has `is_completed: true` and at most `result: {text}` is a
 * task done. Anything else in the body (a price, `_embedded`, custom fields, a second record) is a plain update.
 */
export function narrowUpdateOf(method: string, template: string, shaped: unknown): SafeUpdate | undefined {
  if (method !== 'PATCH') return undefined;
  if (template === '/api/v4/leads/{id}' || template === '/api/v4/leads') return stageMoveBody(shaped, template !== '/api/v4/leads');
  if (template === '/api/v4/tasks/{id}' || template === '/api/v4/tasks') return taskDoneBody(shaped, template !== '/api/v4/tasks');
  return undefined;
}

/** The HTTP core's reading of a narrow update (ProviderAdapter.safeUpdate): the same classification, on the wire shape. */
export function kommoSafeUpdate(method: string, path: string, body?: unknown, query?: Iterable<[string, string]>): SafeUpdate | undefined {
  const params = query ? [...query] : [];
  if (methodOverrideParam(params) !== undefined) return undefined;
  const n = normaliseKommoPath(path);
  if (!n.ok) return undefined;
  return classifyKommoRequest(method, n.path, body, params).safeUpdate;
}

/** Wire classification for the HTTP core: unparsable paths are the strongest effect; a method override is refused (throws). */
export function classifyKommo(method: string, path: string, body?: unknown, query?: Iterable<[string, string]>): Effect {
  const params = query ? [...query] : [];
  const override = methodOverrideParam(params);
  if (override !== undefined) throw refuseOverride(override);
  const n = normaliseKommoPath(path);
  if (!n.ok) return 'admin';
  return classifyKommoRequest(method, n.path, body, params).effect;
}
