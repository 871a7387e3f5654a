/**
 * Classifies Bitrix24 REST methods as read / create / update / delete / admin (fact sheet §8: there is no
 * official classification, so this is a vetted table). The rules say what users mean by the policy:
 * - create: a new CRM record only (lead, deal, contact, company, smart-process item, activity, timeline
 *   comment, task, call) — by full method name, never by the last word alone;
 * - update: a change to an existing record, including bindings between existing records
 *   (`crm.deal.contact.add` binds a contact to an existing deal; `crm.activity.binding.add`…);
 * - delete: removing or replacing data (`*.delete`, `*.set` collection replaces, merges);
 * - admin: portal configuration (event bindings, placements, users, departments, user fields, pipelines,
 *   stages, automation, business processes, integrations) and outbound communication (chats, messages,
 *   notifications, SMS, mail, bots);
 * - a method is a read only when the table says so: a whole name in READ_METHODS, or a read word after a
 *   vetted namespace (READ_NAMESPACES); `crm.lead.update.get` is no read, whatever its last word;
 * - anything not in the table counts as admin, the strongest effect.
 * The parameters can raise a method's effect, never lower it (call-effects.ts).
 * Method names are normalised (trimmed, lower-cased, NFKC, `.json`/`.xml` and trailing dots or slashes
 * dropped) and must then be plain ASCII dotted words: a look-alike letter makes a name invalid, not weaker.
 */
import { strongestEffect, type Effect, type SafeUpdate } from '../../policy/policy.js';
import { checkParams, foldTop, narrowBatch, parseBatchQuery, type ReadOptions } from './call-effects.js';

/** Last segments that only read, after a vetted namespace (checked after the traps below). */
const READ_LAST = new Set([
  'get',
  'list',
  'getlist',
  'fields',
  'getfields',
  'getfieldsbyfilter',
  'getfieldsbytype',
  'gettypes',
  'search',
  'current',
  'count',
  'getmanifest',
  'isactionallowed',
  'getbyid',
  'getchildren',
  'getpreview',
  'getrights',
  'tail',
  'findbycomm',
]);

/** Whole method names that read although their last segment does not say so. */
const READ_METHODS = new Set([
  'profile',
  'scope',
  'methods',
  'method.get',
  'app.info',
  'server.time',
  'user.current',
  'events',
  'crm.settings.mode.get',
  'crm.status.entity.items',
  'crm.status.entity.types',
  'crm.enum.ownertype',
  'crm.enum.fields',
  'crm.enum.activitytype',
  'crm.enum.contenttype',
  'crm.enum.activitydirection',
  'crm.enum.addresstype',
  'crm.enum.settings.mode',
]);

/**
 * Namespaces whose methods ending in a read word only read (fact sheet §8: the read words are a convention,
 * not a rule, so only namespaces whose reads were looked at count). A read word after anything else (an
 * unknown namespace, or a write word as in `crm.lead.update.get`) is no read.
 */
const READ_NAMESPACES = new Set([
  ...['lead', 'deal', 'contact', 'company', 'quote', 'item'].map((e) => `crm.${e}`),
  ...['lead', 'deal', 'contact', 'company', 'quote'].map((e) => `crm.${e}.userfield`),
  ...['lead', 'deal', 'quote'].flatMap((e) => [`crm.${e}.contact`, `crm.${e}.contact.items`, `crm.${e}.productrows`]),
  'crm.contact.company',
  'crm.contact.company.items',
  'crm.company.contact',
  'crm.company.contact.items',
  'crm.deal.recurring',
  'crm.item.productrow',
  'crm.productrow',
  'crm.activity',
  'crm.activity.binding',
  'crm.activity.communication',
  'crm.activity.type',
  'crm.timeline.comment',
  'crm.timeline.note',
  'crm.timeline.bindings',
  'crm.stagehistory',
  'crm.status',
  'crm.status.entity',
  'crm.category',
  'crm.dealcategory',
  'crm.dealcategory.stage',
  'crm.dealcategory.default',
  'crm.type',
  'crm.userfield',
  'crm.duplicate',
  'crm.enum',
  'crm.multifield',
  'crm.requisite',
  'crm.requisite.bankdetail',
  'crm.requisite.link',
  'crm.requisite.preset',
  'crm.address',
  'crm.currency',
  'crm.vat',
  'crm.measure',
  'crm.product',
  'crm.productsection',
  'crm.productproperty',
  'user',
  'user.userfield',
  'department',
  'tasks.task',
  'task.item',
  'task.commentitem',
  'task.checklistitem',
  'task.elapseditem',
  'event',
  'placement',
]);

/** Words that change something: a read word after one of them is no read (`crm.lead.update.get`). */
const WRITE_WORDS = new Set(['add', 'update', 'delete', 'set', 'bind', 'unbind', 'register', 'unregister', 'send', 'expose', 'complete', 'start']);

/** Known traps, decided by full name before anything else (fact sheet §8). */
const TRAPS: Record<string, Effect> = {
  'event.offline.get': 'admin', // reads AND deletes the portal's queued events (clear defaults to 1)
  'event.offline.list': 'read',
  'event.offline.clear': 'admin',
  'event.offline.error': 'admin',
  'event.test': 'admin', // fires every handler bound to the event
  'im.notify.read.list': 'admin', // marks notifications read
  'crm.entity.mergebatch': 'delete', // merges records away
  // Creates a deal from an existing recurring template and advances that template (its next run, its count
  // of deals made): it changes an existing record, so it is an update and cannot run in create-only mode.
  'crm.deal.recurring.expose': 'update',
  // register + finish (+ attachRecord, after finish) make one new call, its activity and its recording (fact sheet 3.3).
  'telephony.externalcall.register': 'create',
  'telephony.externalcall.finish': 'create',
  'telephony.externalcall.attachrecord': 'create',
  'im.chat.user.add': 'admin', // grants the person the chat's history as well as a seat in it
};

/** The methods that create a new CRM record. Nothing else is a create. */
const CREATE_METHODS = new Set([
  'crm.lead.add',
  'crm.deal.add',
  'crm.contact.add',
  'crm.company.add',
  'crm.quote.add',
  'crm.item.add',
  'crm.item.batchimport', // ≤ 20 new records, automations skipped (§7.9)
  'crm.activity.add',
  'crm.activity.todo.add',
  'crm.timeline.comment.add',
  'crm.timeline.logmessage.add',
  'tasks.task.add',
  'task.item.add',
  'task.commentitem.add',
]);

/** Record families whose `.update` changes an existing record and whose `.delete` removes one. */
const RECORD_FAMILIES = [
  'crm.lead',
  'crm.deal',
  'crm.contact',
  'crm.company',
  'crm.quote',
  'crm.item',
  'crm.activity',
  'crm.activity.todo',
  'crm.timeline.comment',
  'crm.timeline.note',
  'crm.requisite',
  'crm.requisite.bankdetail',
  'crm.address',
  'tasks.task',
  'task.item',
  'task.commentitem',
  'task.checklistitem',
  'task.elapseditem',
];

/** Changes to an existing task (by its last word), as the task module names them. */
const TASK_ACTIONS = new Set([
  'complete',
  'renew',
  'start',
  'pause',
  'defer',
  'approve',
  'disapprove',
  'delegate',
  'startwatch',
  'stopwatch',
  'mute',
  'unmute',
  'favorite',
]);

/** Bindings between existing records: adding or removing one changes an existing record. */
const BINDINGS: Array<[RegExp, Effect]> = [
  [/^crm\.(lead|deal|quote)\.contact\.(add|delete)$/, 'update'],
  [/^crm\.contact\.company\.(add|delete)$/, 'update'],
  [/^crm\.company\.contact\.(add|delete)$/, 'update'],
  [/^crm\.(lead|deal|quote|contact|company)\.(contact|company)\.items\.delete$/, 'update'],
  [/^crm\.activity\.binding\.(add|delete)$/, 'update'],
  [/^crm\.timeline\.bindings\.(bind|unbind)$/, 'update'],
  [/^crm\.item\.productrow\.(add|update)$/, 'update'],
  [/^crm\.item\.productrow\.delete$/, 'delete'],
  [/^crm\.requisite\.link\.(register|unregister)$/, 'update'],
  // `set` replaces a whole collection: rows or contacts not passed are removed (fact sheet §8).
  [/^crm\.(lead|deal|quote|contact|company)\.(contact|company)\.items\.set$/, 'delete'],
  [/^crm\.(lead|deal|quote|item)\.productrows?\.set$/, 'delete'],
  [/^crm\.item\.productrow\.set$/, 'delete'],
  [/^crm\.activity\.complete$/, 'update'],
];

/** Namespaces of portal configuration and outbound communication: every non-read method there is admin. */
const ADMIN_PREFIXES = [
  'event.',
  'placement.',
  'user.',
  'department.',
  'userfieldtype.',
  'userfieldconfig.',
  'crm.userfield.',
  'crm.category.',
  'crm.dealcategory.',
  'crm.status.',
  'crm.type.',
  'crm.automation.',
  'crm.automatedsolution.',
  'crm.webform.',
  'crm.sitebutton.',
  'crm.externalchannel.',
  'crm.currency.',
  'crm.vat.',
  'crm.measure.',
  'crm.paysystem.',
  'crm.requisite.preset.',
  'crm.activity.type.',
  'crm.activity.configurable.',
  'crm.documentgenerator.',
  'crm.settings.',
  'bizproc.',
  'im.',
  'imbot.',
  'imopenlines.',
  'imconnector.',
  'messageservice.',
  'mailservice.',
  'mail.',
  'telephony.',
  'voximplant.',
  'app.',
  'entity.',
  'landing.',
  'sonet_group.',
  'log.',
  'calendar.',
  'disk.',
  'catalog.',
  'sale.',
  'crm.product.',
  'crm.productsection.',
  'crm.productproperty.',
  'timeman.',
  'lists.',
  'pull.',
  'rest.',
  'socialnetwork.',
  'biconnector.',
];

const NAME_RE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

/**
 * Normalises a method name the way the server reads it (§1.1): trimmed, lower-cased, without `.json`/`.xml`,
 * trailing slashes or dots; NFKC folds full-width letters to ASCII. Anything that is then not plain ASCII
 * dotted words (look-alike letters, spaces, `?`, `/`) is not a method name.
 */
export function normalizeMethod(raw: string): string | undefined {
  let m = raw.normalize('NFKC').trim().toLowerCase();
  m = m.replace(/[/.]+$/, '');
  m = m.replace(/\.(json|xml)$/, '');
  m = m.replace(/[/.]+$/, '');
  return NAME_RE.test(m) ? m : undefined;
}

export interface MethodClass {
  effect: Effect;
  /** True when no rule named the method: the effect is admin because it is unknown. */
  unknown: boolean;
}

/** The effect of one normalised method, with whether the table knew it. */
export function classifyMethodDetail(method: string): MethodClass {
  const trap = TRAPS[method];
  if (trap) return { effect: trap, unknown: false };
  if (method === 'batch') return { effect: 'read', unknown: false }; // classified command by command (classifyBatch)
  if (READ_METHODS.has(method)) return { effect: 'read', unknown: false };
  const dot = method.lastIndexOf('.');
  const last = method.slice(dot + 1);
  const family = dot > 0 ? method.slice(0, dot) : '';
  if (READ_LAST.has(last) && READ_NAMESPACES.has(family) && !family.split('.').some((w) => WRITE_WORDS.has(w))) return { effect: 'read', unknown: false };
  if (CREATE_METHODS.has(method)) return { effect: 'create', unknown: false };
  for (const [re, effect] of BINDINGS) if (re.test(method)) return { effect, unknown: false };
  if (ADMIN_PREFIXES.some((p) => method.startsWith(p))) return { effect: 'admin', unknown: false };
  if (RECORD_FAMILIES.includes(family)) {
    if (last === 'update') return { effect: 'update', unknown: false };
    if (last === 'delete') return { effect: 'delete', unknown: false };
    if ((family === 'tasks.task' || family === 'task.item') && TASK_ACTIONS.has(last)) return { effect: 'update', unknown: false };
  }
  return { effect: 'admin', unknown: true };
}

/** The effect of one (normalised) method. Unknown → admin. */
export function classifyMethod(method: string): Effect {
  return classifyMethodDetail(method).effect;
}

/** One call's effect: its method's, raised by what its parameters do (call-effects.ts). */
export interface CallCheck {
  effect: Effect;
  /** True when the method is not in the table (so it counts as admin). */
  unknown: boolean;
  /** Set when the portal would read the parameters ambiguously: the call is refused. */
  problem?: string;
  /** Why the parameters raised the effect. */
  reasons: string[];
  /** Set when the call is exactly one narrow update (CRM_SAFE_UPDATES, call-effects.ts narrowUpdateOf). */
  safeUpdate?: SafeUpdate;
}

export function checkCall(method: string, params: unknown, o: ReadOptions = {}): CallCheck {
  const d = classifyMethodDetail(method);
  return { ...checkParams(method, d.effect, params, o), unknown: d.unknown };
}

/** The effect of a call as the portal will run it; a call it would read ambiguously counts as admin. */
export function classifyCall(method: string, params: unknown, o: ReadOptions = {}): Effect {
  const c = checkCall(method, params, o);
  return c.problem ? 'admin' : c.effect;
}

export interface BatchCheck {
  effect: Effect;
  /** Set when the batch is refused outright (malformed, ambiguous or nested batch). */
  problem?: string;
  commands: Array<Omit<CallCheck, 'problem'> & { key: string; method: string; query: string; params: Record<string, unknown> }>;
  /** Set when every write in the batch is the same narrow update (its other commands only read). */
  safeUpdate?: SafeUpdate;
}

/**
 * Classifies a batch's `cmd` (map or array of `method?query`): the batch is as strong as its strongest
 * command, and each command as its method raised by its parameters, parsed as the portal parses them. A
 * nested batch, a command that is not a plain method name, or a query the portal could read differently
 * makes the whole batch invalid.
 */
export function classifyBatch(cmd: unknown, o: ReadOptions = {}): BatchCheck {
  const entries: Array<[string, unknown]> = Array.isArray(cmd)
    ? cmd.map((v, i) => [String(i), v])
    : cmd && typeof cmd === 'object'
      ? Object.entries(cmd as Record<string, unknown>)
      : [];
  if (entries.length === 0) return { effect: 'read', problem: 'batch needs a non-empty `cmd` (a map or array of "method?query" strings)', commands: [] };
  if (entries.length > 50) return { effect: 'admin', problem: `batch takes at most 50 commands (got ${entries.length})`, commands: [] };
  const commands: BatchCheck['commands'] = [];
  for (const [key, value] of entries) {
    if (typeof value !== 'string') return { effect: 'admin', problem: `batch command "${key}" is not a "method?query" string`, commands };
    const q = value.indexOf('?');
    const method = normalizeMethod(q >= 0 ? value.slice(0, q) : value);
    if (!method) return { effect: 'admin', problem: `batch command "${key}": "${value.slice(0, 80)}" is not a method name`, commands };
    if (method === 'batch') return { effect: 'admin', problem: 'nested batch is not allowed', commands };
    const query = q >= 0 ? value.slice(q + 1) : '';
    // The portal splits a command with parse_url: whatever follows a `#` would be dropped unseen.
    if (query.includes('#')) return { effect: 'admin', problem: `batch command "${key}" contains "#" (escape it as %23)`, commands };
    const parsed = parseBatchQuery(query);
    if ('problem' in parsed) return { effect: 'admin', problem: `batch command "${key}": ${parsed.problem}`, commands };
    const c = checkCall(method, parsed.params, { ...o, inBatch: true });
    if (c.problem) return { effect: 'admin', problem: `batch command "${key}": ${c.problem}`, commands };
    commands.push({ key, method, query, params: parsed.params, effect: c.effect, unknown: c.unknown, reasons: c.reasons, safeUpdate: c.safeUpdate });
  }
  const effect = strongestEffect(commands.map((c) => c.effect));
  return { effect, commands, ...narrowBatch(effect, commands) };
}

/**
 * A batch call's parameters as the portal reads them (§4.2: names upper-cased, the later of two wins): only
 * `cmd` and `halt` count, so two names folding to either are refused, and the body sent is built from those
 * two alone.
 */
export function classifyBatchParams(params: unknown, o: ReadOptions = {}): BatchCheck & { halt?: unknown; cmd?: unknown } {
  const p = params && typeof params === 'object' && !Array.isArray(params) ? (params as Record<string, unknown>) : {};
  for (const name of ['CMD', 'HALT']) {
    const keys = Object.keys(p).filter((k) => foldTop(k) === name);
    if (keys.length > 1)
      return {
        effect: 'admin',
        problem: `params has ${keys.map((k) => `"${k}"`).join(' and ')}, which the portal reads as one ${name.toLowerCase()}`,
        commands: [],
      };
  }
  const cmdKey = Object.keys(p).find((k) => foldTop(k) === 'CMD');
  const haltKey = Object.keys(p).find((k) => foldTop(k) === 'HALT');
  const cmd = cmdKey === undefined ? undefined : p[cmdKey];
  return { ...classifyBatch(cmd, o), cmd, ...(haltKey !== undefined ? { halt: p[haltKey] } : {}) };
}

/** The batch's commands rewritten with their normalised method names, so what was classified is what is sent. */
export function normalisedCommands(check: BatchCheck, original: unknown): Record<string, string> | string[] {
  const line = (c: BatchCheck['commands'][number]) => (c.query ? `${c.method}?${c.query}` : c.method);
  if (Array.isArray(original)) return check.commands.map(line);
  return Object.fromEntries(check.commands.map((c) => [c.key, line(c)]));
}
