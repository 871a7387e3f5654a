/** Registers a connection's credentials with the redactor, as its module names them (config loading calls it). */
import type { ConnectionBase } from '../crms/contract.js';
import { defaultRegistry } from '../crms/registry.js';
import { registerSecret } from '../util/redact.js';

export function registerConnectionSecrets(c: ConnectionBase, registry = defaultRegistry): void {
  const m = registry.get(c.provider);
  // Never skip silently: credentials nobody registered would print unmasked.
  if (!m) throw new Error(`connection "${c.name}": no provider "${c.provider}" is registered`);
  for (const s of m.connection.secrets(c)) registerSecret(s);
}
