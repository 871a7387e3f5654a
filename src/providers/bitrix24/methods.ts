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
 * - anything not in the table counts as admin, the strongest effect.
 * Method names are normalised (trimmed, lower-cased, NFKC, `.json`/`.xml` and trailing dots or slashes
 * dropped) and must then be plain ASCII dotted words: a look-alike letter makes a name invalid, not weaker.
 */
import { strongestEffect, type Effect } from '../../policy/policy.js';

/** Last segments that only read (checked after the traps below). */
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

/** Known traps, decided by full name before anything else (fact sheet §8). */
const TRAPS: Record<string, Effect> = {
  'event.offline.get': 'admin', // reads AND deletes the portal's queued events (clear defaults to 1)
  'event.offline.list': 'read',
  'event.offline.clear': 'admin',
  'event.offline.error': 'admin',
  'event.test': 'admin', // fires every handler bound to the event
  'im.notify.read.list': 'admin', // marks notifications read
  'crm.entity.mergebatch': 'delete', // merges records away
  'crm.deal.recurring.expose': 'create', // creates a new deal from a template
  'telephony.externalcall.register': 'create', // logs a new call
  'telephony.externalcall.finish': 'update', // completes that call record
  'telephony.externalcall.attachrecord': 'update',
  'im.chat.user.add': 'update', // adds a member to an existing chat
};

/** The methods that create a new CRM record. Nothing else is a create. */
const CREATE_METHODS = new Set([
  'crm.lead.add',
  'crm.deal.add',
  'crm.contact.add',
  'crm.company.add',
  'crm.quote.add',
  'crm.item.add',
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
  if (READ_LAST.has(last)) return { effect: 'read', unknown: false };
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

/** True when create params address an existing record (`id`/`ID` at the top or in `fields`), which may update it. */
export function paramsNameExisting(params: unknown): boolean {
  if (!params || typeof params !== 'object') return false;
  const hasId = (o: unknown) => !!o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).some((k) => k.toLowerCase() === 'id');
  return hasId(params) || hasId((params as Record<string, unknown>).fields ?? (params as Record<string, unknown>).FIELDS);
}

/** Parses a batch command's query string enough to see its top-level keys (`id`, `fields[ID]`). */
function queryNamesExisting(query: string): boolean {
  for (const part of query.split('&')) {
    let key: string;
    try {
      key = decodeURIComponent(part.split('=')[0] ?? '').toLowerCase();
    } catch {
      return true; // unreadable: assume the worst
    }
    if (key === 'id' || /^fields\[id\]/.test(key)) return true;
  }
  return false;
}

/** The effect of a call: its method's, raised to update when a create names an existing record. */
export function classifyCall(method: string, params: unknown): Effect {
  const effect = classifyMethod(method);
  return effect === 'create' && paramsNameExisting(params) ? 'update' : effect;
}

/** @deprecated name kept for callers; use strongestEffect. */
export function maxEffect(effects: Effect[]): Effect {
  return strongestEffect(effects);
}

export interface BatchCheck {
  effect: Effect;
  /** Set when the batch is refused outright (malformed or nested batch). */
  problem?: string;
  commands: Array<{ key: string; method: string; query: string; effect: Effect; unknown: boolean }>;
}

/**
 * Classifies a batch's `cmd` (map or array of `method?query`): the batch is as strong as its strongest
 * command. A nested batch or a command that is not a plain method name makes the whole batch invalid.
 */
export function classifyBatch(cmd: unknown): BatchCheck {
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
    const d = classifyMethodDetail(method);
    const effect = d.effect === 'create' && queryNamesExisting(query) ? 'update' : d.effect;
    commands.push({ key, method, query, effect, unknown: d.unknown });
  }
  return { effect: strongestEffect(commands.map((c) => c.effect)), commands };
}

/** The batch's commands rewritten with their normalised method names, so what was classified is what is sent. */
export function normalisedCommands(check: BatchCheck, original: unknown): Record<string, string> | string[] {
  const line = (c: BatchCheck['commands'][number]) => (c.query ? `${c.method}?${c.query}` : c.method);
  if (Array.isArray(original)) return check.commands.map(line);
  return Object.fromEntries(check.commands.map((c) => [c.key, line(c)]));
}
