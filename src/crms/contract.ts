/**
 * The plug-in contract of a CRM wing: everything the general code (config, doctor, sign-in, the sandbox,
 * metrics, the tool registry) needs to know about one CRM, so none of it names a CRM. A wing exports one
 * CrmModule from its `module.ts`; `registry.ts` lists the modules, and that list is the only general place a
 * CRM is named. Every optional part that a wing leaves out simply does not appear for it (no doctor probe, no
 * `crm-mcp auth <name>`, no emulator for `--sandbox`).
 */
import type { Logger } from 'pino';
import type { EnvVar } from '../config/env-types.js';
import type { Source } from '../config/sources.js';
import type { HttpEvent } from '../http/client.js';
import type { PolicyFlags } from '../policy/policy.js';
import type { Store } from '../store/store.js';
import type { ConnectionReport, DeepProbe, DeepReport } from './doctor-types.js';
import type { EventsPart } from './events-contract.js';
import type { Capability, CrmProvider } from './types.js';

/** What every connection has; each wing's connection type adds its own fields. */
export interface ConnectionBase {
  /** The connection's name (`kommo`, `bitrix24` or a `--config` file's key). */
  name: string;
  /** The CrmModule `kind` that serves it. */
  provider: string;
  policy: PolicyFlags;
}

/** What every provider is built with. */
export interface ProviderDeps {
  store: Store;
  logger?: Logger;
  onEvent?: (e: HttpEvent) => void;
  /**
   * Origins of emulators the caller started (`--sandbox`, tests): a credential may follow a redirect between
   * two of these loopback addresses. Passed in at build time; empty for a real account.
   */
  trustedOrigins?: readonly string[];
}

/** ProviderDeps plus the process-wide HTTP settings. */
export interface BuildDeps extends ProviderDeps {
  /** `backoffBaseMs`: the first retry's pause (doctor waits less than the server). */
  http: { timeoutMs: number; maxRetries: number; backoffBaseMs?: number };
  /** The Redis-backed limiters, loaded only when a Redis store is configured (they pull in rate-limiter-flexible). */
  shared?: typeof import('../http/shared-limiter.js');
}

/** How a wing reads its connection from the environment or from one entry of a `--config` file. */
export interface ConnectionSpec<C extends ConnectionBase = ConnectionBase> {
  /**
   * The connection `src` describes, or undefined when nothing of this CRM is set there. Problems are pushed,
   * naming the source's own keys (`src.label`), never a guess towards more access.
   */
  parse(src: Source, policy: PolicyFlags, problems: string[]): C | undefined;
  /** The problem for a `--config` connection of this kind that sets nothing usable. */
  incomplete(src: Source): string;
  /** The credentials in a connection, registered with the redactor before anything can print them. */
  secrets(c: C): ReadonlyArray<string | undefined>;
  /**
   * The least to set for this CRM, naming its variables (`KOMMO_SUBDOMAIN and KOMMO_ACCESS_TOKEN`): "No CRM
   * configured: set <setup> (<fullLabel>) or …" and doctor's "Set <setup>, or …, or pass --config FILE".
   */
  readonly setup: string;
  /** The account's address as people know it (doctor, logs). */
  address(c: C): string;
  /**
   * doctor's fix for a configuration problem about this CRM's settings, tried before the generic rules; `v` is
   * the row the problem names (if any) and `label` the name it used.
   */
  fix?(problem: string, v: EnvVar | undefined, label: string): string | undefined;
}

/**
 * A CRM module. `T` is the type of the tools it brings (tools/define.ts `AnyTool`): a type parameter, so this
 * contract stays below the tool layer while the registry and the wings, which sit above it, bind it; a module
 * without tools of its own leaves it out.
 */
export interface CrmModule<C extends ConnectionBase = ConnectionBase, T = never> {
  /** The connections' `provider` value it serves, and the `kind` of the providers it builds. */
  readonly kind: string;
  /** How people name the CRM. */
  readonly label: string;
  /** The name with the CRM's other brands (`Kommo/amoCRM`), where its settings are described (server.json, "No CRM configured"); default `label`. */
  readonly fullLabel?: string;
  /** What its providers can do; tools are registered by it (types.ts). */
  readonly capabilities: ReadonlySet<Capability>;
  /** Its rows of the environment table (env-types.ts), `group` = its kind. */
  readonly env: readonly EnvVar[];
  readonly connection: ConnectionSpec<C>;
  /** A ready provider (credentials loaded) for one connection. Method syntax: each module narrows `conn`. */
  build(conn: C, deps: BuildDeps): Promise<CrmProvider>;
  /**
   * Its own tools: what only this CRM has (its raw API, tools whose words and defaults are its own). Each sets
   * `crmKind` to this module's kind; the server registers them for this module's connections only, after the
   * general tools of the same toolset (registry.ts `allTools`), and `requires` still applies.
   */
  readonly tools?: readonly T[];
  /** `crm-mcp doctor` (and `--deep`): its checks of a connection; without it the connection is reported as not checked. */
  readonly doctor?: DoctorPart<C>;
  /** `crm-mcp auth <name>`: its OAuth sign-in. */
  readonly signIn?: SignInPart;
  /** `--sandbox`: its emulator with demo data. */
  readonly sandbox?: SandboxPart;
  /** Events: its webhook receiver, offline pull, `crm-mcp events bind|unbind` (events-contract.ts). */
  readonly events?: EventsPart<C>;
  /**
   * The metrics `endpoint` label of one request (method, path as sent): a bounded set (anything unknown is
   * `other`) that never carries a secret or an id. Without it every request of this CRM is `other`.
   */
  metricsLabel?(method: string, path: string): string;
}

// ---------------------------------------------------------------- doctor, sign-in, --sandbox

/** What `crm-mcp doctor` hands a wing's check of one connection. */
export interface DoctorDeps {
  store: Store;
  /** `--deep`: names are left out of the report (fit to paste), and the probe then runs on the provider returned. */
  deep: boolean;
  /** The provider for the connection, built through the module as the server builds it (with doctor's shorter timeouts). */
  build(): Promise<CrmProvider>;
}

export interface DoctorPart<C extends ConnectionBase = ConnectionBase> {
  /**
   * Checks one connection (configuration, token, reaching the account, scopes; then pushCommon) and says, for
   * each problem, what to do. `provider`: the one that reached the account, for `--deep`.
   */
  check(conn: C, deps: DoctorDeps): Promise<{ report: ConnectionReport; provider?: CrmProvider }>;
  /** `--deep`: the CRM's part of the read-only probe, for a provider this module built (doctor-types.ts). */
  deep?(provider: CrmProvider): Promise<DeepProbe>;
  /** Lines the text report adds under the deep probe's summary for what only this CRM reports (e.g. an operating budget). */
  renderDeep?(d: DeepReport): string[];
}

/** What `crm-mcp auth <name>` hands a wing's sign-in. */
export interface SignInContext {
  /** The name it was called with: one of SignInPart.names. */
  name: string;
  env: Readonly<Record<string, string | undefined>>;
  configPath?: string;
  /** `--connection NAME`. */
  connection?: string;
  /** The configuration as the server loads it (throws its problems). */
  loadConfig(): { store?: string; connections: readonly ConnectionBase[] };
  /** The error for a setup problem (the command exits 2 with it). */
  problem(messages: string[]): Error;
}

/** One sign-in, prepared: the general command listens for the redirect and runs these steps in order. */
export interface SignInFlow {
  /** The redirect URI registered with the integration/app, and the variable it was read from (for messages). */
  readonly redirectUri: string;
  readonly redirectVar: string;
  /** Appended to the refusal of a redirect URI the command cannot listen on: what else can be done. */
  readonly redirectAlternative?: string;
  /** The token store as configured (undefined: the default file). */
  readonly store: string | undefined;
  /** Who is allowed access on the consent page ("the Kommo integration"). */
  readonly grantee: string;
  /** Whose tokens are saved ("Kommo"). */
  readonly brand: string;
  consentUrl(state: string): string;
  /** Checks the redirect's answer (`state` first), exchanges the code and saves the tokens; the lines to print. */
  finish(store: Store, state: string, answer: URL): Promise<string[]>;
}

/** Settings a sign-in learnt that the configuration does not carry yet (e.g. the account address a CRM named). */
export interface Learnt {
  /** Variables to read as if set. */
  env: Record<string, string>;
  /** Said by `config claude` when it adds them. */
  note: string;
  /** doctor's fix for a configuration problem these settings answer (undefined: not one of those). */
  fix(problem: string): string | undefined;
}

export interface SignInPart {
  /** The names `crm-mcp auth <name>` takes for it, the usual one first. */
  readonly names: readonly string[];
  /** What it signs in to, for the usage text: "integration (Kommo/amoCRM)". */
  readonly what: string;
  /** What it needs, for the usage text: "Kommo needs …". */
  readonly needs: string;
  prepare(ctx: SignInContext): Promise<SignInFlow>;
  /** What an earlier sign-in learnt for this environment; `openStore` opens the configured token store. */
  learnt?(env: Readonly<Record<string, string | undefined>>, openStore: () => Promise<Store>): Promise<Learnt | undefined>;
}

/** An emulator `--sandbox` started. */
export interface SandboxRun {
  /** Its connections, with the policy the environment sets. */
  connections(policy: PolicyFlags): ConnectionBase[];
  /** Its origin: a redirect between two emulators may carry the credential (BuildDeps.trustedOrigins). */
  readonly origin: string;
  /** How the start-up banner names what it emulates: "Kommo account", "Bitrix24 portal". */
  readonly what: string;
  close(): Promise<void>;
}

export interface SandboxPart {
  /** Starts the emulator with demo data (loaded only now: the emulators are not part of the server). */
  start(): Promise<SandboxRun>;
}
