/**
 * `crm-mcp doctor`: checks every configured connection the way the server would use it (same config loader,
 * same providers, same store) and says, for each problem, what to do about it. Never prints a secret.
 *
 * Exit codes: 0 healthy; 1 at least one problem; 3 only warnings (e.g. a token expiring within 7 days), so a
 * cron job can tell "act soon" from "broken"; 2 bad command-line usage.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { configWarnings } from '../config/checks.js';
import { ConfigError, loadConfig, type AppConfig, type BitrixConnection, type KommoConnection } from '../config/config.js';
import { configFix } from '../config/hints.js';
import { CrmError } from '../http/errors.js';
import { Grant, modeOf } from '../policy/policy.js';
import { BITRIX_PLANS, BitrixProvider } from '../providers/bitrix24/provider.js';
import { describeToken, kommoTokenKey } from '../providers/kommo/auth.js';
import { KOMMO_RPS, KommoProvider } from '../providers/kommo/provider.js';
import { refreshRefused, seedHash, type TokenRecord } from '../providers/oauth.js';
import type { CallContext } from '../providers/types.js';
import { bitrixTokenKey } from '../providers/bitrix24/auth.js';
import { portalMoveKey, type PortalMove } from '../providers/bitrix24/relocation.js';
import { openStore, type Store } from '../store/store.js';
import { createLogger } from '../util/log.js';
import { redact } from '../util/redact.js';
import { VERSION } from '../version.js';
import { deepProbe, renderDeep, type DeepReport } from './doctor-deep.js';
import { kommoAccountKey, learntKommoHost, maskWebhook, out, type Env, type KommoAccountRecord } from './common.js';

const DAY = 86_400_000;
/** A token this close to expiry is a warning. */
const WARN_DAYS = 7;
/** §2.1: a Kommo refresh token not used for 3 months dies. */
const KOMMO_REFRESH_LIFETIME = 90 * DAY;

export type Severity = 'ok' | 'warn' | 'error' | 'skipped';

export interface Check {
  check: string;
  status: Severity;
  detail: string;
  fix?: string;
}

export interface ConnectionReport {
  name: string;
  provider: 'kommo' | 'bitrix24';
  address: string;
  auth: { type: 'long-lived' | 'oauth' | 'webhook'; expires_at: string | null; days_left: number | null; refresh_expires_at?: string | null; scopes: string[] | null };
  account: { id: number | string | null; name: string | null } | null;
  policy: string;
  rate_limit: string;
  checks: Check[];
  /** `--deep` only: what the read-only probe found on the account (null: not run, the account was not reached). */
  deep?: DeepReport | null;
}

export interface Problem {
  connection: string;
  check: string;
  severity: 'error' | 'warn';
  message: string;
  fix: string;
}

export interface DoctorReport {
  version: string;
  ok: boolean;
  exit_code: number;
  store: string | null;
  connections: ConnectionReport[];
  problems: Problem[];
}

const USAGE = `Usage: crm-mcp doctor [--deep] [--json] [--config FILE]

Checks every configured connection: configuration, reaching the account, token type and expiry, granted
scopes, safety mode, rate-limit profile and the token store. Exit code 0 = healthy, 1 = problems found,
3 = warnings only (e.g. a token expiring within ${WARN_DAYS} days).

--deep  also checks, read-only and in at most 100 requests per connection, what only a real account can
        tell: which phone formats the CRM's search and crm-mcp's duplicate check find (on a few existing
        contacts), whether list filters are applied (Kommo), how many users and fields are read, the
        rate-limit and operating-time budget. An assumption that does not hold is a warning, with what
        crm-mcp does about it. Prints ids and counts only (no names, phones or emails): fit for a bug report.
`;

export async function run(argv: string[], env: Env = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, deep: { type: 'boolean', default: false }, config: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  });
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const report = await diagnose(env, values.config, { deep: values.deep });
  if (values.json) out(redact(JSON.stringify(report, null, 2)));
  else out(render(report));
  return report.exit_code;
}

export interface DiagnoseOptions {
  /** Run the read-only deep probe (doctor-deep.ts) on every reachable connection; names are left out. */
  deep?: boolean;
}

export async function diagnose(env: Env, configPath?: string, opts: DiagnoseOptions = {}): Promise<DoctorReport> {
  const problems: Problem[] = [];
  const connections: ConnectionReport[] = [];
  let storeDescription: string | null = null;
  let config: AppConfig | undefined;
  try {
    config = loadConfig({ env, configPath });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const learnt = await learntKommoHost(env).catch(() => undefined);
    for (const p of err.problems) {
      const fix = learnt && /KOMMO_SUBDOMAIN .*required/.test(p) ? `Set KOMMO_BASE_URL=${learnt} (the account \`crm-mcp auth kommo\` signed in to).` : configFix(p);
      problems.push({ connection: '(config)', check: 'config', severity: 'error', message: redact(p), fix });
    }
  }
  if (config) {
    for (const w of configWarnings(config)) {
      problems.push({ connection: '(config)', check: 'config', severity: 'warn', message: w, fix: warningFix(w) });
    }
    let store: Store | undefined;
    try {
      // The default file lives under the CRM_MCP_HOME of the environment given (not only process.env's).
      store = await openStore(config.store ?? (env.CRM_MCP_HOME ? join(env.CRM_MCP_HOME, 'store.json') : undefined));
      storeDescription = store.description;
    } catch (err) {
      problems.push({
        connection: '(store)',
        check: 'store',
        severity: 'error',
        message: redact(`The token store cannot be opened: ${(err as Error).message}`),
        fix: 'Point CRM_MCP_STORE at a writable file (default ~/.crm-mcp/store.json), or fix the permissions of the one configured.',
      });
    }
    if (store) {
      try {
        for (const c of config.connections) {
          const reached: Reached = { deep: opts.deep === true };
          const r = c.provider === 'kommo' ? await checkKommo(c, config, store, reached) : await checkBitrix(c, config, store, reached);
          connections.push(r);
          for (const ch of r.checks) {
            if (ch.status === 'error' || ch.status === 'warn') problems.push({ connection: c.name, check: ch.check, severity: ch.status, message: ch.detail, fix: ch.fix ?? '' });
          }
          if (opts.deep) problems.push(...(await deepCheck(r, reached.provider)));
        }
      } finally {
        await store.close();
      }
    }
  }
  const errors = problems.some((p) => p.severity === 'error');
  const exit = errors ? 1 : problems.length ? 3 : 0;
  return { version: VERSION, ok: exit === 0, exit_code: exit, store: storeDescription, connections, problems };
}

// ---------------------------------------------------------------- configuration problems

// configFix (config/hints.ts) turns each problem into its fix, from the env table.

/** A setting that does nothing: either drop it or add what it needs. */
function warningFix(w: string): string {
  const name = /^(CRM_[A-Z_]+)=/.exec(w)?.[1] ?? 'the setting';
  return `Remove ${name}, or also set what it needs (named above) if you meant to allow more. See README → Safety first.`;
}

// ---------------------------------------------------------------- helpers

const ctx = (): CallContext => ({ grant: Grant.readOnly() });

function daysLeft(expiresAtMs: number): number {
  return Math.floor((expiresAtMs - Date.now()) / DAY);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function day(ms: number): string {
  return iso(ms).slice(0, 10);
}

/**
 * The doctor tries once more than never: a flaky network should not hide behind three slow retries. The deep
 * probe measures the account as the server would use it, so it retries a throttled read as the server does.
 */
function providerOptions(config: AppConfig, store: Store, deep = false) {
  return { store, timeoutMs: Math.min(config.http.timeoutMs, 15_000), maxRetries: deep ? config.http.maxRetries : Math.min(config.http.maxRetries, 1), backoffBaseMs: 100, logger: createLogger({ level: 'silent' }) };
}

// ---------------------------------------------------------------- Kommo

async function checkKommo(c: KommoConnection, config: AppConfig, store: Store, reached: Reached): Promise<ConnectionReport> {
  const checks: Check[] = [];
  const oauth = !c.accessToken && !!c.oauth;
  const report: ConnectionReport = {
    name: c.name,
    provider: 'kommo',
    address: c.baseUrl,
    auth: { type: oauth ? 'oauth' : 'long-lived', expires_at: null, days_left: null, scopes: null },
    account: null,
    policy: modeOf(c.policy),
    rate_limit: `${KOMMO_RPS} requests/s per integration (Kommo)`,
    checks,
  };
  checks.push({ check: 'config', status: 'ok', detail: `${c.baseUrl}, ${oauth ? `OAuth integration ${c.oauth!.clientId}` : 'long-lived token'}` });
  const reauth = oauth ? `run \`crm-mcp auth ${/amocrm/.test(c.baseUrl) ? 'amocrm' : 'kommo'}\`` : 'create a new long-lived token in Kommo → Settings → Integrations → your integration → Keys and scopes and set KOMMO_ACCESS_TOKEN, or run `crm-mcp auth kommo`';

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
        checks.push({ check: 'token', status: 'error', detail: `the long-lived token expired on ${day(exp)}`, fix: `Create a new long-lived token in Kommo → Settings → Integrations → your integration → Keys and scopes (choose a longer lifetime) and set KOMMO_ACCESS_TOKEN.` });
      } else if (exp - Date.now() < WARN_DAYS * DAY) {
        checks.push({ check: 'token', status: 'warn', detail: `the long-lived token expires on ${day(exp)} (${left} days left)`, fix: `Before ${day(exp)}, create a new long-lived token in Kommo → Settings → Integrations → Keys and scopes and replace KOMMO_ACCESS_TOKEN.` });
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
        fix: elsewhere ? `Set KOMMO_BASE_URL=${known.base_url}, or ${reauth} for ${c.baseUrl}.` : `Sign in: ${reauth} (or set KOMMO_REFRESH_TOKEN / KOMMO_AUTH_CODE).`,
      });
    }
  }

  if (reachable) {
    try {
      const p = new KommoProvider(c, providerOptions(config, store, reached.deep));
      await p.init();
      const acc = (await p.call<Record<string, unknown>>(ctx(), 'GET', '/api/v4/account')) ?? {};
      report.account = { id: typeof acc.id === 'number' ? acc.id : null, name: typeof acc.name === 'string' && !reached.deep ? acc.name : null };
      reached.provider = p;
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
        checks.push({ check: 'token', status: 'error', detail: `the refresh token was last renewed on ${day(rec.obtained_at)}; unused for 3 months, it is dead`, fix: `Sign in again: ${reauth}.` });
      } else if (refreshDies - Date.now() < WARN_DAYS * DAY) {
        checks.push({ check: 'token', status: 'warn', detail: `OAuth; the refresh token dies on ${day(refreshDies)} (${left} days left) unless it is used`, fix: 'Start crm-mcp and make any tool call (it refreshes the pair), or run `crm-mcp doctor` again; otherwise sign in again with `crm-mcp auth kommo`.' });
      } else {
        checks.push({ check: 'token', status: 'ok', detail: `OAuth: access token until ${iso(rec.expires_at)} (renewed automatically); refresh token valid until ${day(refreshDies)} if unused (Kommo drops refresh tokens unused for 3 months)` });
      }
    }
  }

  if (report.auth.scopes) {
    if (!report.auth.scopes.includes('crm')) {
      checks.push({ check: 'scopes', status: 'error', detail: `granted scopes ${report.auth.scopes.join(', ') || '(none)'} lack crm`, fix: `Tick the CRM scope for the integration in Kommo → Settings → Integrations → Keys and scopes, then ${oauth ? 'sign in again (`crm-mcp auth kommo`)' : 'create a new long-lived token'}.` });
    } else checks.push({ check: 'scopes', status: 'ok', detail: report.auth.scopes.join(', ') });
  } else checks.push({ check: 'scopes', status: 'ok', detail: 'not stated by the token' });

  pushCommon(checks, report, store, oauth);
  return report;
}

/** True when start-up replaces the stored chain with the configured seed (a code or refresh token not used yet). */
function reseeds(rec: TokenRecord, seed: string | undefined): boolean {
  return seed !== undefined && seed !== rec.seed;
}

/** The CRM refused the stored refresh token (spent, e.g. after a refresh whose answer was lost, or revoked). */
function refusedCheck(crm: string, rec: TokenRecord, reauth: string): Check {
  return {
    check: 'token',
    status: 'error',
    detail: `the stored refresh token was refused by ${crm} on ${day(rec.refused_at!)} (spent or revoked: e.g. the answer to a refresh was lost, or the app was disabled); it is not sent again`,
    fix: `Sign in again: ${reauth}.`,
  };
}

function kommoFailure(err: unknown, c: KommoConnection, reauth: string): Check {
  const e = err instanceof CrmError ? err : undefined;
  const host = new URL(c.baseUrl).host;
  if (e?.code === 'network') {
    return { check: 'account', status: 'error', detail: `cannot reach ${c.baseUrl}: ${e.message}`, fix: `Check the account address (KOMMO_SUBDOMAIN / KOMMO_BASE_URL / AMOCRM_DOMAIN: is ${host} right?), your network, proxy and firewall.` };
  }
  if (refreshRefused(e)) {
    return { check: 'account', status: 'error', detail: `Kommo (${host}) refused the stored refresh token: it is spent or revoked`, fix: `Sign in again: ${reauth}.` };
  }
  if (e?.status === 401 || e?.code === 'auth') {
    return { check: 'account', status: 'error', detail: `401 from Kommo (${host}): the token was revoked or expired`, fix: `${reauth[0]!.toUpperCase()}${reauth.slice(1)}.` };
  }
  if (e?.status === 402) return { check: 'account', status: 'error', detail: '402 from Kommo: the account is not paid', fix: 'Renew the Kommo subscription; the API is closed until then.' };
  if (e?.status === 403) {
    return { check: 'account', status: 'error', detail: `403 from Kommo: ${e.message}`, fix: 'The account or IP was blocked (after repeated 429s, or by an IP whitelist): ask Kommo support to unblock it, and keep to 7 requests/s.' };
  }
  if (e?.status === 404) return { check: 'account', status: 'error', detail: `404 from ${host}: no Kommo account answers there`, fix: 'Check KOMMO_SUBDOMAIN / KOMMO_BASE_URL: the account address may have changed.' };
  return { check: 'account', status: 'error', detail: redact(`Kommo did not answer as expected: ${(err as Error)?.message ?? String(err)}`), fix: 'Try again in a minute; if it persists run with CRM_LOG_LEVEL=debug and check the Kommo status page.' };
}

// ---------------------------------------------------------------- Bitrix24

async function checkBitrix(c: BitrixConnection, config: AppConfig, store: Store, reached: Reached): Promise<ConnectionReport> {
  const checks: Check[] = [];
  const oauth = !c.webhookUrl && !!c.oauth;
  const plan = BITRIX_PLANS[c.plan];
  const address = c.webhookUrl ? maskWebhook(c.webhookUrl) : c.oauth!.portal;
  const report: ConnectionReport = {
    name: c.name,
    provider: 'bitrix24',
    address,
    auth: { type: oauth ? 'oauth' : 'webhook', expires_at: null, days_left: null, scopes: null },
    account: null,
    policy: modeOf(c.policy),
    rate_limit: `${c.plan}: burst ${plan.capacity}, ${plan.drain} requests/s (Bitrix24 leaky bucket)`,
    checks,
  };
  checks.push({ check: 'config', status: 'ok', detail: `${address}, ${oauth ? `OAuth app ${c.oauth!.clientId}` : 'inbound webhook'}, plan ${c.plan}` });
  const reauth = oauth
    ? 'Sign in again with `crm-mcp auth bitrix24` (or set a new BITRIX_REFRESH_TOKEN).'
    : 'Copy the inbound webhook URL again from Bitrix24 → Developer resources → Other → Inbound webhook and set BITRIX_WEBHOOK_BASE.';

  let reachable = true;
  if (oauth) {
    const rec = await store.get<TokenRecord>(bitrixTokenKey(c.oauth!.portal, c.oauth!.clientId));
    if (rec?.refused_at && !reseeds(rec, seedHash({ refreshToken: c.oauth!.refreshToken }))) {
      reachable = false;
      checks.push(refusedCheck('Bitrix24', rec, 'run `crm-mcp auth bitrix24` (or set a new BITRIX_REFRESH_TOKEN)'));
    } else if (!rec && !c.oauth!.refreshToken) {
      reachable = false;
      checks.push({ check: 'token', status: 'error', detail: `no OAuth tokens for ${c.oauth!.portal} in ${store.description}`, fix: 'Sign in: run `crm-mcp auth bitrix24` (or set BITRIX_REFRESH_TOKEN).' });
    }
  } else {
    checks.push({ check: 'token', status: 'ok', detail: 'inbound webhook (no expiry unless the portal admin set one)' });
  }

  let probe: BitrixProvider | undefined;
  let probed = false;
  if (reachable) {
    try {
      const p = (probe = new BitrixProvider(c, providerOptions(config, store, reached.deep)));
      await p.init();
      const profile = (await p.call<Record<string, unknown>>(ctx(), 'profile')).result ?? {};
      const app = (await p.call<Record<string, unknown>>(ctx(), 'app.info')).result ?? {};
      let scopes = Array.isArray(app.SCOPE) ? (app.SCOPE as string[]) : undefined;
      if (!scopes) {
        const s = (await p.call<unknown>(ctx(), 'scope')).result;
        scopes = Array.isArray(s) ? (s as string[]) : [];
      }
      report.auth.scopes = scopes;
      const name = reached.deep ? null : [profile.NAME, profile.LAST_NAME].filter((x) => typeof x === 'string' && x).join(' ') || null;
      report.account = { id: (profile.ID as string | number | undefined) ?? null, name };
      checks.push({ check: 'account', status: 'ok', detail: `reached ${new URL(p.http.origin).host} as ${name ?? 'user'} (id ${report.account.id ?? '?'})${profile.ADMIN ? ', admin' : ''}${typeof app.LICENSE === 'string' ? `, license ${app.LICENSE}` : ''}` });
      if (!scopes.includes('crm')) {
        checks.push({
          check: 'scopes',
          status: 'error',
          detail: `granted scopes ${scopes.join(', ') || '(none)'} lack crm`,
          fix: oauth ? 'Add the crm scope to the app (Developer resources / Vendor area), reinstall it, then run `crm-mcp auth bitrix24`.' : 'Edit the inbound webhook in Bitrix24 → Developer resources and tick CRM (crm); the URL stays the same.',
        });
      } else {
        const missing = ['user', 'task'].filter((s) => !scopes!.includes(s));
        if (missing.length) checks.push({ check: 'scopes', status: 'warn', detail: `${scopes.join(', ')}; without ${missing.join(', ')} user names${missing.includes('task') ? ' and tasks' : ''} are unavailable`, fix: `Tick ${missing.join(' and ')} for the ${oauth ? 'app' : 'webhook'} in Bitrix24 → Developer resources.` });
        else checks.push({ check: 'scopes', status: 'ok', detail: scopes.join(', ') });
      }
      probed = true;
      reached.provider = p;
    } catch (err) {
      checks.push(bitrixFailure(err, c, reauth));
    }
  } else checks.push({ check: 'account', status: 'skipped', detail: 'not tried: no usable token' });
  const moveCheck = await portalMoveCheck(c, store, probe, probed);
  if (moveCheck) checks.push(moveCheck);

  if (oauth) {
    const rec = await store.get<TokenRecord>(bitrixTokenKey(c.oauth!.portal, c.oauth!.clientId));
    if (rec && !rec.refused_at) {
      report.auth.expires_at = iso(rec.expires_at);
      report.auth.days_left = daysLeft(rec.expires_at);
      checks.push({ check: 'token', status: 'ok', detail: `OAuth: access token until ${iso(rec.expires_at)} (1 h, renewed automatically); refresh token last renewed ${day(rec.obtained_at)} (Bitrix24 drops unused ones after 28 or 180 days: the docs disagree)` });
    }
  }
  pushCommon(checks, report, store, oauth);
  return report;
}

/**
 * A portal move (302 from the configured address, §1.1) is followed one request at a time and never adopted
 * silently: the user confirms it by changing the configured address. Shown from this run's probe, or as
 * recorded by a server that met it (store); a record is dropped once the configured address answers itself.
 */
async function portalMoveCheck(c: BitrixConnection, store: Store, probe: BitrixProvider | undefined, probed: boolean): Promise<Check | undefined> {
  const origin = new URL(c.webhookUrl ?? c.oauth!.portal).origin;
  const key = portalMoveKey(origin);
  const move = probe?.pendingMove ?? (await store.get<PortalMove>(key).catch(() => undefined));
  if (!move) return undefined;
  if (probed && !probe?.pendingMove) {
    await store.delete(key).catch(() => undefined);
    return undefined;
  }
  const to = new URL(move.to).origin;
  const fix = c.webhookUrl
    ? `If ${new URL(to).host} is your portal's new address (open it in a browser), update BITRIX_WEBHOOK_BASE to ${maskWebhook(`${to}${new URL(c.webhookUrl).pathname}`)} (the same webhook path with your secret). Until then every call is answered by a redirect first.`
    : `If ${new URL(to).host} is your portal's new address (open it in a browser), set BITRIX_PORTAL=${to}. Until then every call is answered by a redirect first.`;
  return { check: 'address', status: 'warn', detail: `the portal at ${new URL(origin).host} answers that it moved to ${new URL(to).host} (seen ${move.seen_at.slice(0, 10)}); calls follow it one at a time but the configured address is kept`, fix };
}

function bitrixFailure(err: unknown, c: BitrixConnection, reauth: string): Check {
  const e = err instanceof CrmError ? err : undefined;
  const origin = c.webhookUrl ? new URL(c.webhookUrl).origin : c.oauth!.portal;
  const bxCode = String((e?.details as { bitrix_error?: unknown } | undefined)?.bitrix_error ?? '');
  if (e?.code === 'network') {
    return { check: 'account', status: 'error', detail: `cannot reach ${origin}: ${e.message}`, fix: `Check the portal address in ${c.webhookUrl ? 'BITRIX_WEBHOOK_BASE' : 'BITRIX_PORTAL'}, your network, proxy and firewall.` };
  }
  if (e?.code === 'auth' || e?.status === 401) {
    return {
      check: 'account',
      status: 'error',
      detail: `401${bxCode ? ` ${bxCode}` : ''} from Bitrix24: ${c.webhookUrl ? 'the webhook secret is wrong, or the webhook was deleted or regenerated' : 'the OAuth tokens were rejected'}`,
      fix: reauth,
    };
  }
  if (e?.code === 'forbidden') {
    return { check: 'account', status: 'error', detail: redact(`Bitrix24 refused: ${e.message}`), fix: 'Check the user behind the webhook/app is active and has CRM access; REST needs a commercial plan.' };
  }
  return { check: 'account', status: 'error', detail: redact(`Bitrix24 did not answer as expected: ${(err as Error)?.message ?? String(err)}`), fix: 'Try again in a minute; if it persists run with CRM_LOG_LEVEL=debug.' };
}

function pushCommon(checks: Check[], report: ConnectionReport, store: Store, oauth: boolean): void {
  checks.push({ check: 'policy', status: 'ok', detail: report.policy });
  checks.push({ check: 'rate limit', status: 'ok', detail: report.rate_limit });
  if (oauth && store.description.startsWith('memory')) {
    checks.push({ check: 'store', status: 'error', detail: `${store.description}: rotated OAuth tokens would be lost at exit`, fix: 'Unset CRM_MCP_STORE (default file ~/.crm-mcp/store.json) or point it at a file.' });
  } else checks.push({ check: 'store', status: 'ok', detail: store.description });
}

// ---------------------------------------------------------------- --deep

/** For `--deep`: whether it runs (names are then left out, for a report fit to paste) and the provider that reached the account. */
interface Reached {
  deep: boolean;
  provider?: KommoProvider | BitrixProvider;
}

/** Runs the deep probe on a reached connection; each finding that does not hold is a warning whose fix is crm-mcp's answer. */
async function deepCheck(r: ConnectionReport, provider: KommoProvider | BitrixProvider | undefined): Promise<Problem[]> {
  if (!provider) {
    r.deep = null;
    r.checks.push({ check: 'deep probe', status: 'skipped', detail: 'not run: the account was not reached' });
    return [];
  }
  try {
    const d = (r.deep = await deepProbe(provider));
    const failed = d.findings.filter((f) => f.holds === false);
    const unknown = d.findings.filter((f) => f.holds === null).length;
    r.checks.push({
      check: 'deep probe',
      status: failed.length ? 'warn' : 'ok',
      detail: `${d.findings.length - failed.length - unknown} of ${d.findings.length} assumptions hold${failed.length ? `, ${failed.length} do not` : ''}${unknown ? `, ${unknown} could not be checked` : ''} (${d.requests} read requests)`,
    });
    return failed.map((f) => ({ connection: r.name, check: `deep: ${f.id}`, severity: 'warn', message: `${f.assumption}: ${f.detail}`, fix: f.action }));
  } catch (err) {
    // A policy refusal means the probe tried something other than a read: a bug, reported as an error.
    r.deep = null;
    const detail = redact(`the deep probe failed: ${(err as Error)?.message ?? String(err)}`);
    const fix = 'Please report it with this output (crm-mcp doctor --deep --json).';
    r.checks.push({ check: 'deep probe', status: 'error', detail, fix });
    return [{ connection: r.name, check: 'deep probe', severity: 'error', message: detail, fix }];
  }
}

// ---------------------------------------------------------------- rendering

const MARK: Record<Severity, string> = { ok: 'ok', warn: 'WARN', error: 'FAIL', skipped: '--' };

export function render(r: DoctorReport): string {
  const lines = [`crm-mcp ${r.version} doctor`, `Store: ${r.store ?? '(not opened)'}`, ''];
  for (const c of r.connections) {
    lines.push(`${c.name} (${c.provider === 'kommo' ? 'Kommo' : 'Bitrix24'}) ${c.address}`);
    const w = Math.max(...c.checks.map((x) => x.check.length));
    for (const ch of c.checks) lines.push(`  ${MARK[ch.status].padEnd(4)}  ${ch.check.padEnd(w)}  ${ch.detail}`);
    if (c.deep) lines.push(renderDeep(c.deep));
    lines.push('');
  }
  if (r.problems.length) {
    lines.push('Problems:');
    for (const p of r.problems) {
      lines.push(`  ${p.severity === 'error' ? 'FAIL' : 'WARN'}  ${p.connection}: ${p.message}`);
      lines.push(`        fix: ${p.fix}`);
    }
    lines.push('');
  }
  const errors = r.problems.filter((p) => p.severity === 'error').length;
  const warnings = r.problems.length - errors;
  lines.push(r.ok ? 'All checks passed.' : `${errors} problem${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}.`);
  return redact(lines.join('\n'));
}
