/** `crm-mcp auth`: which OAuth app to sign in with, from the environment or a config file. */
import { ConfigError, loadConfig, type BitrixConnection, type KommoConnection } from '../config/config.js';
import { registerSecret } from '../util/redact.js';
import { isLoopbackHost, pickEnv, type Env } from './common.js';

export interface KommoApp {
  kind: 'kommo';
  name: string;
  brand: 'Kommo' | 'amoCRM';
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Known from the configuration, else learnt from the redirect's `referer`. */
  baseUrl?: string;
  consentUrl: string;
  seed: { authCode?: string; refreshToken?: string };
  longLivedTokenSet: boolean;
}

export interface BitrixApp {
  kind: 'bitrix24';
  name: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  portal: string;
  oauthServer: string;
  seed: { refreshToken?: string };
  webhookSet: boolean;
}

export type App = KommoApp | BitrixApp;

// ---------------------------------------------------------------- configuration

export function kommoApp(
  env: Env,
  target: 'kommo' | 'amocrm',
  configPath: string | undefined,
  connection: string | undefined,
): { app: KommoApp; store: string | undefined } {
  const hostGiven = pickEnv(env, 'KOMMO_SUBDOMAIN', 'KOMMO_BASE_URL', 'AMOCRM_DOMAIN');
  let base: Omit<KommoApp, 'consentUrl' | 'brand'>;
  let store: string | undefined;
  if (configPath || hostGiven) {
    // The account address is configured: validate everything the server will read.
    const cfg = loadConfig({ env, configPath });
    store = cfg.store;
    const c = pickConnection(cfg.connections, 'kommo', connection, configPath) as KommoConnection;
    if (!c.oauth) {
      throw new ConfigError([
        `${configPath ? `${configPath}: connections.${c.name}: client_id, client_secret, redirect_uri` : 'KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI'}: required for \`crm-mcp auth\` (the integration's ID, Secret key and Redirect URI from Kommo → Settings → Integrations)`,
      ]);
    }
    base = {
      kind: 'kommo',
      name: c.name,
      clientId: c.oauth.clientId,
      clientSecret: c.oauth.clientSecret,
      redirectUri: c.oauth.redirectUri,
      baseUrl: c.baseUrl,
      seed: { authCode: c.oauth.authCode, refreshToken: c.oauth.refreshToken },
      longLivedTokenSet: !!c.accessToken,
    };
  } else {
    // No account address yet: Kommo names it in the redirect (`referer`).
    const id = pickEnv(env, 'KOMMO_CLIENT_ID', 'AMOCRM_CLIENT_ID');
    const secret = pickEnv(env, 'KOMMO_CLIENT_SECRET', 'AMOCRM_CLIENT_SECRET');
    const redirect = pickEnv(env, 'KOMMO_REDIRECT_URI', 'AMOCRM_REDIRECT_URI');
    const missing = [!id && 'KOMMO_CLIENT_ID', !secret && 'KOMMO_CLIENT_SECRET', !redirect && 'KOMMO_REDIRECT_URI'].filter(Boolean);
    if (missing.length) {
      throw new ConfigError([
        `${missing.join(', ')}: required for \`crm-mcp auth ${target}\` (the integration's ID, Secret key and Redirect URI from Kommo → Settings → Integrations → your integration)`,
      ]);
    }
    const code = pickEnv(env, 'KOMMO_AUTH_CODE', 'AMOCRM_AUTH_CODE')?.value;
    const refresh = pickEnv(env, 'KOMMO_REFRESH_TOKEN', 'AMOCRM_REFRESH_TOKEN')?.value;
    base = {
      kind: 'kommo',
      name: 'kommo',
      clientId: id!.value,
      clientSecret: secret!.value,
      redirectUri: redirect!.value,
      seed: { authCode: code, refreshToken: refresh },
      longLivedTokenSet: !!pickEnv(env, 'KOMMO_ACCESS_TOKEN', 'KOMMO_LONG_LIVED_TOKEN', 'KOMMO_JWT_TOKEN'),
    };
    store = env.CRM_MCP_STORE?.trim() || undefined;
  }
  registerSecret(base.clientSecret);
  const amo = target === 'amocrm' || (!!base.baseUrl && /\.amocrm\.(ru|com)$/i.test(new URL(base.baseUrl).hostname));
  const oauthUrl = pickEnv(env, 'KOMMO_OAUTH_URL', 'AMOCRM_OAUTH_URL');
  let consentUrl = amo ? 'https://www.amocrm.ru/oauth' : 'https://www.kommo.com/oauth';
  if (oauthUrl) consentUrl = checkedUrl(oauthUrl.name, oauthUrl.value);
  return { app: { ...base, brand: amo ? 'amoCRM' : 'Kommo', consentUrl }, store };
}

export function bitrixApp(env: Env, configPath: string | undefined, connection: string | undefined): { app: BitrixApp; store: string | undefined } {
  const cfg = loadConfig({ env, configPath });
  const c = pickConnection(cfg.connections, 'bitrix24', connection, configPath) as BitrixConnection;
  if (!c.oauth) {
    throw new ConfigError([
      "BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL: required for `crm-mcp auth bitrix24` (the local or market app's client_id and client_secret, and your portal address)",
    ]);
  }
  const redirect = pickEnv(env, 'BITRIX_REDIRECT_URI');
  if (!redirect) {
    throw new ConfigError([
      'BITRIX_REDIRECT_URI: required for `crm-mcp auth bitrix24`: a loopback address such as http://127.0.0.1:8765/callback where the portal sends you back after you allow the app',
    ]);
  }
  registerSecret(c.oauth.clientSecret);
  return {
    app: {
      kind: 'bitrix24',
      name: c.name,
      clientId: c.oauth.clientId,
      clientSecret: c.oauth.clientSecret,
      redirectUri: redirect.value,
      portal: c.oauth.portal,
      oauthServer: c.oauth.oauthServer ?? 'https://oauth.bitrix.info',
      seed: { refreshToken: c.oauth.refreshToken },
      webhookSet: !!c.webhookUrl,
    },
    store: cfg.store,
  };
}

export function pickConnection(
  conns: Array<KommoConnection | BitrixConnection>,
  provider: 'kommo' | 'bitrix24',
  name: string | undefined,
  configPath: string | undefined,
) {
  const mine = conns.filter((c) => c.provider === provider);
  if (name) {
    const c = mine.find((x) => x.name === name);
    if (!c)
      throw new ConfigError([
        `--connection: no ${provider} connection named "${name}"${configPath ? ` in ${configPath}` : ''} (have: ${mine.map((x) => x.name).join(', ') || 'none'})`,
      ]);
    return c;
  }
  const withOAuth = mine.filter((c) => c.oauth);
  if (withOAuth.length > 1)
    throw new ConfigError([
      `--connection: ${withOAuth.length} ${provider} OAuth connections are configured (${withOAuth.map((c) => c.name).join(', ')}); name one`,
    ]);
  const c = withOAuth[0] ?? mine[0];
  if (!c) {
    throw new ConfigError([
      provider === 'kommo'
        ? 'KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI: required for `crm-mcp auth kommo`'
        : 'BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL: required for `crm-mcp auth bitrix24`',
    ]);
  }
  return c;
}

export function checkedUrl(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError([`${name}: "${raw}" is not a URL`]);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname)))
    throw new ConfigError([`${name}: must use https:// (plain http only for 127.0.0.1/localhost)`]);
  return `${u.origin}${u.pathname}`;
}
