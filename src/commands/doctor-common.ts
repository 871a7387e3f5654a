/** What the doctor's CRM checks share: the report's shapes, the limits it warns at, small helpers. */
import type { AppConfig } from '../config/config.js';
import { Grant } from '../policy/policy.js';
import type { BitrixProvider } from '../providers/bitrix24/provider.js';
import type { KommoProvider } from '../providers/kommo/provider.js';
import type { TokenRecord } from '../providers/oauth.js';
import type { CallContext } from '../providers/types.js';
import type { Store } from '../store/store.js';
import { createLogger } from '../util/log.js';
import type { DeepReport } from './doctor-deep.js';

export const DAY = 86_400_000;
/** A token this close to expiry is a warning. */
export const WARN_DAYS = 7;
/** §2.1: a Kommo refresh token not used for 3 months dies. */
export const KOMMO_REFRESH_LIFETIME = 90 * DAY;

export type Severity = 'ok' | 'warn' | 'error' | 'skipped';

export interface Check {
  check: string;
  status: Severity;
  detail: string;
  fix?: string;
}

export interface ConnectionReport {
  name: string;
  provider: 'kommo' | 'bitrix24';
  address: string;
  auth: {
    type: 'long-lived' | 'oauth' | 'webhook';
    expires_at: string | null;
    days_left: number | null;
    refresh_expires_at?: string | null;
    scopes: string[] | null;
  };
  account: { id: number | string | null; name: string | null } | null;
  policy: string;
  rate_limit: string;
  checks: Check[];
  /** `--deep` only: what the read-only probe found on the account (null: not run, the account was not reached). */
  deep?: DeepReport | null;
}

export interface Problem {
  connection: string;
  check: string;
  severity: 'error' | 'warn';
  message: string;
  fix: string;
}

export interface DoctorReport {
  version: string;
  ok: boolean;
  exit_code: number;
  store: string | null;
  connections: ConnectionReport[];
  problems: Problem[];
}

export const ctx = (): CallContext => ({ grant: Grant.readOnly() });

export function daysLeft(expiresAtMs: number): number {
  return Math.floor((expiresAtMs - Date.now()) / DAY);
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function day(ms: number): string {
  return iso(ms).slice(0, 10);
}

/**
 * The doctor tries once more than never: a flaky network should not hide behind three slow retries. The deep
 * probe measures the account as the server would use it, so it retries a throttled read as the server does.
 */
export function providerOptions(config: AppConfig, store: Store, deep = false) {
  return {
    store,
    timeoutMs: Math.min(config.http.timeoutMs, 15_000),
    maxRetries: deep ? config.http.maxRetries : Math.min(config.http.maxRetries, 1),
    backoffBaseMs: 100,
    logger: createLogger({ level: 'silent' }),
  };
}

/** True when start-up replaces the stored chain with the configured seed (a code or refresh token not used yet). */
export function reseeds(rec: TokenRecord, seed: string | undefined): boolean {
  return seed !== undefined && seed !== rec.seed;
}

/** The CRM refused the stored refresh token (spent, e.g. after a refresh whose answer was lost, or revoked). */
export function refusedCheck(crm: string, rec: TokenRecord, reauth: string): Check {
  return {
    check: 'token',
    status: 'error',
    detail: `the stored refresh token was refused by ${crm} on ${day(rec.refused_at!)} (spent or revoked: e.g. the answer to a refresh was lost, or the app was disabled); it is not sent again`,
    fix: `Sign in again: ${reauth}.`,
  };
}

export function pushCommon(checks: Check[], report: ConnectionReport, store: Store, oauth: boolean): void {
  checks.push({ check: 'policy', status: 'ok', detail: report.policy });
  checks.push({ check: 'rate limit', status: 'ok', detail: report.rate_limit });
  if (oauth && store.description.startsWith('memory')) {
    checks.push({
      check: 'store',
      status: 'error',
      detail: `${store.description}: rotated OAuth tokens would be lost at exit`,
      fix: 'Unset CRM_MCP_STORE (default file ~/.crm-mcp/store.json) or point it at a file.',
    });
  } else checks.push({ check: 'store', status: 'ok', detail: store.description });
}

/** For `--deep`: whether it runs (names are then left out, for a report fit to paste) and the provider that reached the account. */
export interface Reached {
  deep: boolean;
  provider?: KommoProvider | BitrixProvider;
}
