/** The per-call context every provider member receives: the grant the HTTP core enforces, the caller's signal, dry runs. */
import type { Grant } from '../policy/policy.js';

export interface CallContext {
  grant: Grant;
  signal?: AbortSignal;
  /** Write methods return the requests they would send instead of sending them. */
  dryRun?: boolean;
}
