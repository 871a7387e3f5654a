/**
 * `crm-mcp doctor`: the checks of a Bitrix24 connection (webhook or OAuth app), loaded when doctor runs
 * (contract.ts `DoctorPart`). Says, for each problem, what to do about it; never prints a secret.
 */
import { CrmError } from '../../domain/errors.js';
import { modeOf } from '../../policy/policy.js';
import type { Store } from '../../store/store.js';
import { redact } from '../../util/redact.js';
import type { DoctorDeps } from '../contract.js';
import { type Check, type ConnectionReport, ctx, day, daysLeft, iso, pushCommon, refusedCheck, reseeds } from '../doctor-types.js';
import { seedHash, type TokenRecord } from '../oauth.js';
import type { CrmProvider } from '../types.js';
import { bitrixTokenKey } from './auth.js';
import { bitrix24Connection, type BitrixConnection } from './connection.js';
import { BITRIX_PLANS } from './metadata.js';
import type { BitrixProvider } from './provider.js';
import { portalMoveKey, type PortalMove } from './relocation.js';

/** A webhook URL with its secret path segment masked, as the report shows addresses. */
function masked(webhookUrl: string): string {
  return webhookUrl.replace(/(\/rest\/\d+\/)[^/]+/, '$1***');
}

export async function checkBitrix(c: BitrixConnection, deps: DoctorDeps): Promise<{ report: ConnectionReport; provider?: CrmProvider }> {
  const { store } = deps;
  const checks: Check[] = [];
  const oauth = !c.webhookUrl && !!c.oauth;
  const plan = BITRIX_PLANS[c.plan];
  const address = bitrix24Connection.address(c);
  const report: ConnectionReport = {
    name: c.name,
    provider: c.provider,
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
      checks.push({
        check: 'token',
        status: 'error',
        detail: `no OAuth tokens for ${c.oauth!.portal} in ${store.description}`,
        fix: 'Sign in: run `crm-mcp auth bitrix24` (or set BITRIX_REFRESH_TOKEN).',
      });
    }
  } else {
    checks.push({ check: 'token', status: 'ok', detail: 'inbound webhook (no expiry unless the portal admin set one)' });
  }

  let probe: BitrixProvider | undefined;
  let probed = false;
  let reached: CrmProvider | undefined;
  if (reachable) {
    try {
      const p = (probe = (await deps.build()) as BitrixProvider);
      const profile = (await p.call<Record<string, unknown>>(ctx(), 'profile')).result ?? {};
      const app = (await p.call<Record<string, unknown>>(ctx(), 'app.info')).result ?? {};
      let scopes = Array.isArray(app.SCOPE) ? (app.SCOPE as string[]) : undefined;
      if (!scopes) {
        const s = (await p.call<unknown>(ctx(), 'scope')).result;
        scopes = Array.isArray(s) ? (s as string[]) : [];
      }
      report.auth.scopes = scopes;
      const name = deps.deep ? null : [profile.NAME, profile.LAST_NAME].filter((x) => typeof x === 'string' && x).join(' ') || null;
      report.account = { id: (profile.ID as string | number | undefined) ?? null, name };
      checks.push({
        check: 'account',
        status: 'ok',
        detail: `reached ${new URL(p.http.origin).host} as ${name ?? 'user'} (id ${report.account.id ?? '?'})${profile.ADMIN ? ', admin' : ''}${typeof app.LICENSE === 'string' ? `, license ${app.LICENSE}` : ''}`,
      });
      if (!scopes.includes('crm')) {
        checks.push({
          check: 'scopes',
          status: 'error',
          detail: `granted scopes ${scopes.join(', ') || '(none)'} lack crm`,
          fix: oauth
            ? 'Add the crm scope to the app (Developer resources / Vendor area), reinstall it, then run `crm-mcp auth bitrix24`.'
            : 'Edit the inbound webhook in Bitrix24 → Developer resources and tick CRM (crm); the URL stays the same.',
        });
      } else {
        const missing = ['user', 'task'].filter((s) => !scopes!.includes(s));
        if (missing.length)
          checks.push({
            check: 'scopes',
            status: 'warn',
            detail: `${scopes.join(', ')}; without ${missing.join(', ')} user names${missing.includes('task') ? ' and tasks' : ''} are unavailable`,
            fix: `Tick ${missing.join(' and ')} for the ${oauth ? 'app' : 'webhook'} in Bitrix24 → Developer resources.`,
          });
        else checks.push({ check: 'scopes', status: 'ok', detail: scopes.join(', ') });
      }
      probed = true;
      reached = p;
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
      checks.push({
        check: 'token',
        status: 'ok',
        detail: `OAuth: access token until ${iso(rec.expires_at)} (1 h, renewed automatically); refresh token last renewed ${day(rec.obtained_at)} (Bitrix24 drops unused ones after 28 or 180 days: the docs disagree)`,
      });
    }
  }
  pushCommon(checks, report, store, oauth);
  return { report, provider: reached };
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
    ? `If ${new URL(to).host} is your portal's new address (open it in a browser), update BITRIX_WEBHOOK_BASE to ${masked(`${to}${new URL(c.webhookUrl).pathname}`)} (the same webhook path with your secret). Until then every call is answered by a redirect first.`
    : `If ${new URL(to).host} is your portal's new address (open it in a browser), set BITRIX_PORTAL=${to}. Until then every call is answered by a redirect first.`;
  return {
    check: 'address',
    status: 'warn',
    detail: `the portal at ${new URL(origin).host} answers that it moved to ${new URL(to).host} (seen ${move.seen_at.slice(0, 10)}); calls follow it one at a time but the configured address is kept`,
    fix,
  };
}

function bitrixFailure(err: unknown, c: BitrixConnection, reauth: string): Check {
  const e = err instanceof CrmError ? err : undefined;
  const origin = c.webhookUrl ? new URL(c.webhookUrl).origin : c.oauth!.portal;
  const bxCode = String((e?.details as { bitrix_error?: unknown } | undefined)?.bitrix_error ?? '');
  if (e?.code === 'network') {
    return {
      check: 'account',
      status: 'error',
      detail: `cannot reach ${origin}: ${e.message}`,
      fix: `Check the portal address in ${c.webhookUrl ? 'BITRIX_WEBHOOK_BASE' : 'BITRIX_PORTAL'}, your network, proxy and firewall.`,
    };
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
    return {
      check: 'account',
      status: 'error',
      detail: redact(`Bitrix24 refused: ${e.message}`),
      fix: 'Check the user behind the webhook/app is active and has CRM access; REST needs a commercial plan.',
    };
  }
  return {
    check: 'account',
    status: 'error',
    detail: redact(`Bitrix24 did not answer as expected: ${(err as Error)?.message ?? String(err)}`),
    fix: 'Try again in a minute; if it persists run with CRM_LOG_LEVEL=debug.',
  };
}
