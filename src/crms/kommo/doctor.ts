/**
 * `crm-mcp doctor`: the checks of a Kommo connection (long-lived token or OAuth integration), loaded when
 * doctor runs (contract.ts `DoctorPart`). Says, for each problem, what to do about it; never prints a secret.
 */
import { CrmError } from '../../domain/errors.js';
import { modeOf } from '../../policy/policy.js';
import { redact } from '../../util/redact.js';
import type { DoctorDeps } from '../contract.js';
import { type Check, type ConnectionReport, ctx, DAY, day, daysLeft, iso, pushCommon, refusedCheck, reseeds, WARN_DAYS } from '../doctor-types.js';
import { refreshRefused, seedHash, type TokenRecord } from '../oauth.js';
import type { CrmProvider } from '../types.js';
import { describeToken, kommoTokenKey } from './auth.js';
import { kommoConnection, type KommoConnection } from './connection.js';
import { KOMMO_RPS } from './metadata.js';
import type { KommoProvider } from './provider.js';
import { kommoAccountKey, type KommoAccountRecord } from './sign-in.js';

/** §2.1: a Kommo refresh token not used for 3 months dies. */
export const KOMMO_REFRESH_LIFETIME = 90 * DAY;

export async function checkKommo(c: KommoConnection, deps: DoctorDeps): Promise<{ report: ConnectionReport; provider?: CrmProvider }> {
  const { store } = deps;
  const checks: Check[] = [];
  const oauth = !c.accessToken && !!c.oauth;
  let reached: CrmProvider | undefined;
  const report: ConnectionReport = {
    name: c.name,
    provider: c.provider,
    address: kommoConnection.address(c),
    auth: { type: oauth ? 'oauth' : 'long-lived', expires_at: null, days_left: null, scopes: null },
    account: null,
    policy: modeOf(c.policy),
    rate_limit: `${KOMMO_RPS} requests/s per integration (Kommo)`,
    checks,
  };
  checks.push({ check: 'config', status: 'ok', detail: `${c.baseUrl}, ${oauth ? `OAuth integration ${c.oauth!.clientId}` : 'long-lived token'}` });
  const reauth = oauth
    ? `run \`crm-mcp auth ${/amocrm/.test(c.baseUrl) ? 'amocrm' : 'kommo'}\``
    : 'create a new long-lived token in Kommo → Settings → Integrations → your integration → Keys and scopes and set KOMMO_ACCESS_TOKEN, or run `crm-mcp auth kommo`';

  let reachable = true;
  if (!oauth) {
    const d = await describeToken(c.accessToken);
    const exp = d.expires_at ? Date.parse(d.expires_at) : undefined;
    report.auth.expires_at = d.expires_at;
    report.auth.scopes = d.scopes;
    if (exp === undefined) checks.push({ check: 'token', status: 'ok', detail: 'long-lived token (not a JWT: expiry unknown)' });
    else {
      const left = daysLeft(exp);
      report.auth.days_left = left;
      if (exp <= Date.now()) {
        reachable = false;
        checks.push({
          check: 'token',
          status: 'error',
          detail: `the long-lived token expired on ${day(exp)}`,
          fix: `Create a new long-lived token in Kommo → Settings → Integrations → your integration → Keys and scopes (choose a longer lifetime) and set KOMMO_ACCESS_TOKEN.`,
        });
      } else if (exp - Date.now() < WARN_DAYS * DAY) {
        checks.push({
          check: 'token',
          status: 'warn',
          detail: `the long-lived token expires on ${day(exp)} (${left} days left)`,
          fix: `Before ${day(exp)}, create a new long-lived token in Kommo → Settings → Integrations → Keys and scopes and replace KOMMO_ACCESS_TOKEN.`,
        });
      } else checks.push({ check: 'token', status: 'ok', detail: `long-lived token, expires ${day(exp)} (${left} days left)` });
    }
  } else {
    const key = kommoTokenKey(c.baseUrl, c.oauth!.clientId);
    const rec = await store.get<TokenRecord>(key);
    if (rec?.refused_at && !reseeds(rec, seedHash({ authCode: c.oauth!.authCode, refreshToken: c.oauth!.refreshToken }))) {
      // Nothing is sent: the CRM already refused this refresh token (see RotatingTokens).
      reachable = false;
      checks.push(refusedCheck('Kommo', rec, reauth));
    } else if (!rec && !c.oauth!.authCode && !c.oauth!.refreshToken) {
      reachable = false;
      const known = await store.get<KommoAccountRecord>(kommoAccountKey(c.oauth!.clientId));
      const elsewhere = known && known.base_url !== c.baseUrl;
      checks.push({
        check: 'token',
        status: 'error',
        detail: `no OAuth tokens for ${c.baseUrl} in ${store.description}${elsewhere ? ` (the integration was authorized for ${known.base_url})` : ''}`,
        fix: elsewhere
          ? `Set KOMMO_BASE_URL=${known.base_url}, or ${reauth} for ${c.baseUrl}.`
          : `Sign in: ${reauth} (or set KOMMO_REFRESH_TOKEN / KOMMO_AUTH_CODE).`,
      });
    }
  }

  if (reachable) {
    try {
      const p = (await deps.build()) as KommoProvider;
      const acc = (await p.call<Record<string, unknown>>(ctx(), 'GET', '/api/v4/account')) ?? {};
      report.account = { id: typeof acc.id === 'number' ? acc.id : null, name: typeof acc.name === 'string' && !deps.deep ? acc.name : null };
      reached = p;
      checks.push({ check: 'account', status: 'ok', detail: `reached ${report.account.name ?? 'the account'} (id ${report.account.id ?? '?'})` });
    } catch (err) {
      reachable = false;
      checks.push(kommoFailure(err, c, reauth));
    }
  } else checks.push({ check: 'account', status: 'skipped', detail: 'not tried: no usable token' });

  if (oauth) {
    // Read after the account call: it may have refreshed the pair.
    const rec = await store.get<TokenRecord>(kommoTokenKey(c.baseUrl, c.oauth!.clientId));
    if (rec && !rec.refused_at) {
      const d = await describeToken(rec.access_token);
      const refreshDies = rec.obtained_at + KOMMO_REFRESH_LIFETIME;
      report.auth.expires_at = iso(rec.expires_at);
      report.auth.days_left = daysLeft(rec.expires_at);
      report.auth.refresh_expires_at = iso(refreshDies);
      report.auth.scopes = d.scopes;
      const left = daysLeft(refreshDies);
      if (refreshDies <= Date.now()) {
        checks.push({
          check: 'token',
          status: 'error',
          detail: `the refresh token was last renewed on ${day(rec.obtained_at)}; unused for 3 months, it is dead`,
          fix: `Sign in again: ${reauth}.`,
        });
      } else if (refreshDies - Date.now() < WARN_DAYS * DAY) {
        checks.push({
          check: 'token',
          status: 'warn',
          detail: `OAuth; the refresh token dies on ${day(refreshDies)} (${left} days left) unless it is used`,
          fix: 'Start crm-mcp and make any tool call (it refreshes the pair), or run `crm-mcp doctor` again; otherwise sign in again with `crm-mcp auth kommo`.',
        });
      } else {
        checks.push({
          check: 'token',
          status: 'ok',
          detail: `OAuth: access token until ${iso(rec.expires_at)} (renewed automatically); refresh token valid until ${day(refreshDies)} if unused (Kommo drops refresh tokens unused for 3 months)`,
        });
      }
    }
  }

  if (report.auth.scopes) {
    if (!report.auth.scopes.includes('crm')) {
      checks.push({
        check: 'scopes',
        status: 'error',
        detail: `granted scopes ${report.auth.scopes.join(', ') || '(none)'} lack crm`,
        fix: `Tick the CRM scope for the integration in Kommo → Settings → Integrations → Keys and scopes, then ${oauth ? 'sign in again (`crm-mcp auth kommo`)' : 'create a new long-lived token'}.`,
      });
    } else checks.push({ check: 'scopes', status: 'ok', detail: report.auth.scopes.join(', ') });
  } else checks.push({ check: 'scopes', status: 'ok', detail: 'not stated by the token' });

  pushCommon(checks, report, store, oauth);
  return { report, provider: reached };
}

function kommoFailure(err: unknown, c: KommoConnection, reauth: string): Check {
  const e = err instanceof CrmError ? err : undefined;
  const host = new URL(c.baseUrl).host;
  if (e?.code === 'network') {
    return {
      check: 'account',
      status: 'error',
      detail: `cannot reach ${c.baseUrl}: ${e.message}`,
      fix: `Check the account address (KOMMO_SUBDOMAIN / KOMMO_BASE_URL / AMOCRM_DOMAIN: is ${host} right?), your network, proxy and firewall.`,
    };
  }
  if (refreshRefused(e)) {
    return {
      check: 'account',
      status: 'error',
      detail: `Kommo (${host}) refused the stored refresh token: it is spent or revoked`,
      fix: `Sign in again: ${reauth}.`,
    };
  }
  if (e?.status === 401 || e?.code === 'auth') {
    return {
      check: 'account',
      status: 'error',
      detail: `401 from Kommo (${host}): the token was revoked or expired`,
      fix: `${reauth[0]!.toUpperCase()}${reauth.slice(1)}.`,
    };
  }
  if (e?.status === 402)
    return {
      check: 'account',
      status: 'error',
      detail: '402 from Kommo: the account is not paid',
      fix: 'Renew the Kommo subscription; the API is closed until then.',
    };
  if (e?.status === 403) {
    return {
      check: 'account',
      status: 'error',
      detail: `403 from Kommo: ${e.message}`,
      fix: 'The account or IP was blocked (after repeated 429s, or by an IP whitelist): ask Kommo support to unblock it, and keep to 7 requests/s.',
    };
  }
  if (e?.status === 404)
    return {
      check: 'account',
      status: 'error',
      detail: `404 from ${host}: no Kommo account answers there`,
      fix: 'Check KOMMO_SUBDOMAIN / KOMMO_BASE_URL: the account address may have changed.',
    };
  return {
    check: 'account',
    status: 'error',
    detail: redact(`Kommo did not answer as expected: ${(err as Error)?.message ?? String(err)}`),
    fix: 'Try again in a minute; if it persists run with CRM_LOG_LEVEL=debug and check the Kommo status page.',
  };
}
