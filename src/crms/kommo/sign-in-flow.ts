/**
 * The Kommo sign-in (fact sheet §2.1), loaded when `crm-mcp auth kommo|amocrm` runs: consent at
 * www.kommo.com/oauth (www.amocrm.ru/oauth), redirect with `code`, `referer` (the account host: the token
 * endpoint and API live there) and `state`; the code is single-use and lives 20 minutes.
 */
import { readVar } from '../../config/env-types.js';
import type { Store } from '../../store/store.js';
import { registerSecret } from '../../util/redact.js';
import type { SignInContext, SignInFlow } from '../contract.js';
import { AuthError, checkAnswer, checkedUrl, exchangeCode, isLoopbackHost, pickConnection, saveTokens } from '../sign-in-kit.js';
import { KOMMO_KIND } from './capabilities.js';
import { kommoTokenEndpoint, kommoTokenKey } from './auth.js';
import type { KommoConnection } from './connection.js';
import { KOMMO_ENV as V } from './env.js';
import { kommoAccountKey, type KommoAccountRecord } from './account-record.js';

interface KommoApp {
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

export function prepareKommo(ctx: SignInContext): Promise<SignInFlow> {
  const { app, store } = kommoApp(ctx);
  return Promise.resolve({
    redirectUri: app.redirectUri,
    redirectVar: 'KOMMO_REDIRECT_URI',
    redirectAlternative: ', or keep your public one and set KOMMO_AUTH_CODE to a code you obtained there',
    store,
    grantee: `the ${app.brand} integration`,
    brand: app.brand,
    consentUrl: (state) => consentUrl(app, state),
    finish: (s, state, answer) => finish(app, s, state, answer),
  });
}

/** Which integration to sign in with, from the environment or a config file. */
function kommoApp(ctx: SignInContext): { app: KommoApp; store: string | undefined } {
  const { env, configPath } = ctx;
  const hostGiven = readVar(env, V.KOMMO_SUBDOMAIN) ?? readVar(env, V.KOMMO_BASE_URL) ?? readVar(env, V.AMOCRM_DOMAIN);
  let base: Omit<KommoApp, 'consentUrl' | 'brand'>;
  let store: string | undefined;
  if (configPath || hostGiven) {
    // The account address is configured: validate everything the server will read.
    const cfg = ctx.loadConfig();
    store = cfg.store;
    const c = pickConnection<KommoConnection>(
      ctx,
      cfg.connections,
      KOMMO_KIND,
      'KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI: required for `crm-mcp auth kommo`',
    );
    if (!c.oauth) {
      throw ctx.problem([
        `${configPath ? `${configPath}: connections.${c.name}: client_id, client_secret, redirect_uri` : 'KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET, KOMMO_REDIRECT_URI'}: required for \`crm-mcp auth\` (the integration's ID, Secret key and Redirect URI from Kommo → Settings → Integrations)`,
      ]);
    }
    base = {
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
    const id = readVar(env, V.KOMMO_CLIENT_ID);
    const secret = readVar(env, V.KOMMO_CLIENT_SECRET);
    const redirect = readVar(env, V.KOMMO_REDIRECT_URI);
    const missing = [!id && 'KOMMO_CLIENT_ID', !secret && 'KOMMO_CLIENT_SECRET', !redirect && 'KOMMO_REDIRECT_URI'].filter(Boolean);
    if (missing.length) {
      throw ctx.problem([
        `${missing.join(', ')}: required for \`crm-mcp auth ${ctx.name}\` (the integration's ID, Secret key and Redirect URI from Kommo → Settings → Integrations → your integration)`,
      ]);
    }
    base = {
      name: KOMMO_KIND,
      clientId: id!.value,
      clientSecret: secret!.value,
      redirectUri: redirect!.value,
      seed: { authCode: readVar(env, V.KOMMO_AUTH_CODE)?.value, refreshToken: readVar(env, V.KOMMO_REFRESH_TOKEN)?.value },
      longLivedTokenSet: !!readVar(env, V.KOMMO_ACCESS_TOKEN),
    };
    store = env.CRM_MCP_STORE?.trim() || undefined;
  }
  registerSecret(base.clientSecret);
  const amo = ctx.name === 'amocrm' || (!!base.baseUrl && /\.amocrm\.(ru|com)$/i.test(new URL(base.baseUrl).hostname));
  const oauthUrl = readVar(env, V.KOMMO_OAUTH_URL);
  let consent = amo ? 'https://www.amocrm.ru/oauth' : 'https://www.kommo.com/oauth';
  if (oauthUrl) consent = checkedUrl(ctx, oauthUrl.name, oauthUrl.value);
  return { app: { ...base, brand: amo ? 'amoCRM' : 'Kommo', consentUrl: consent }, store };
}

function consentUrl(app: KommoApp, state: string): string {
  const u = new URL(app.consentUrl);
  u.searchParams.set('client_id', app.clientId);
  u.searchParams.set('state', state);
  u.searchParams.set('mode', 'post_message');
  return u.toString();
}

/** The account origin from Kommo's `referer`, refused unless it is a Kommo/amoCRM host (the client secret goes there). */
function accountOrigin(app: KommoApp, referer: string | null): string {
  if (!referer) throw new AuthError('Kommo did not say which account was authorized (no referer in the redirect). Nothing was saved.');
  const host = referer
    .replace(/^https?:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  if (!/^[a-z0-9.-]+(:\d{1,5})?$/.test(host)) throw new AuthError(`Kommo named an unusable account host "${referer}". Nothing was saved.`);
  const hostname = host.replace(/:\d+$/, '');
  const configured = app.baseUrl ? new URL(app.baseUrl) : undefined;
  if (configured && configured.host === host) return configured.origin;
  if (/^[a-z0-9-]+\.(kommo\.com|amocrm\.ru|amocrm\.com)$/.test(host)) return `https://${host}`;
  // Loopback accounts (the emulator) only when the consent page itself is on loopback.
  if (isLoopbackHost(hostname) && isLoopbackHost(new URL(app.consentUrl).hostname)) return `http://${host}`;
  throw new AuthError(
    `The redirect named "${host}" as the account, which is not a Kommo/amoCRM address; the client secret is not sent there. Nothing was saved.`,
  );
}

async function finish(app: KommoApp, store: Store, state: string, url: URL): Promise<string[]> {
  const again = `crm-mcp auth ${app.brand === 'amoCRM' ? 'amocrm' : 'kommo'}`;
  const code = checkAnswer(url.searchParams, state, app.brand, again);
  const origin = accountOrigin(app, url.searchParams.get('referer'));
  // §2.1: the exchange goes to the account the redirect named; the code is single-use and lives 20 minutes.
  const ep = kommoTokenEndpoint({ baseUrl: origin, clientId: app.clientId, clientSecret: app.clientSecret, redirectUri: app.redirectUri });
  const r = await exchangeCode(ep, code);
  if ('refused' in r) throw new AuthError(exchangeError(r.refused.status, ep.reason(r.refused.body), app, again));
  await saveTokens(store, kommoTokenKey(origin, app.clientId), app.seed, r.grant);
  await store.set<KommoAccountRecord>(kommoAccountKey(app.clientId), { base_url: origin, saved_at: Date.now() });
  const lines = [`Signed in to ${app.brand} account ${new URL(origin).host}; tokens saved in ${store.description}.`];
  if (!app.baseUrl) {
    lines.push(`Next: set KOMMO_BASE_URL=${origin} next to KOMMO_CLIENT_ID (or run \`crm-mcp config claude\`, which adds it), then start crm-mcp as usual.`);
  } else if (app.baseUrl !== origin) {
    lines.push(`Note: the account you authorized (${origin}) is not the configured one (${app.baseUrl}); set KOMMO_BASE_URL=${origin} to use it.`);
  } else {
    lines.push('The next `crm-mcp` start uses these tokens and refreshes them by itself.');
  }
  if (app.longLivedTokenSet) lines.push('Note: KOMMO_ACCESS_TOKEN is also set and takes precedence over OAuth; remove it to use the tokens just saved.');
  if (app.seed.authCode) lines.push('Note: KOMMO_AUTH_CODE is no longer needed; you may remove it (it will not be exchanged again).');
  return lines;
}

function exchangeError(status: number, reason: string | undefined, app: KommoApp, again: string): string {
  const hint = reason ?? `HTTP ${status}`;
  const said = `${app.brand} answered ${status}: "${hint}"`;
  if (/expired/i.test(hint))
    return `The authorization code expired before it was exchanged (${said}). Codes live 20 minutes: run \`${again}\` again and allow access right away. Nothing was saved.`;
  if (/revoked/i.test(hint)) return `The authorization code was already used (${said}); codes are single-use. Run \`${again}\` again. Nothing was saved.`;
  if (/decrypt|code/i.test(hint) && !/client/i.test(hint))
    return `${app.brand} did not accept the authorization code (${said}). Run \`${again}\` again. Nothing was saved.`;
  if (/client_id/i.test(hint))
    return `${app.brand} does not know this integration (${said}): check KOMMO_CLIENT_ID (the Integration ID under Settings → Integrations → your integration → Keys and scopes). Nothing was saved.`;
  if (/client|secret|authentication/i.test(hint) || status === 401) {
    return `${app.brand} rejected the integration's credentials (${said}): KOMMO_CLIENT_SECRET is wrong or was regenerated. Copy the Secret key again from Settings → Integrations → your integration → Keys and scopes, then run \`${again}\` again. Nothing was saved.`;
  }
  if (/redirect/i.test(hint))
    return `${app.brand} refused the redirect URI (${said}): KOMMO_REDIRECT_URI must equal the integration's Redirect URI exactly. Nothing was saved.`;
  return `${app.brand} could not exchange the authorization code (${said}). Nothing was saved.`;
}
