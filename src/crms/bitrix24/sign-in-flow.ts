/**
 * The Bitrix24 sign-in (fact sheet §2.2), loaded when `crm-mcp auth bitrix24` runs: consent at
 * {portal}/oauth/authorize/, redirect with `code`, `state`, `domain`, `server_domain`; the code lives 30
 * seconds; the exchange goes to oauth.bitrix.info.
 */
import { readVar } from '../../config/env-types.js';
import type { Store } from '../../store/store.js';
import { registerSecret } from '../../util/redact.js';
import type { SignInContext, SignInFlow } from '../contract.js';
import { AuthError, checkAnswer, exchangeCode, pickConnection, saveTokens } from '../sign-in-kit.js';
import { BITRIX24_KIND } from './capabilities.js';
import { bitrixTokenEndpoint, bitrixTokenKey } from './auth.js';
import type { BitrixConnection } from './connection.js';
import { BITRIX24_ENV as V } from './env.js';

interface BitrixApp {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  portal: string;
  /** The OAuth server when not oauth.bitrix.info (the emulator). */
  oauthServer?: string;
  seed: { refreshToken?: string };
  webhookSet: boolean;
}

export function prepareBitrix(ctx: SignInContext): Promise<SignInFlow> {
  const { app, store } = bitrixApp(ctx);
  return Promise.resolve({
    redirectUri: app.redirectUri,
    redirectVar: 'BITRIX_REDIRECT_URI',
    store,
    grantee: 'the Bitrix24 app',
    brand: 'Bitrix24',
    consentUrl: (state) => consentUrl(app, state),
    finish: (s, state, answer) => finish(app, s, state, answer),
  });
}

/** Which app to sign in with: the portal and the app come from the configuration, the redirect URI from the environment. */
function bitrixApp(ctx: SignInContext): { app: BitrixApp; store: string | undefined } {
  const cfg = ctx.loadConfig();
  const c = pickConnection<BitrixConnection>(
    ctx,
    cfg.connections,
    BITRIX24_KIND,
    'BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL: required for `crm-mcp auth bitrix24`',
  );
  if (!c.oauth) {
    throw ctx.problem([
      "BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET, BITRIX_PORTAL: required for `crm-mcp auth bitrix24` (the local or market app's client_id and client_secret, and your portal address)",
    ]);
  }
  const redirect = readVar(ctx.env, V.BITRIX_REDIRECT_URI);
  if (!redirect) {
    throw ctx.problem([
      'BITRIX_REDIRECT_URI: required for `crm-mcp auth bitrix24`: a loopback address such as http://127.0.0.1:8765/callback where the portal sends you back after you allow the app',
    ]);
  }
  registerSecret(c.oauth.clientSecret);
  return {
    app: {
      clientId: c.oauth.clientId,
      clientSecret: c.oauth.clientSecret,
      redirectUri: redirect.value,
      portal: c.oauth.portal,
      oauthServer: c.oauth.oauthServer,
      seed: { refreshToken: c.oauth.refreshToken },
      webhookSet: !!c.webhookUrl,
    },
    store: cfg.store,
  };
}

function consentUrl(app: BitrixApp, state: string): string {
  const u = new URL('/oauth/authorize/', app.portal);
  u.searchParams.set('client_id', app.clientId);
  u.searchParams.set('state', state);
  return u.toString();
}

async function finish(app: BitrixApp, store: Store, state: string, url: URL): Promise<string[]> {
  const again = 'crm-mcp auth bitrix24';
  const code = checkAnswer(url.searchParams, state, 'Bitrix24', again);
  const portalHost = new URL(app.portal).host.toLowerCase();
  const domain = url.searchParams.get('domain')?.toLowerCase();
  if (domain && domain !== portalHost) {
    throw new AuthError(
      `The app was allowed on ${domain}, but BITRIX_PORTAL is ${portalHost}. Set BITRIX_PORTAL=${domain} (or sign in on ${portalHost}) and run \`${again}\` again. Nothing was saved.`,
    );
  }
  // §2.2: the exchange goes to the OAuth server (oauth.bitrix.info), never to the portal; the code lives 30 s.
  const ep = bitrixTokenEndpoint(app);
  const r = await exchangeCode(ep, code);
  if ('refused' in r) {
    const { status } = r.refused;
    const error = ep.reason(r.refused.body) ?? `HTTP ${status}`;
    const said = `the OAuth server answered ${status} ${error}`;
    if (error === 'invalid_client' || error === 'wrong_client' || status === 401) {
      throw new AuthError(
        `Bitrix24 rejected the app's credentials (${said}): check BITRIX_CLIENT_ID and BITRIX_CLIENT_SECRET (the app's client_id / client_secret in Developer resources or the Vendor area). Nothing was saved.`,
      );
    }
    if (error === 'invalid_grant' || error === 'bad_verification_code') {
      throw new AuthError(
        `The authorization code expired or was already used (${said}). Bitrix24 codes live 30 seconds and are single-use: run \`${again}\` again. Nothing was saved.`,
      );
    }
    throw new AuthError(`Bitrix24 could not exchange the authorization code (${said}). Nothing was saved.`);
  }
  await saveTokens(store, bitrixTokenKey(app.portal, app.clientId), app.seed, r.grant);
  const lines = [
    `Signed in to Bitrix24 portal ${portalHost}; tokens saved in ${store.description}.`,
    'The next `crm-mcp` start uses these tokens and refreshes them by itself.',
  ];
  const scopes = (r.grant.extra?.scope ?? url.searchParams.get('scope') ?? '').split(/[ ,]+/).filter(Boolean);
  if (scopes.length && !scopes.includes('crm'))
    lines.push(`Warning: the app was granted ${scopes.join(', ')} but not crm; add the crm scope to the app, reinstall it and sign in again.`);
  if (app.webhookSet) lines.push('Note: BITRIX_WEBHOOK_BASE is also set and takes precedence over OAuth; remove it to use the tokens just saved.');
  return lines;
}
