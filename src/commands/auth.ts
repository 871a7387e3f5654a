/**
 * `crm-mcp auth kommo|amocrm|bitrix24`: the OAuth sign-in for an integration/app. Prints (and, on a terminal,
 * opens) the consent URL with a random `state`, waits for the browser's redirect on the loopback redirect URI,
 * checks `state`, exchanges the one-time code and saves the tokens in the store under the very key and record
 * shape the providers read (RotatingTokens), so the next `crm-mcp` start simply uses them.
 *
 * Kommo (fact sheet §2.1): consent at www.kommo.com/oauth (www.amocrm.ru/oauth), redirect with `code`,
 * `referer` (the account host: the token endpoint and API live there) and `state`; the code is single-use and
 * lives 20 minutes. Bitrix24 (§2.2): consent at {portal}/oauth/authorize/, redirect with `code`, `state`,
 * `domain`, `server_domain`; the code lives 30 seconds; the exchange goes to oauth.bitrix.info.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/config.js';
import { bitrixTokenKey } from '../providers/bitrix24/auth.js';
import { kommoTokenKey } from '../providers/kommo/auth.js';
import { seedHash, type TokenRecord } from '../providers/oauth.js';
import { openStore, type Store } from '../store/store.js';
import { registerSecret } from '../util/redact.js';
import { AuthError, listen, openBrowser, postToken } from './auth-browser.js';
import { bitrixApp, kommoApp, type App, type BitrixApp, type KommoApp } from './auth-apps.js';
import { isLoopbackHost, kommoAccountKey, out, type Env, type KommoAccountRecord } from './common.js';

const USAGE = `Usage: crm-mcp auth kommo|amocrm|bitrix24 [--config FILE] [--connection NAME] [--timeout SECONDS] [--no-browser]

Signs in to an OAuth integration (Kommo/amoCRM) or app (Bitrix24) and saves its tokens in the store.
Kommo needs KOMMO_CLIENT_ID, KOMMO_CLIENT_SECRET and KOMMO_REDIRECT_URI (a loopback address such as
http://127.0.0.1:8765/callback, entered as the integration's Redirect URI); the account address is taken from
Kommo's answer when KOMMO_SUBDOMAIN is not set. Bitrix24 needs BITRIX_CLIENT_ID, BITRIX_CLIENT_SECRET,
BITRIX_PORTAL and BITRIX_REDIRECT_URI.
`;

export { AuthError };

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      connection: { type: 'string' },
      timeout: { type: 'string', default: '600' },
      'no-browser': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const target = positionals[0]?.toLowerCase();
  if (values.help || !target) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  if (!['kommo', 'amocrm', 'bitrix24'].includes(target) || positionals.length > 1) {
    throw new ConfigError([`auth: unknown target "${positionals.join(' ')}" (expected kommo, amocrm or bitrix24)`]);
  }
  const timeoutSec = Number(values.timeout);
  if (!Number.isInteger(timeoutSec) || timeoutSec < 1 || timeoutSec > 3600)
    throw new ConfigError([`--timeout: "${values.timeout}" must be whole seconds between 1 and 3600`]);

  const { app, store: storeSpec } =
    target === 'bitrix24' ? bitrixApp(env, values.config, values.connection) : kommoApp(env, target as 'kommo' | 'amocrm', values.config, values.connection);
  const redirect = loopbackRedirect(app);
  const store = await openStore(storeSpec);
  try {
    if (store.description.startsWith('memory')) {
      throw new ConfigError(['CRM_MCP_STORE: "memory" keeps nothing after this command exits; use the default file store or a file path for `crm-mcp auth`']);
    }
    const state = randomBytes(24).toString('base64url');
    const consent = app.kind === 'kommo' ? kommoConsentUrl(app, state) : bitrixConsentUrl(app, state);
    const callback = await listen(redirect, timeoutSec);
    try {
      out(
        `Open this address in a browser to allow ${app.kind === 'kommo' ? `the ${app.brand} integration` : 'the Bitrix24 app'} access (waiting up to ${Math.round(timeoutSec / 60) || 1} min for the answer on ${redirect.origin}${redirect.pathname}):`,
      );
      out();
      out(`  ${consent}`);
      out();
      if (!values['no-browser'] && process.stdout.isTTY && env.CRM_MCP_NO_BROWSER !== '1') openBrowser(consent);
      const hit = await callback.next;
      try {
        const lines = app.kind === 'kommo' ? await finishKommo(app, store, state, hit.url) : await finishBitrix(app, store, state, hit.url);
        hit.reply(200, 'Signed in', `crm-mcp saved the ${app.kind === 'kommo' ? app.brand : 'Bitrix24'} tokens. You can close this tab.`);
        for (const l of lines) out(l);
        return 0;
      } catch (err) {
        hit.reply(400, 'Sign-in failed', err instanceof Error ? err.message : String(err));
        throw err;
      }
    } finally {
      await callback.close();
    }
  } finally {
    await store.close();
  }
}

/** The redirect URI must be a plain-http loopback address: this command listens there itself. */
function loopbackRedirect(app: App): URL {
  const name = app.kind === 'kommo' ? 'KOMMO_REDIRECT_URI' : 'BITRIX_REDIRECT_URI';
  let u: URL;
  try {
    u = new URL(app.redirectUri);
  } catch {
    throw new ConfigError([`${name}: "${app.redirectUri}" is not a URL (expected e.g. http://127.0.0.1:8765/callback)`]);
  }
  if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(u.hostname)) {
    throw new ConfigError([
      `${name}: "${app.redirectUri}" must be http://127.0.0.1:PORT/… or http://localhost:PORT/… for \`crm-mcp auth\`, which receives the redirect itself. ` +
        `Set the integration's Redirect URI to such an address (e.g. http://127.0.0.1:8765/callback)${app.kind === 'kommo' ? ', or keep your public one and set KOMMO_AUTH_CODE to a code you obtained there' : ''}.`,
    ]);
  }
  return u;
}

// ---------------------------------------------------------------- consent URLs

function kommoConsentUrl(app: KommoApp, state: string): string {
  const u = new URL(app.consentUrl);
  u.searchParams.set('client_id', app.clientId);
  u.searchParams.set('state', state);
  u.searchParams.set('mode', 'post_message');
  return u.toString();
}

function bitrixConsentUrl(app: BitrixApp, state: string): string {
  const u = new URL('/oauth/authorize/', app.portal);
  u.searchParams.set('client_id', app.clientId);
  u.searchParams.set('state', state);
  return u.toString();
}

// ---------------------------------------------------------------- answers and exchanges

/** Checks `state` before anything else (a forged or stale redirect must not even report an error code). */
function checkAnswer(q: URLSearchParams, state: string, what: string, again: string): string {
  const got = q.get('state');
  if (got !== state) {
    throw new AuthError(
      `The sign-in answer carried ${got === null ? 'no' : 'a different'} state than this run sent (a stale browser tab from an earlier attempt, or a forged request). Nothing was saved. Run \`${again}\` again and use the newly printed address.`,
    );
  }
  const error = q.get('error');
  if (error === 'access_denied')
    throw new AuthError(`Access was declined in ${what} (error=access_denied). Nothing was saved. Run \`${again}\` again and choose "Allow".`);
  if (error) throw new AuthError(`${what} answered error=${error}${q.get('error_description') ? ` (${q.get('error_description')})` : ''}. Nothing was saved.`);
  const code = q.get('code');
  if (!code) throw new AuthError(`${what} sent no authorization code. Nothing was saved. Run \`${again}\` again.`);
  registerSecret(code);
  return code;
}

/** The account origin from Kommo's `referer`, refused unless it is a Kommo/amoCRM host (the client secret goes there). */
function kommoAccountOrigin(app: KommoApp, referer: string | null): string {
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

async function finishKommo(app: KommoApp, store: Store, state: string, url: URL): Promise<string[]> {
  const again = `crm-mcp auth ${app.brand === 'amoCRM' ? 'amocrm' : 'kommo'}`;
  const code = checkAnswer(url.searchParams, state, app.brand, again);
  const origin = kommoAccountOrigin(app, url.searchParams.get('referer'));
  // §2.1: POST {account}/oauth2/access_token with a JSON body; the code is single-use and lives 20 minutes.
  const r = await postToken(new URL('/oauth2/access_token', origin), {
    json: { client_id: app.clientId, client_secret: app.clientSecret, grant_type: 'authorization_code', code, redirect_uri: app.redirectUri },
  });
  const b = r.body;
  if (r.status !== 200 || typeof b?.access_token !== 'string' || typeof b.refresh_token !== 'string') {
    throw new AuthError(kommoExchangeError(r.status, b, app, again));
  }
  const key = kommoTokenKey(origin, app.clientId);
  await save(store, key, app.seed, {
    access_token: b.access_token,
    refresh_token: b.refresh_token,
    expires_in: typeof b.expires_in === 'number' ? b.expires_in : 86_400,
  });
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

function kommoExchangeError(status: number, b: Record<string, unknown> | undefined, app: KommoApp, again: string): string {
  const hint = typeof b?.hint === 'string' ? b.hint : typeof b?.detail === 'string' ? b.detail : `HTTP ${status}`;
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

async function finishBitrix(app: BitrixApp, store: Store, state: string, url: URL): Promise<string[]> {
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
  const r = await postToken(new URL('/oauth/token/', app.oauthServer), {
    form: new URLSearchParams({ grant_type: 'authorization_code', client_id: app.clientId, client_secret: app.clientSecret, code }),
  });
  const b = r.body;
  if (r.status !== 200 || typeof b?.access_token !== 'string' || typeof b.refresh_token !== 'string') {
    const error = typeof b?.error === 'string' ? b.error : `HTTP ${r.status}`;
    const said = `the OAuth server answered ${r.status} ${error}`;
    if (error === 'invalid_client' || error === 'wrong_client' || r.status === 401) {
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
  const extra: Record<string, string> = {};
  if (typeof b.client_endpoint === 'string') extra.client_endpoint = b.client_endpoint;
  if (typeof b.scope === 'string') extra.scope = b.scope;
  await save(store, bitrixTokenKey(app.portal, app.clientId), app.seed, {
    access_token: b.access_token,
    refresh_token: b.refresh_token,
    expires_in: typeof b.expires_in === 'number' ? b.expires_in : 3600,
    extra,
  });
  const lines = [
    `Signed in to Bitrix24 portal ${portalHost}; tokens saved in ${store.description}.`,
    'The next `crm-mcp` start uses these tokens and refreshes them by itself.',
  ];
  const scopes = (extra.scope ?? url.searchParams.get('scope') ?? '').split(/[ ,]+/).filter(Boolean);
  if (scopes.length && !scopes.includes('crm'))
    lines.push(`Warning: the app was granted ${scopes.join(', ')} but not crm; add the crm scope to the app, reinstall it and sign in again.`);
  if (app.webhookSet) lines.push('Note: BITRIX_WEBHOOK_BASE is also set and takes precedence over OAuth; remove it to use the tokens just saved.');
  return lines;
}

/**
 * Writes the record RotatingTokens reads, under its refresh lock. The generation continues the stored chain
 * (a running server adopts only a newer generation), and a configured seed is marked as consumed so it does
 * not replace these tokens at the next start.
 */
async function save(
  store: Store,
  key: string,
  seed: { authCode?: string; refreshToken?: string },
  g: { access_token: string; refresh_token: string; expires_in: number; extra?: Record<string, string> },
): Promise<void> {
  registerSecret(g.access_token);
  registerSecret(g.refresh_token);
  await store.withLock(`refresh:${key}`, 30_000, async () => {
    const prev = await store.get<TokenRecord>(key);
    const now = Date.now();
    const rec: TokenRecord = {
      access_token: g.access_token,
      refresh_token: g.refresh_token,
      expires_at: now + g.expires_in * 1000,
      obtained_at: now,
      generation: (prev?.generation ?? 0) + 1,
      ...(seedHash(seed) ? { seed: seedHash(seed) } : {}),
      ...(g.extra && Object.keys(g.extra).length ? { extra: g.extra } : {}),
    };
    await store.set(key, rec);
  });
}
