/** Small helpers shared by the sub-commands (`auth`, `doctor`, `config claude`). */
import { SECRET_NAMES, V, readVar } from '../config/env-table.js';
import { openStore } from '../store/store.js';

export type Env = Record<string, string | undefined>;

/** The first of `names` set to a non-blank value. */
export function pickEnv(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v.trim() !== '') return { name: n, value: v.trim() };
  }
  return undefined;
}

export function isLoopbackHost(hostname: string): boolean {
  return ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(hostname.toLowerCase());
}

/** Writes to stdout (these sub-commands are not the stdio MCP server, so stdout is theirs). */
export function out(text = ''): void {
  process.stdout.write(`${text}\n`);
}

/**
 * Environment variables (and aliases) that carry a credential, from the env table's `secret` flag.
 * `config claude` replaces them with placeholders unless `--with-secrets`; `doctor` never prints their values.
 */
export const SECRET_VARS: ReadonlySet<string> = SECRET_NAMES;

/** A Bitrix24 webhook URL with its secret path segment masked. */
export function maskWebhook(url: string, mask = '***'): string {
  return url.replace(/(\/rest\/\d+\/)[^/]+/, `$1${mask}`);
}

/** Where `crm-mcp auth kommo` records the account host Kommo named in its redirect (`referer`). */
export function kommoAccountKey(clientId: string): string {
  return `account:kommo:${clientId}`;
}

export interface KommoAccountRecord {
  /** Account origin, e.g. https://acme.kommo.com */
  base_url: string;
  saved_at: number;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** The account origin saved by `crm-mcp auth kommo` for this integration, when no Kommo host is configured. */
export async function learntKommoHost(env: Env): Promise<string | undefined> {
  const clientId = readVar(env, V.KOMMO_CLIENT_ID)?.value;
  if (!clientId || readVar(env, V.KOMMO_SUBDOMAIN) || readVar(env, V.KOMMO_BASE_URL) || readVar(env, V.AMOCRM_DOMAIN)) return undefined;
  const store = await openStore(readVar(env, V.CRM_MCP_STORE)?.value);
  try {
    return (await store.get<KommoAccountRecord>(kommoAccountKey(clientId)))?.base_url;
  } finally {
    await store.close();
  }
}
