/**
 * The Kommo provider behind a provider this wing's own tools or doctor were handed. The server registers a
 * module's tools for that module's connections only, so this holds; the check makes a wiring mistake loud.
 * A file of its own with a type-only import, so the tools (loaded with the module) do not load the provider.
 */
import type { CrmProvider } from '../types.js';
import { KOMMO_KIND } from './capabilities.js';
import type { KommoProvider } from './provider.js';

export function asKommo(p: CrmProvider): KommoProvider {
  if (p.kind !== KOMMO_KIND || typeof (p as Partial<KommoProvider>).raw !== 'function') {
    throw new Error(`internal: a ${p.kind} connection reached a Kommo-only part`);
  }
  return p as KommoProvider;
}
