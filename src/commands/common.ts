/** Small helpers shared by the sub-commands (`auth`, `doctor`, `config claude`). */
import { SECRET_NAMES, V, readVar } from '../config/env-table.js';
import type { Learnt } from '../crms/contract.js';
import { defaultRegistry } from '../crms/registry.js';
import { openStore } from '../store/store.js';

export type Env = Record<string, string | undefined>;

/** Writes to stdout (these sub-commands are not the stdio MCP server, so stdout is theirs). */
export function out(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/**
 * Environment variables (and aliases) that carry a credential, from the env table's `secret` flag.
 * `config claude` replaces them with placeholders unless `--with-secrets`; `doctor` never prints their values.
 */
export const SECRET_VARS: ReadonlySet<string> = SECRET_NAMES;

/** A webhook URL (`…/rest/{user}/{secret}/`, the env table's `secretPart: 'webhook-secret'`) with its secret path segment masked. */
export function maskWebhook(url: string, mask = '***'): string {
  return url.replace(/(\/rest\/\d+\/)[^/]+/, `$1${mask}`);
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * What earlier sign-ins learnt that this environment does not say yet (contract.ts `SignInPart.learnt`, e.g.
 * the account address a CRM named in its redirect), from the token store CRM_MCP_STORE names. `strict`: a
 * store that cannot be read is an error (else that CRM contributes nothing).
 */
export async function learntSettings(env: Env, strict = false): Promise<Learnt[]> {
  const out: Learnt[] = [];
  for (const m of defaultRegistry.modules()) {
    const l = m.signIn?.learnt?.(env, () => openStore(readVar(env, V.CRM_MCP_STORE)?.value));
    const got = strict ? await l : await l?.catch(() => undefined);
    if (got) out.push(got);
  }
  return out;
}
