/**
 * A Bitrix24 connection: its type, and how it is read from the environment or from one `--config` file entry
 * (the same rules for both; problems name the source's own keys), its credentials for the redactor, and
 * doctor's fix for its webhook address.
 */
import type { EnvVar } from '../../config/env-types.js';
import { checkOrigin, oneOf, type Source } from '../../config/sources.js';
import type { PolicyFlags } from '../../policy/policy.js';
import { registerSecret } from '../../util/redact.js';
import type { ConnectionBase, ConnectionSpec } from '../contract.js';
import { BITRIX24_KIND } from './capabilities.js';
import { BITRIX24_ENV as V } from './env.js';

export interface BitrixConnection extends ConnectionBase {
  provider: 'bitrix24';
  /** Inbound webhook base `https://portal/rest/{user}/{secret}/`. */
  webhookUrl?: string;
  oauth?: { clientId: string; clientSecret: string; refreshToken?: string; portal: string; oauthServer?: string };
  plan: 'standard' | 'enterprise';
  outboundToken?: string;
}

// The example every origin problem has always given (a Kommo one); kept so the messages stay as they were.
const EXAMPLE_ORIGIN = 'https://acme.kommo.com';

function parse(src: Source, policy: PolicyFlags, problems: string[]): BitrixConnection | undefined {
  const L = src.label;
  const hook = src.get(V.BITRIX_WEBHOOK_BASE);
  const clientId = src.get(V.BITRIX_CLIENT_ID);
  const clientSecret = src.get(V.BITRIX_CLIENT_SECRET);
  const refresh = src.get(V.BITRIX_REFRESH_TOKEN);
  const portal = src.get(V.BITRIX_PORTAL);
  const outbound = src.get(V.BITRIX_OUTBOUND_TOKEN);
  const oauthServer = src.get(V.BITRIX_OAUTH_SERVER);
  if (!hook && !clientId && !clientSecret && !refresh && !portal) return undefined;
  const plan = oneOf(src, V.BITRIX_PLAN, V.BITRIX_PLAN.default, problems);
  let webhookUrl: string | undefined;
  if (hook) webhookUrl = parseWebhook(hook.name, hook.value, problems);
  let oauth: BitrixConnection['oauth'];
  if (clientId || clientSecret || refresh || portal) {
    const missing = [!clientId && L(V.BITRIX_CLIENT_ID), !clientSecret && L(V.BITRIX_CLIENT_SECRET), !portal && L(V.BITRIX_PORTAL)].filter(Boolean);
    if (missing.length && !webhookUrl) problems.push(`${missing.join(', ')}: required for a Bitrix24 OAuth app`);
    else if (!missing.length) {
      const origin = checkOrigin(portal!.name, portal!.value.includes('://') ? portal!.value : `https://${portal!.value}`, problems, EXAMPLE_ORIGIN);
      const server = oauthServer ? checkOrigin(oauthServer.name, oauthServer.value, problems, EXAMPLE_ORIGIN) : undefined;
      if (origin)
        oauth = {
          clientId: clientId!.value,
          clientSecret: clientSecret!.value,
          refreshToken: refresh?.value,
          portal: origin,
          ...(server ? { oauthServer: server } : {}),
        };
    }
  }
  if (!webhookUrl && !oauth) return undefined;
  return { name: BITRIX24_KIND, provider: BITRIX24_KIND, webhookUrl, oauth, plan, outboundToken: outbound?.value, policy };
}

/** The inbound webhook base, normalised to `origin/rest/{user}/{secret}/`; undefined (and a problem) if it is not one. */
export function parseWebhook(name: string, raw: string, problems: string[]): string | undefined {
  const origin = checkOrigin(name, raw, problems, EXAMPLE_ORIGIN);
  if (!origin) return undefined;
  const u = new URL(raw);
  const m = /^\/rest\/(\d+)\/([A-Za-z0-9_]+)\/?$/.exec(u.pathname);
  if (!m || u.search) {
    problems.push(`${name}: expected https://{portal}/rest/{user_id}/{secret}/ (the inbound webhook URL from Bitrix24 → Developer resources)`);
    return undefined;
  }
  return `${origin}/rest/${m[1]}/${m[2]}/`;
}

function fix(problem: string, _v: EnvVar | undefined, _label: string): string | undefined {
  if (/expected https:\/\/\{portal\}\/rest/.test(problem)) return V.BITRIX_WEBHOOK_BASE.hint;
  return undefined;
}

export const bitrix24Connection: ConnectionSpec<BitrixConnection> = {
  parse,
  incomplete: (src) =>
    `${src.label(V.BITRIX_WEBHOOK_BASE)} or ${src.label(V.BITRIX_CLIENT_ID)}/${src.label(V.BITRIX_CLIENT_SECRET)}/${src.label(V.BITRIX_PORTAL)}: required`,
  secrets: (c) => [
    // Only the webhook's secret path segment is a credential; the rest of the URL is the portal's address.
    c.webhookUrl ? /\/rest\/\d+\/([^/]+)\//.exec(c.webhookUrl)?.[1] : undefined,
    c.oauth?.clientSecret,
    c.oauth?.refreshToken,
    c.outboundToken,
  ],
  setup: V.BITRIX_WEBHOOK_BASE.name,
  // A webhook's secret path segment masked, as doctor reports it: the address is printed.
  address: (c) => (c.webhookUrl ? c.webhookUrl.replace(/(\/rest\/\d+\/)[^/]+/, '$1***') : c.oauth!.portal),
  fix,
};

/** Registers the connection's credentials with the redactor (the provider does, in case it was built without the config loader). */
export function registerConnectionSecrets(c: BitrixConnection): void {
  for (const s of bitrix24Connection.secrets(c)) registerSecret(s);
}
