/**
 * `crm-mcp auth kommo|amocrm` (contract.ts `SignInPart`): what the command lists and what a sign-in learnt,
 * without loading the flow (sign-in-flow.ts), which loads only when someone signs in.
 *
 * Kommo names the account in its redirect (`referer`), so a sign-in needs no account address: the one it
 * learnt is recorded in the store, and the server, doctor and `config claude` use it while none is configured.
 */
import { readVar } from '../../config/env-types.js';
import type { SignInPart } from '../contract.js';
import { KOMMO_ENV as V } from './env.js';

export { kommoAccountKey, type KommoAccountRecord } from './account-record.js';
import { kommoAccountKey, type KommoAccountRecord } from './account-record.js';

export const kommoSignIn: SignInPart = {
  names: ['kommo', 'amocrm'],
  what: 'integration (Kommo/amoCRM)',
  needs:
    "Kommo needs KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET and KOMMO_REDIRECT_URI (a loopback address such as http://127.0.0.1:8765/callback, entered as the integration's Redirect URI); the account address is taken from Kommo's answer when KOMMO_SUBDOMAIN is not set.",
  async prepare(ctx) {
    return (await import('./sign-in-flow.js')).prepareKommo(ctx);
  },
  /** The account origin saved by `crm-mcp auth kommo` for this integration, when no Kommo host is configured. */
  async learnt(env, openStore) {
    const clientId = readVar(env, V.KOMMO_CLIENT_ID)?.value;
    if (!clientId || readVar(env, V.KOMMO_SUBDOMAIN) || readVar(env, V.KOMMO_BASE_URL) || readVar(env, V.AMOCRM_DOMAIN)) return undefined;
    const store = await openStore();
    let host: string | undefined;
    try {
      host = (await store.get<KommoAccountRecord>(kommoAccountKey(clientId)))?.base_url;
    } finally {
      await store.close();
    }
    if (!host) return undefined;
    const base = V.KOMMO_BASE_URL.name;
    return {
      env: { [base]: host },
      note: `Added ${base}=${host}: the account \`crm-mcp auth kommo\` signed in to.`,
      fix: (problem) => (/KOMMO_SUBDOMAIN .*required/.test(problem) ? `Set ${base}=${host} (the account \`crm-mcp auth kommo\` signed in to).` : undefined),
    };
  },
};
