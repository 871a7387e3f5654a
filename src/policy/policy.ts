/**
 * The safety policy: pure functions, no I/O. Every tool declares one effect; the flags decide which
 * effects are allowed. Safe mode allows creating new records but never changing or removing existing ones.
 */
export const EFFECTS = ['read', 'create', 'update', 'delete'] as const;
export type Effect = (typeof EFFECTS)[number];

export interface PolicyFlags {
  /** Allow any write at all (create; update/delete further depend on the flags below). */
  allowWrites: boolean;
  /** When on (the default), writes may only create new records. */
  safeMode: boolean;
  /** Allow deletes (needs allowWrites and safe mode off). */
  allowDelete: boolean;
}

export const DEFAULT_FLAGS: PolicyFlags = { allowWrites: false, safeMode: true, allowDelete: false };

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
  }
}

export function allowedEffects(flags: PolicyFlags): Effect[] {
  return EFFECTS.filter((e) => isAllowed(flags, e));
}

/** A human sentence naming the flag(s) that would allow the effect. */
export function decide(flags: PolicyFlags, effect: Effect): Decision {
  if (isAllowed(flags, effect)) return { allow: true };
  if (!flags.allowWrites) {
    return { allow: false, reason: `the server is read-only: ${effect} operations need CRM_ALLOW_WRITES=true` };
  }
  if (effect === 'update' || effect === 'delete') {
    if (flags.safeMode) {
      return {
        allow: false,
        reason: `safe mode is on: it allows creating records but never changing or deleting existing ones (set CRM_SAFE_MODE=false${effect === 'delete' ? ' and CRM_ALLOW_DELETE=true' : ''})`,
      };
    }
    return { allow: false, reason: 'deletes are disabled: set CRM_ALLOW_DELETE=true' };
  }
  return { allow: false, reason: `${effect} is not allowed` };
}

export type PolicyMode = 'read-only' | 'create-only' | 'write' | 'full';

export function modeOf(flags: PolicyFlags): PolicyMode {
  if (!flags.allowWrites) return 'read-only';
  if (flags.safeMode) return 'create-only';
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

/** MCP tool annotations derived from the effect (one place, checked by a test for every tool). */
export function annotationsFor(effect: Effect, title: string) {
  return {
    title,
    readOnlyHint: effect === 'read',
    destructiveHint: effect === 'update' || effect === 'delete',
    idempotentHint: effect === 'read' || effect === 'delete',
    openWorldHint: true,
  };
}
