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

/**
 * The narrow updates an operator may admit under safe mode (CRM_SAFE_UPDATES): a deal's stage (its pipeline,
 * won/lost and loss reason with it) and a task marked done. Each is an `update` whose request the wings
 * recognise by its exact shape (kommo effects.ts, bitrix24 call-effects.ts): a request that changes anything
 * else is a plain update, which safe mode refuses.
 */
export const SAFE_UPDATES = ['stage', 'task_done'] as const;
export type SafeUpdate = (typeof SAFE_UPDATES)[number];

const SAFE_UPDATE_WORDS: Record<SafeUpdate, string> = {
  stage: 'moving a lead or deal to another stage (only its stage, pipeline and loss reason)',
  task_done: 'marking a task done (with its result text)',
};

export interface PolicyFlags {
  /** Allow any write at all (create; update/delete further depend on the flags below). */
  allowWrites: boolean;
  /** When on (the default), writes may only create new records. */
  safeMode: boolean;
  /** Allow deletes (needs allowWrites and safe mode off). */
  allowDelete: boolean;
  /** Allow configuration changes and outbound communication (needs allowWrites and safe mode off; independent of allowDelete). */
  allowAdmin: boolean;
  /**
   * The narrow updates safe mode still admits (CRM_SAFE_UPDATES; needs allowWrites). Absent or empty: none.
   * With safe mode off every update is allowed anyway.
   */
  safeUpdates?: readonly SafeUpdate[];
}

/** The on/off flags (every field of PolicyFlags but the list of safe updates). */
export type BooleanFlag = Exclude<keyof PolicyFlags, 'safeUpdates'>;

export const DEFAULT_FLAGS: PolicyFlags = { allowWrites: false, safeMode: true, allowDelete: false, allowAdmin: false };

/** The environment variable behind each flag, and the value that grants it. */
export const FLAG_ENV = {
  allowWrites: 'CRM_ALLOW_WRITES=true',
  safeMode: 'CRM_SAFE_MODE=false',
  allowDelete: 'CRM_ALLOW_DELETE=true',
  allowAdmin: 'CRM_ALLOW_ADMIN=true',
} as const satisfies Record<BooleanFlag, string>;

/** The setting that admits one narrow update under safe mode. */
export const safeUpdateEnv = (kind: SafeUpdate) => `CRM_SAFE_UPDATES=${kind}`;

/** The narrow updates these flags admit under safe mode (sorted, known names only). */
export function safeUpdatesOf(flags: PolicyFlags): SafeUpdate[] {
  return SAFE_UPDATES.filter((k) => flags.safeUpdates?.includes(k));
}

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
  // The safe updates can only shrink: those the operator listed and the narrowing one keeps (if it names any).
  const kept = safeUpdatesOf(flags).filter((k) => narrow.safeUpdates === undefined || narrow.safeUpdates.includes(k));
  return {
    allowWrites: flags.allowWrites && (narrow.allowWrites ?? true),
    safeMode: flags.safeMode || (narrow.safeMode ?? false),
    allowDelete: flags.allowDelete && (narrow.allowDelete ?? true),
    allowAdmin: flags.allowAdmin && (narrow.allowAdmin ?? true),
    ...(kept.length ? { safeUpdates: kept } : {}),
  };
}

export type Decision = { allow: true } | { allow: false; reason: string };

/**
 * Whether the flags allow an effect; `kind` names the narrow update a call is (move_lead: `stage`), which safe
 * mode admits when the operator listed it in CRM_SAFE_UPDATES.
 */
export function isAllowed(flags: PolicyFlags, effect: Effect, kind?: SafeUpdate): boolean {
  if (effect === 'update' && kind !== undefined && admitsSafeUpdate(flags, kind)) return true;
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

/** True when safe mode (with writes on) admits this narrow update because the operator listed it. */
export function admitsSafeUpdate(flags: PolicyFlags, kind: SafeUpdate): boolean {
  return flags.allowWrites && safeUpdatesOf(flags).includes(kind);
}

/** Every flag setting an effect needs (regardless of the current flags). */
export function flagsNeeded(effect: Effect): BooleanFlag[] {
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
export function missingFlags(flags: PolicyFlags, effect: Effect): BooleanFlag[] {
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
export function decide(flags: PolicyFlags, effect: Effect, kind?: SafeUpdate): Decision {
  if (isAllowed(flags, effect, kind)) return { allow: true };
  // A narrow update may also be admitted under safe mode: either setting does, so the refusal names both.
  const missing = missingFlags(flags, effect).map((f) =>
    f === 'safeMode' && effect === 'update' && kind !== undefined ? `(${FLAG_ENV.safeMode} or ${safeUpdateEnv(kind)})` : FLAG_ENV[f],
  );
  if (effect === 'update' && kind !== undefined) {
    const why = !flags.allowWrites
      ? 'the server is read-only'
      : `safe mode is on and CRM_SAFE_UPDATES does not list ${kind}: it allows creating new records but never changing existing ones`;
    return { allow: false, reason: `${why}; ${SAFE_UPDATE_WORDS[kind]} needs ${missing.join(' and ')}` };
  }
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

/** The mode's name; create-only with narrow updates admitted reads `create-only+stage+task_done`. */
export type PolicyMode = 'read-only' | 'create-only' | `create-only+${string}` | 'write' | 'full' | 'admin' | 'full+admin';

export function modeOf(flags: PolicyFlags): PolicyMode {
  if (!flags.allowWrites) return 'read-only';
  if (flags.safeMode) return ['create-only', ...safeUpdatesOf(flags)].join('+') as PolicyMode;
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
  private readonly narrow: ReadonlySet<SafeUpdate>;
  /** `narrowUpdates`: updates admitted only when the wing classifies the request as exactly that narrow update. */
  constructor(effects: Iterable<Effect>, narrowUpdates: Iterable<SafeUpdate> = []) {
    this.effects = new Set(effects);
    this.narrow = new Set(narrowUpdates);
  }
  static readOnly(): Grant {
    return new Grant(['read']);
  }
  /** The grant for a call whose decided effect is `effect`: that effect plus reads. */
  static for(effect: Effect): Grant {
    return new Grant(effect === 'read' ? ['read'] : ['read', effect]);
  }
  /** Reads plus one narrow update: no other update, and no create, delete or admin request. */
  static narrowUpdate(kind: SafeUpdate): Grant {
    return new Grant(['read'], [kind]);
  }
  /** Whether every request of this effect is admitted (a narrow update is not: see admits). */
  has(effect: Effect): boolean {
    return this.effects.has(effect);
  }
  /** Whether a request of this effect, which the wing classified as the narrow update `kind` (if any), is admitted. */
  admits(effect: Effect, kind: SafeUpdate | undefined): boolean {
    return this.effects.has(effect) || (effect === 'update' && kind !== undefined && this.narrow.has(kind));
  }
  list(): Effect[] {
    return EFFECTS.filter((e) => this.effects.has(e));
  }
  /** The narrow updates admitted beyond `list()`. */
  narrowUpdates(): SafeUpdate[] {
    return SAFE_UPDATES.filter((k) => this.narrow.has(k));
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
