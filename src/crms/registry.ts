/**
 * The provider registry: which CRMs crm-mcp can talk to. Each provider folder exports one CrmModule
 * (`kommo/module.ts`, `bitrix24/module.ts`, contract.ts): its kind, a label, the capabilities it declares, its
 * environment rows and connection parser, its own tools, and how to build a provider from a configured
 * connection. The configuration, the factory, the server's tool list (ALL_TOOLS: the general tools plus each
 * module's own), the README tables and the tests read the modules, so a third CRM is a new folder and one line in
 * DEFAULT_MODULES, not an edit to every tool.
 */
import type { BuildDeps, ConnectionBase, CrmModule, ProviderDeps } from './contract.js';
import { CAPABILITY_MEMBERS, type Capability, type CrmProvider } from './types.js';
import type { AnyTool } from '../tools/define.js';
import { generalTools } from '../tools/index.js';
import { TOOLSETS } from '../tools/toolsets.js';

export type { BuildDeps, ProviderDeps } from './contract.js';

/** A CRM module as the application reads it: its own tools are tool definitions (tools/define.ts). */
export type AppModule = CrmModule<ConnectionBase, AnyTool>;

/** The part of a configured connection the registry reads; each module takes its own connection type. */
export type ConnectionRef = Pick<ConnectionBase, 'provider' | 'name'>;

/**
 * The part of a module that builds providers: all a registry needs to build one (a test's fake CRM may stop
 * there). The modules the configuration reads are full CrmModules (contract.ts): rows, connection spec.
 */
export type ProviderModule<C extends ConnectionBase = ConnectionBase> = Pick<CrmModule<C>, 'kind' | 'label' | 'capabilities' | 'build'>;

/** Members a provider lacks although one of its declared capabilities promises them. */
export function missingMembers(p: object, capabilities: Iterable<Capability>): string[] {
  const out: string[] = [];
  for (const c of capabilities) {
    for (const m of CAPABILITY_MEMBERS[c]) if ((p as Record<string, unknown>)[m] === undefined) out.push(`${c}.${m}`);
  }
  return out;
}

export class ProviderRegistry<M extends ProviderModule = CrmModule> {
  private readonly byKind = new Map<string, M>();

  constructor(modules: readonly M[] = []) {
    for (const m of modules) this.register(m);
  }

  register(m: M): this {
    if (this.byKind.has(m.kind)) throw new Error(`provider "${m.kind}" is registered twice`);
    this.byKind.set(m.kind, m);
    return this;
  }

  get(kind: string): M | undefined {
    return this.byKind.get(kind);
  }

  /** In registration order (the README table's CRMs column follows it). */
  modules(): M[] {
    return [...this.byKind.values()];
  }

  /**
   * Builds and checks the provider for one connection: it must be of the module's kind, declare the module's
   * capabilities and have every member they promise, so a tool routed to it by its capabilities finds them.
   */
  async build(conn: ConnectionRef, deps: BuildDeps): Promise<CrmProvider> {
    const m = this.byKind.get(conn.provider);
    if (!m) throw new Error(`connection "${conn.name}": no provider "${conn.provider}" is registered (known: ${[...this.byKind.keys()].join(', ')})`);
    // The module's own parser made the connection (config.ts): its type is the module's.
    const p = await m.build(conn as ConnectionBase, deps);
    const declared = [...p.capabilities].sort().join(',');
    if (p.kind !== m.kind || declared !== [...m.capabilities].sort().join(',')) {
      throw new Error(`provider "${m.kind}" built a "${p.kind}" provider declaring [${declared}], not what its module declares`);
    }
    const missing = missingMembers(p, p.capabilities);
    if (missing.length) throw new Error(`provider "${m.kind}" declares capabilities it does not implement: ${missing.join(', ')}`);
    return p;
  }
}

/**
 * The CRMs crm-mcp ships with, one line each, in the order the README lists them: adding a CRM is its folder
 * and one line here (test/e2e/third-crm.test.ts). Each module.ts is small and loads its CRM's code only when a
 * connection needs it.
 */
// prettier-ignore
export const DEFAULT_MODULES: readonly AppModule[] = [
  (await import('./kommo/module.js')).kommoModule,
  (await import('./bitrix24/module.js')).bitrix24Module,
];

export const defaultRegistry = new ProviderRegistry(DEFAULT_MODULES);

/**
 * Every tool: the general ones (tools/index.ts) and each module's own (contract.ts `tools`), toolset by toolset
 * in TOOLSETS order, the general tools of a toolset first, then each module's in registry order. That is the
 * order clients see, the README table and the schema snapshots. A module's tool must name the module's kind
 * (`crmKind`), which is what keeps the server from registering it for another CRM's connections.
 */
export function allTools(
  modules: readonly Pick<AppModule, 'kind' | 'tools'>[],
  general: readonly AnyTool[] = generalTools(modules.map((m) => m.kind)),
): AnyTool[] {
  for (const m of modules) {
    for (const t of m.tools ?? []) {
      if (t.crmKind !== m.kind) throw new Error(`tool "${t.name}" of the ${m.kind} module must set crmKind "${m.kind}"`);
    }
  }
  const out = TOOLSETS.flatMap(({ name }) => [
    ...general.filter((t) => t.toolset === name),
    ...modules.flatMap((m) => (m.tools ?? []).filter((t) => t.toolset === name)),
  ]);
  const names = out.map((t) => t.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new Error(`tool "${twice}" is declared twice`);
  return out;
}

/** The tools of the CRMs crm-mcp ships with (server registration, README table, snapshots, config checks). */
export const ALL_TOOLS: readonly AnyTool[] = allTools(DEFAULT_MODULES);

/** What of the configuration (config.ts's AppConfig) the providers are built from. */
export interface ProvidersConfig {
  connections: readonly ConnectionBase[];
  http: BuildDeps['http'];
}

export async function buildProviders(
  config: ProvidersConfig,
  deps: ProviderDeps,
  registry: ProviderRegistry<ProviderModule> = defaultRegistry,
): Promise<CrmProvider[]> {
  // Shared (Redis) limiters load rate-limiter-flexible: only when a Redis store is configured.
  const shared = deps.store.redis ? await import('../http/shared-limiter.js') : undefined;
  const out: CrmProvider[] = [];
  for (const c of config.connections) out.push(await registry.build(c, { ...deps, http: config.http, shared }));
  return out;
}
