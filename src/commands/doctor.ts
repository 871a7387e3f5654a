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
import { ConfigError, loadConfig, type AppConfig, type KommoConnection } from '../config/config.js';
import { configFix } from '../config/hints.js';
import { CrmError } from '../http/errors.js';
import { modeOf } from '../policy/policy.js';
import { type BitrixProvider } from '../providers/bitrix24/provider.js';
import { describeToken, kommoTokenKey } from '../providers/kommo/auth.js';
import { KOMMO_RPS, KommoProvider } from '../providers/kommo/provider.js';
import { refreshRefused, seedHash, type TokenRecord } from '../providers/oauth.js';
import { openStore, type Store } from '../store/store.js';
import { redact } from '../util/redact.js';
import { VERSION } from '../version.js';
import { deepProbe, renderDeep } from './doctor-deep.js';
import { checkBitrix } from './doctor-bitrix.js';
import {
  type Check,
  type ConnectionReport,
  ctx,
  DAY,
  day,
  daysLeft,
  type DoctorReport,
  iso,
  KOMMO_REFRESH_LIFETIME,
  type Problem,
  providerOptions,
  pushCommon,
  type Reached,
  refusedCheck,
  reseeds,
  type Severity,
  WARN_DAYS,
} from './doctor-common.js';
export type { Check, ConnectionReport, DoctorReport, Problem, Severity } from './doctor-common.js';
import { kommoAccountKey, learntKommoHost, out, type Env, type KommoAccountRecord } from './common.js';

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
    options: {
      json: { type: 'boolean', default: false },
      deep: { type: 'boolean', default: false },
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
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
      const fix =
        learnt && /KOMMO_SUBDOMAIN .*required/.test(p) ? `Set KOMMO_BASE_URL=${learnt} (the account \`crm-mcp auth kommo\` signed in to).` : configFix(p);
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
            if (ch.status === 'error' || ch.status === 'warn')
              problems.push({ connection: c.name, check: ch.check, severity: ch.status, message: ch.detail, fix: ch.fix ?? '' });
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
  return report;
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

// ---------------------------------------------------------------- --deep

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
