/**
 * `crm-mcp doctor`'s look at the event receivers, through each CRM module's events part (events-contract.ts):
 * `check` says from the settings and the store whether a receiver is configured and whether its pieces fit;
 * with `--deep`, and only for a connection with a receiver, `status` asks the CRM, read-only, where its events
 * go (a disabled webhook, a binding that is gone, a read only an administrator may make). Names no CRM.
 */
import type { AppConfig, Connection } from '../config/config.js';
import type { ConnectionBase, CrmModule } from '../crms/contract.js';
import type { CrmProvider } from '../crms/types.js';
import { CrmError } from '../domain/errors.js';
import { Grant } from '../policy/policy.js';
import { toolSelected } from '../policy/tool-filter.js';
import type { Store } from '../store/store.js';
import { redact } from '../util/redact.js';
import type { Check, ConnectionReport, Problem } from './doctor-common.js';

/** The receiver checks of one connection, added to its report; returns the problems among them. */
export async function eventsCheck(
  config: AppConfig,
  c: Connection,
  m: CrmModule<ConnectionBase, unknown> | undefined,
  r: ConnectionReport,
  store: Store,
  deep: { provider: CrmProvider | undefined } | undefined,
): Promise<Problem[]> {
  const part = m?.events;
  if (!part?.check) return [];
  const added: Check[] = [];
  try {
    const rc = await part.check(c, { store, pollSec: config.eventsPollSec ?? 0, account: r.account?.id ?? null });
    added.push(...rc.checks);
    if (rc.configured && !toolSelected('list_changes', config.tools, 'events'))
      added.push({
        check: 'events',
        status: 'warn',
        detail: 'events are received and stored, but no tool reads them: the events toolset (list_changes, get_record_history) is not enabled',
        fix: 'Add events to CRM_TOOLSETS (e.g. CRM_TOOLSETS=core,activity,events), or remove the receiver if you do not want it.',
      });
    if (rc.configured && deep?.provider && part.status) added.push(...(await deepStatus(part.status, deep.provider, store)));
  } catch (err) {
    // A policy refusal means a check tried something other than a read: a bug, reported as an error.
    const bug = err instanceof CrmError && err.code === 'policy_denied';
    added.push({
      check: 'events',
      status: bug ? 'error' : 'warn',
      detail: redact(`the receivers could not be checked: ${(err as Error)?.message ?? String(err)}`),
      fix: bug
        ? 'Please report it with this output (crm-mcp doctor --deep --json).'
        : 'Run crm-mcp doctor again; if it persists, check the store (CRM_MCP_STORE).',
    });
  }
  r.checks.push(...added);
  return added
    .filter((ch) => ch.status === 'warn' || ch.status === 'error')
    .map((ch) => ({ connection: c.name, check: ch.check, severity: ch.status as 'warn' | 'error', message: ch.detail, fix: ch.fix ?? '' }));
}

/** The module's `status` under a read-only grant: its checks, or a line saying what it printed when it has none. */
async function deepStatus(status: NonNullable<NonNullable<CrmModule['events']>['status']>, provider: CrmProvider, store: Store): Promise<Check[]> {
  try {
    const s = await status(provider, { grant: Grant.readOnly() }, { secretStore: store });
    return s.checks ?? [{ check: 'events: bindings', status: 'ok', detail: s.lines.join(' ').trim() }];
  } catch (err) {
    if (err instanceof CrmError && err.code === 'policy_denied') throw err;
    return [
      {
        check: 'events: bindings',
        status: 'warn',
        detail: redact(`could not ask the CRM where its events go: ${(err as Error)?.message ?? String(err)}`),
        fix: 'Run crm-mcp events status to see the full answer.',
      },
    ];
  }
}
