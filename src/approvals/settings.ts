/**
 * The approval settings (CRM_CONFIRM_WRITES, CRM_CONFIRM_VIA, CRM_CONFIRM_TTL) from the environment, with the
 * same parsers and the same rule as the safety flags: a malformed value is a problem that stops the start,
 * never a guess towards fewer approvals.
 */
import { SERVER_ENV as V } from '../config/env-server.js';
import { boolFrom, envSource, intFrom, oneOf } from '../config/sources.js';

export type ConfirmVia = 'auto' | 'client' | 'operator';

export interface ApprovalSettings {
  /** CRM_CONFIRM_WRITES: every write waits for a person. */
  on: boolean;
  /** CRM_CONFIRM_VIA: who is asked (auto: the client when it can ask, else the operator's channels). */
  via: ConfirmVia;
  /** CRM_CONFIRM_TTL, in milliseconds: how long an approval id stays valid. */
  ttlMs: number;
}

export function approvalSettingsFrom(env: Record<string, string | undefined>, problems: string[]): ApprovalSettings {
  const src = envSource(env);
  return {
    on: boolFrom(src, V.CRM_CONFIRM_WRITES, problems),
    via: oneOf(src, V.CRM_CONFIRM_VIA, 'auto', problems),
    ttlMs: intFrom(src, V.CRM_CONFIRM_TTL, problems) * 1000,
  };
}
