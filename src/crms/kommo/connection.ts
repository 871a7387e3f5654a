/**
 * A Kommo (amoCRM) connection: its type, and how it is read from the environment or from one `--config` file
 * entry (the same rules for both; problems name the source's own keys), its credentials for the redactor, and
 * doctor's fixes for its settings.
 */
import type { EnvVar } from '../../config/env-types.js';
import { checkOrigin, type Source } from '../../config/sources.js';
import type { PolicyFlags } from '../../policy/policy.js';
import { registerSecret } from '../../util/redact.js';
import type { ConnectionBase, ConnectionSpec } from '../contract.js';
import { KOMMO_KIND } from './capabilities.js';
import { KOMMO_ENV as V } from './env.js';

export interface KommoOAuthConfig {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  refreshToken?: string;
  authCode?: string;
}

export interface KommoConnection extends ConnectionBase {
  provider: 'kommo';
  /** Account origin, e.g. https://acme.kommo.com */
  baseUrl: string;
  accessToken?: string;
  oauth?: KommoOAuthConfig;
  /** KOMMO_WEBHOOK_SECRET: the webhook receiver's path secret (events.ts). */
  webhookSecret?: string;
}

const EXAMPLE_ORIGIN = 'https://acme.kommo.com';

function parse(src: Source, policy: PolicyFlags, problems: string[]): KommoConnection | undefined {
  const L = src.label;
  const sub = src.get(V.KOMMO_SUBDOMAIN);
  const base = src.get(V.KOMMO_BASE_URL);
  const domain = src.get(V.AMOCRM_DOMAIN);
  const token = src.get(V.KOMMO_ACCESS_TOKEN);
  const clientId = src.get(V.KOMMO_CLIENT_ID);
  const clientSecret = src.get(V.KOMMO_CLIENT_SECRET);
  const redirectUri = src.get(V.KOMMO_REDIRECT_URI);
  const refresh = src.get(V.KOMMO_REFRESH_TOKEN);
  const code = src.get(V.KOMMO_AUTH_CODE);
  const anyKommo = sub || base || domain || token || clientId || clientSecret || refresh || code;
  if (!anyKommo) return undefined;

  let baseUrl: string | undefined;
  const given = [sub, base, domain].filter(Boolean);
  if (given.length > 1)
    problems.push(`${L(V.KOMMO_SUBDOMAIN)}, ${L(V.KOMMO_BASE_URL)} and ${L(V.AMOCRM_DOMAIN)}: set only one (got ${given.map((g) => g!.name).join(', ')})`);
  if (base) baseUrl = checkOrigin(base.name, base.value, problems, EXAMPLE_ORIGIN);
  else if (sub) {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/i.test(sub.value)) problems.push(`${sub.name}: "${sub.value}" is not a subdomain (e.g. acme for acme.kommo.com)`);
    else baseUrl = `https://${sub.value.toLowerCase()}.kommo.com`;
  } else if (domain) {
    const host = domain.value.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (!/^[a-z0-9-]+\.(amocrm\.(ru|com)|kommo\.com)$/i.test(host))
      problems.push(`${domain.name}: "${domain.value}" is not an amoCRM/Kommo account host (e.g. acme.amocrm.ru)`);
    else baseUrl = `https://${host.toLowerCase()}`;
  } else {
    problems.push(`${L(V.KOMMO_SUBDOMAIN)} (or ${L(V.KOMMO_BASE_URL)} / ${L(V.AMOCRM_DOMAIN)}): required to reach your Kommo account`);
  }

  let oauth: KommoOAuthConfig | undefined;
  // Without the client id or secret the OAuth problem says it all; no second "token required" problem.
  let oauthUnusable = false;
  if (clientId || clientSecret || redirectUri || refresh || code) {
    const missing = [!clientId && L(V.KOMMO_CLIENT_ID), !clientSecret && L(V.KOMMO_CLIENT_SECRET), !redirectUri && L(V.KOMMO_REDIRECT_URI)].filter(Boolean);
    oauthUnusable = !clientId || !clientSecret;
    if (missing.length)
      problems.push(
        `${missing.join(', ')}: required for OAuth (you set ${[clientId, clientSecret, redirectUri, refresh, code]
          .filter(Boolean)
          .map((x) => x!.name)
          .join(', ')})`,
      );
    else
      oauth = {
        clientId: clientId!.value,
        clientSecret: clientSecret!.value,
        redirectUri: redirectUri!.value,
        refreshToken: refresh?.value,
        authCode: code?.value,
      };
  }
  if (!token && !oauth && !oauthUnusable) {
    problems.push(
      `${L(V.KOMMO_ACCESS_TOKEN)}: required (a long-lived token from Settings → Integrations), or configure OAuth with ${L(V.KOMMO_CLIENT_ID)}/${L(V.KOMMO_CLIENT_SECRET)}/${L(V.KOMMO_REDIRECT_URI)}`,
    );
  }
  const hookSecret = src.get(V.KOMMO_WEBHOOK_SECRET);
  // The path is the only proof a delivery is Kommo's (§10.2: no signature), so a guessable secret is refused.
  if (hookSecret && hookSecret.value.length < 32) problems.push(`${hookSecret.name}: at least 32 random characters (e.g. \`openssl rand -hex 32\`)`);
  if (!baseUrl) return undefined;
  return {
    name: KOMMO_KIND,
    provider: KOMMO_KIND,
    baseUrl,
    accessToken: token?.value,
    oauth,
    policy,
    ...(hookSecret && hookSecret.value.length >= 32 ? { webhookSecret: hookSecret.value } : {}),
  };
}

function fix(problem: string, v: EnvVar | undefined, label: string): string | undefined {
  if (/is not a subdomain|is not an amoCRM/.test(problem) || (/is not a URL/.test(problem) && v?.group === KOMMO_KIND)) {
    return `Correct ${label}: for Kommo ${V.KOMMO_SUBDOMAIN.name}=yourcompany (for https://yourcompany.kommo.com), for amoCRM ${V.AMOCRM_DOMAIN.name}=yourcompany.amocrm.ru.`;
  }
  if (v === V.KOMMO_ACCESS_TOKEN && /: required/.test(problem)) return V.KOMMO_ACCESS_TOKEN.hint;
  if (v === V.KOMMO_SUBDOMAIN && /required/.test(problem)) {
    return `Set ${V.KOMMO_SUBDOMAIN.name}=yourcompany (for https://yourcompany.kommo.com), or ${V.KOMMO_BASE_URL.name} / ${V.AMOCRM_DOMAIN.name} for other hosts.`;
  }
  return undefined;
}

export const kommoConnection: ConnectionSpec<KommoConnection> = {
  parse,
  incomplete: () => 'KOMMO: incomplete connection',
  secrets: (c) => [c.accessToken, c.oauth?.clientSecret, c.oauth?.refreshToken, c.oauth?.authCode, c.webhookSecret],
  setup: `${V.KOMMO_SUBDOMAIN.name} and ${V.KOMMO_ACCESS_TOKEN.name}`,
  address: (c) => c.baseUrl,
  fix,
};

/** Registers the connection's credentials with the redactor (the provider does, in case it was built without the config loader). */
export function registerConnectionSecrets(c: KommoConnection): void {
  for (const s of kommoConnection.secrets(c)) registerSecret(s);
}
