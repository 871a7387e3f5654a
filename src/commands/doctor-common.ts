/**
 * What the doctor's general parts share: the report's shapes (crms/doctor-types.ts, which the CRMs'
 * checks fill in), how doctor builds a provider, and the report of a connection no CRM module checks.
 */
import type { AppConfig, Connection } from '../config/config.js';
import { modeOf } from '../policy/policy.js';
import type { BuildDeps, ConnectionBase, CrmModule } from '../crms/contract.js';
import type { ConnectionReport } from '../crms/doctor-types.js';
import type { Store } from '../store/store.js';
import { createLogger } from '../util/log.js';

export type { Check, ConnectionReport, DoctorReport, Problem, Severity } from '../crms/doctor-types.js';
export { DAY, WARN_DAYS } from '../crms/doctor-types.js';

/**
 * The doctor tries once more than never: a flaky network should not hide behind three slow retries. The deep
 * probe measures the account as the server would use it, so it retries a throttled read as the server does.
 * No shared (Redis) limiter: doctor's few reads do not need one.
 */
export function doctorBuildDeps(config: AppConfig, store: Store, deep: boolean, trustedOrigins?: readonly string[]): BuildDeps {
  return {
    store,
    http: {
      timeoutMs: Math.min(config.http.timeoutMs, 15_000),
      maxRetries: deep ? config.http.maxRetries : Math.min(config.http.maxRetries, 1),
      backoffBaseMs: 100,
    },
    logger: createLogger({ level: 'silent' }),
    ...(trustedOrigins ? { trustedOrigins } : {}),
  };
}

/** A connection whose CRM has no doctor part: listed, named by its module, and marked as not checked. */
export function uncheckedReport(c: Connection, m: CrmModule<ConnectionBase, unknown> | undefined): ConnectionReport {
  const label = m?.label ?? c.provider;
  return {
    name: c.name,
    provider: c.provider,
    address: m ? m.connection.address(c) : '',
    auth: { type: 'unknown', expires_at: null, days_left: null, scopes: null },
    account: null,
    policy: modeOf(c.policy),
    rate_limit: 'unknown',
    checks: [{ check: 'connection', status: 'skipped', detail: `not checked: crm-mcp has no doctor checks for ${label} connections` }],
  };
}
