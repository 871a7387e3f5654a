/**
 * The built-in emulated CRM accounts (`--sandbox`), started through each module's `sandbox` part
 * (contract.ts `SandboxPart`): by the server (`crm-mcp --sandbox`) and by `crm-mcp doctor --sandbox`.
 */
import type { ConnectionBase } from '../crms/contract.js';
import { defaultRegistry } from '../crms/registry.js';
import type { PolicyFlags } from '../policy/policy.js';

export interface Sandbox {
  connections: (policy: PolicyFlags) => ConnectionBase[];
  /** The banner line, given the connections' names. */
  info(names: readonly string[]): string;
  /** A credential may follow a redirect between two of these (the emulators just started), and nowhere else on loopback. */
  origins: string[];
  close: Array<() => Promise<void>>;
}

/** Starts every CRM's emulator, together. */
export async function startSandbox(): Promise<Sandbox> {
  const parts = defaultRegistry.modules().flatMap((m) => (m.sandbox ? [m.sandbox] : []));
  const runs = await Promise.all(parts.map((p) => p.start()));
  return {
    connections: (policy) => runs.flatMap((r) => r.connections(policy)),
    info: (names) =>
      `Sandbox: ${runs.map((r, i) => `${r.what}${i === 0 ? ' emulated' : ''} at ${r.origin}`).join(', ')} (pass crm: ${orList(names.map((n) => `"${n}"`))})`,
    origins: runs.map((r) => r.origin),
    close: runs.map((r) => () => r.close()),
  };
}

/** Stand-ins for the sandbox's connections where only the configuration is checked (no emulator started). */
export function sandboxStandIns(policy: PolicyFlags): ConnectionBase[] {
  return defaultRegistry.modules().flatMap((m) => (m.sandbox ? [{ name: m.kind, provider: m.kind, policy }] : []));
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items.at(-1)}` : (items[0] ?? '');
}
