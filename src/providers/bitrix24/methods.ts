/**
 * Classifies Bitrix24 REST methods as read / create / update / delete (fact sheet §8: there is no official
 * classification, so this is a vetted table by the method name's last segment plus known traps).
 * Anything not in the table counts as a delete: refused unless deletes are allowed.
 */
import type { Effect } from '../../policy/policy.js';

/** Last segments that only read. */
const READ = new Set([
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

/** Whole method names that read although their last segment says otherwise (or is ambiguous). */
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

const CREATE = new Set(['add']);

/** Changes existing records. */
const UPDATE = new Set([
  'update',
  'bind',
  'attach',
  'move',
  'complete',
  'renew',
  'start',
  'pause',
  'defer',
  'approve',
  'disapprove',
  'delegate',
  'pin',
  'unpin',
  'rename',
  'setowner',
  'mute',
  'unmute',
]);

/**
 * Removes or replaces data. `set` replaces whole collections (productrows.set removes the rows not passed,
 * contact.items.set unlinks contacts not listed), so it is treated as destructive.
 */
const DELETE = new Set(['delete', 'remove', 'unbind', 'unregister', 'unset', 'clear', 'reset', 'deletebyfilter', 'detach', 'set', 'mergebatch']);

/** Known traps, decided by full name before the table (fact sheet §8). */
const TRAPS: Record<string, Effect> = {
  'event.offline.get': 'delete', // deletes what it returns (clear defaults to 1)
  'event.offline.list': 'read',
  'crm.entity.mergebatch': 'delete', // merges records away
  'crm.deal.recurring.expose': 'create', // creates a deal
  'event.test': 'update', // fires handlers
  batch: 'read', // classified command by command by classifyBatch
};

const NAME_RE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

/** Normalises a method name the way the server does (§1.1): trimmed, lower-cased, without `.json`/`.xml`/trailing slash. */
export function normalizeMethod(raw: string): string | undefined {
  let m = raw.trim().toLowerCase();
  m = m.replace(/\/+$/, '');
  m = m.replace(/\.(json|xml)$/, '');
  return NAME_RE.test(m) ? m : undefined;
}

/** The effect of one (normalised) method. Unknown → delete. */
export function classifyMethod(method: string): Effect {
  const trap = TRAPS[method];
  if (trap) return trap;
  if (READ_METHODS.has(method)) return 'read';
  const last = method.slice(method.lastIndexOf('.') + 1);
  if (READ.has(last)) return 'read';
  if (CREATE.has(last)) return 'create';
  if (UPDATE.has(last)) return 'update';
  if (DELETE.has(last)) return 'delete';
  return 'delete';
}

const ORDER: Effect[] = ['read', 'create', 'update', 'delete'];

export function maxEffect(effects: Effect[]): Effect {
  return effects.reduce<Effect>((a, b) => (ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a), 'read');
}

export interface BatchCheck {
  effect: Effect;
  /** Set when the batch is refused outright (malformed or nested batch). */
  problem?: string;
  commands: Array<{ key: string; method: string; effect: Effect }>;
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
  if (entries.length > 50) return { effect: 'delete', problem: `batch takes at most 50 commands (got ${entries.length})`, commands: [] };
  const commands: BatchCheck['commands'] = [];
  for (const [key, value] of entries) {
    if (typeof value !== 'string') return { effect: 'delete', problem: `batch command "${key}" is not a "method?query" string`, commands };
    const q = value.indexOf('?');
    const method = normalizeMethod(q >= 0 ? value.slice(0, q) : value);
    if (!method) return { effect: 'delete', problem: `batch command "${key}": "${value.slice(0, 80)}" is not a method name`, commands };
    if (method === 'batch') return { effect: 'delete', problem: 'nested batch is not allowed', commands };
    commands.push({ key, method, effect: classifyMethod(method) });
  }
  return { effect: maxEffect(commands.map((c) => c.effect)), commands };
}
