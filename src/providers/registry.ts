/**
 * The provider registry: which CRMs crm-mcp can talk to. Each provider folder exports one ProviderModule
 * (`kommo/module.ts`, `bitrix24/module.ts`): its kind, a label, the capabilities it declares and how to build a
 * provider from a configured connection. The factory, the README table and the tests read the modules, so a
 * third CRM is a new folder and one line in DEFAULT_MODULES, not an edit to every tool.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/config.js';
import type { HttpEvent } from '../http/client.js';
import type { Store } from '../store/store.js';
import { bitrix24Module } from './bitrix24/module.js';
import { kommoModule } from './kommo/module.js';
import { CAPABILITY_MEMBERS, type Capability, type CrmProvider } from './types.js';

/** What every provider is built with. */
export interface ProviderDeps {
  store: Store;
  logger?: Logger;
  onEvent?: (e: HttpEvent) => void;
}

/** ProviderDeps plus what the configuration says for every connection. */
export interface BuildDeps extends ProviderDeps {
  http: AppConfig['http'];
  /** The Redis-backed limiters, loaded only when a Redis store is configured (they pull in rate-limiter-flexible). */
  shared?: typeof import('../http/shared-limiter.js');
}

/** The part of a configured connection the registry reads; each module takes its own connection type. */
export interface ConnectionRef {
  provider: string;
  name: string;
}

export interface ProviderModule<C extends ConnectionRef = ConnectionRef> {
  /** The connections' `provider` value it serves, and the `kind` of the providers it builds. */
  readonly kind: string;
  /** How people name the CRM. */
  readonly label: string;
  /** What its providers can do; tools are registered by it (providers/types.ts). */
  readonly capabilities: ReadonlySet<Capability>;
  /** A ready provider (credentials loaded) for one connection. Method syntax: each module narrows `conn`. */
  build(conn: C, deps: BuildDeps): Promise<CrmProvider>;
}

/** Members a provider lacks although one of its declared capabilities promises them. */
export function missingMembers(p: object, capabilities: Iterable<Capability>): string[] {
  const out: string[] = [];
  for (const c of capabilities) {
    for (const m of CAPABILITY_MEMBERS[c]) if ((p as Record<string, unknown>)[m] === undefined) out.push(`${c}.${m}`);
  }
  return out;
}

export class ProviderRegistry {
  private readonly byKind = new Map<string, ProviderModule>();

  constructor(modules: readonly ProviderModule[] = []) {
    for (const m of modules) this.register(m);
  }

  register(m: ProviderModule): this {
    if (this.byKind.has(m.kind)) throw new Error(`provider "${m.kind}" is registered twice`);
    this.byKind.set(m.kind, m);
    return this;
  }

  get(kind: string): ProviderModule | undefined {
    return this.byKind.get(kind);
  }

  /** In registration order (the README table's CRMs column follows it). */
  modules(): ProviderModule[] {
    return [...this.byKind.values()];
  }

  /**
   * Builds and checks the provider for one connection: it must be of the module's kind, declare the module's
   * capabilities and have every member they promise, so a tool routed to it by its capabilities finds them.
   */
  async build(conn: ConnectionRef, deps: BuildDeps): Promise<CrmProvider> {
    const m = this.byKind.get(conn.provider);
    if (!m) throw new Error(`connection "${conn.name}": no provider "${conn.provider}" is registered (known: ${[...this.byKind.keys()].join(', ')})`);
    const p = await m.build(conn, deps);
    const declared = [...p.capabilities].sort().join(',');
    if (p.kind !== m.kind || declared !== [...m.capabilities].sort().join(',')) {
      throw new Error(`provider "${m.kind}" built a "${p.kind}" provider declaring [${declared}], not what its module declares`);
    }
    const missing = missingMembers(p, p.capabilities);
    if (missing.length) throw new Error(`provider "${m.kind}" declares capabilities it does not implement: ${missing.join(', ')}`);
    return p;
  }
}

/** The CRMs crm-mcp ships with, in the order the README lists them. */
export const DEFAULT_MODULES: readonly ProviderModule[] = [kommoModule, bitrix24Module];

export const defaultRegistry = new ProviderRegistry(DEFAULT_MODULES);
