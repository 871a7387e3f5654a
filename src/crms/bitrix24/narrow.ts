/**
 * The Bitrix24 provider behind a provider this wing's own tools or doctor were handed. The server registers a
 * module's tools for that module's connections only, so this holds; the check makes a wiring mistake loud.
 * A file of its own with a type-only import, so the tools (loaded with the module) do not load the provider.
 */
import type { CrmProvider } from '../types.js';
import { BITRIX24_KIND } from './capabilities.js';
import type { BitrixProvider } from './provider.js';

export function asBitrix(p: CrmProvider): BitrixProvider {
  if (p.kind !== BITRIX24_KIND || typeof (p as Partial<BitrixProvider>).batch !== 'function') {
    throw new Error(`internal: a ${p.kind} connection reached a Bitrix24-only part`);
  }
  return p as BitrixProvider;
}
