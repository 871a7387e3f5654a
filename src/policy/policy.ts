/**
 * The safety policy: pure functions, no I/O. Every tool declares one effect; the flags decide which
 * effects are allowed. Safe mode allows creating new records but never changing or removing existing ones.
 *
 * The effects, weakest first:
 * - read: nothing changes;
 * - create: a new CRM record (lead/deal, contact, company, note, task, call) and nothing else;
 * - update: a change to an existing record, including links and bindings between existing records;
 * - delete: removes or replaces data;
 * - admin: account/portal configuration (webhooks, event bindings, users, fields, pipelines, automation,
 *   integrations) and outbound communication (messages, SMS, bots, notifications). Never implied by any
 *   other flag: it needs CRM_ALLOW_ADMIN=true with writes on and safe mode off.
 * Anything that cannot be classified counts as admin, the strongest effect.
 */
export const EFFECTS = ['read', 'create', 'update', 'delete', 'admin'] as const;
export type Effect = (typeof EFFECTS)[number];

export interface PolicyFlags {
  /** Allow any write at all (create; update/delete further depend on the flags below). */
  allowWrites: boolean;
  /** When on (the default), writes may only create new records. */
  safeMode: boolean;
  /** Allow deletes (needs allowWrites and safe mode off). */
  allowDelete: boolean;
  /** Allow configuration changes and outbound communication (needs allowWrites and safe mode off; independent of allowDelete). */
  allowAdmin: boolean;
}

export const DEFAULT_FLAGS: PolicyFlags = { allowWrites: false, safeMode: true, allowDelete: false, allowAdmin: false };

/** The environment variable behind each flag, and the value that grants it. */
export const FLAG_ENV = {
  allowWrites: 'CRM_ALLOW_WRITES=true',
  safeMode: 'CRM_SAFE_MODE=false',
  allowDelete: 'CRM_ALLOW_DELETE=true',
  allowAdmin: 'CRM_ALLOW_ADMIN=true',
} as const satisfies Record<keyof PolicyFlags, string>;

/** The strongest of a set of effects (the effect of a batch, or of a generic tool under a policy). */
export function strongestEffect(effects: Iterable<Effect>): Effect {
  let best: Effect = 'read';
  for (const e of effects) if (EFFECTS.indexOf(e) > EFFECTS.indexOf(best)) best = e;
  return best;
}

/**
 * The stricter of two policies: `narrow` can only take permissions away (a per-request header asking for
 * read-only), never add them; a field it leaves out keeps the operator's value.
 */
export function narrowFlags(flags: PolicyFlags, narrow: Partial<PolicyFlags> | undefined): PolicyFlags {
  if (!narrow) return flags;
  return {
    allowWrites: flags.allowWrites && (narrow.allowWrites ?? true),
    safeMode: flags.safeMode || (narrow.safeMode ?? false),
    allowDelete: flags.allowDelete && (narrow.allowDelete ?? true),
    allowAdmin: flags.allowAdmin && (narrow.allowAdmin ?? true),
  };
}

export type Decision = { allow: true } | { allow: false; reason: string };

export function isAllowed(flags: PolicyFlags, effect: Effect): boolean {
  switch (effect) {
    case 'read':
      return true;
    case 'create':
      return flags.allowWrites;
    case 'update':
      return flags.allowWrites && !flags.safeMode;
    case 'delete':
      return flags.allowWrites && !flags.safeMode && flags.allowDelete;
    case 'admin':
      return flags.allowWrites && !flags.safeMode && flags.allowAdmin;
  }
}

/** Every flag setting an effect needs (regardless of the current flags). */
export function flagsNeeded(effect: Effect): Array<keyof PolicyFlags> {
  switch (effect) {
    case 'read':
      return [];
    case 'create':
      return ['allowWrites'];
    case 'update':
      return ['allowWrites', 'safeMode'];
    case 'delete':
      return ['allowWrites', 'safeMode', 'allowDelete'];
    case 'admin':
      return ['allowWrites', 'safeMode', 'allowAdmin'];
  }
}

/** The flag settings still missing for an effect under these flags. */
export function missingFlags(flags: PolicyFlags, effect: Effect): Array<keyof PolicyFlags> {
  return flagsNeeded(effect).filter((f) => (f === 'safeMode' ? flags.safeMode : !flags[f]));
}

const EFFECT_WORDS: Record<Effect, string> = {
  read: 'reads',
  create: 'creating new records',
  update: 'changing existing records',
  delete: 'deleting data',
  admin: 'changing account configuration or sending messages (admin)',
};

export function allowedEffects(flags: PolicyFlags): Effect[] {
  return EFFECTS.filter((e) => isAllowed(flags, e));
}

/**
 * Allow or refuse an effect. A refusal names the current mode and every flag setting still needed, so the
 * operator can act on it without reading the docs.
 */
export function decide(flags: PolicyFlags, effect: Effect): Decision {
  if (isAllowed(flags, effect)) return { allow: true };
  const missing = missingFlags(flags, effect).map((f) => FLAG_ENV[f]);
  const why = !flags.allowWrites
    ? 'the server is read-only'
    : flags.safeMode && effect !== 'create'
      ? 'safe mode is on: it allows creating new records but never changing, deleting or configuring existing ones'
      : effect === 'delete'
        ? 'deletes are disabled'
        : effect === 'admin'
          ? 'admin operations are disabled'
          : `${effect} is not allowed`;
  return { allow: false, reason: `${why}; ${EFFECT_WORDS[effect]} needs ${missing.join(' and ')}` };
}

export type PolicyMode = 'read-only' | 'create-only' | 'write' | 'full' | 'admin' | 'full+admin';

export function modeOf(flags: PolicyFlags): PolicyMode {
  if (!flags.allowWrites) return 'read-only';
  if (flags.safeMode) return 'create-only';
  if (flags.allowAdmin) return flags.allowDelete ? 'full+admin' : 'admin';
  return flags.allowDelete ? 'full' : 'write';
}

/**
 * What a single tool call may send: the effects its decision granted. The HTTP core refuses any
 * outgoing request whose classified effect is not in the grant (defence in depth: a bug in a tool
 * cannot send a write the policy did not allow).
 */
export class Grant {
  private readonly effects: ReadonlySet<Effect>;
  constructor(effects: Iterable<Effect>) {
    this.effects = new Set(effects);
  }
  static readOnly(): Grant {
    return new Grant(['read']);
  }
  /** The grant for a call whose decided effect is `effect`: that effect plus reads. */
  static for(effect: Effect): Grant {
    return new Grant(effect === 'read' ? ['read'] : ['read', effect]);
  }
  has(effect: Effect): boolean {
    return this.effects.has(effect);
  }
  list(): Effect[] {
    return EFFECTS.filter((e) => this.effects.has(e));
  }
}

/**
 * MCP tool annotations derived from the effect (one place, checked by a test for every tool in every mode).
 * A generic tool passes the strongest effect it can have under the active policy, so a client that
 * auto-approves read-only tools never auto-approves a raw write.
 */
export function annotationsFor(effect: Effect, title: string) {
  return {
    title,
    readOnlyHint: effect === 'read',
    destructiveHint: effect === 'update' || effect === 'delete' || effect === 'admin',
    idempotentHint: effect === 'read' || effect === 'delete',
    openWorldHint: true,
  };
}
