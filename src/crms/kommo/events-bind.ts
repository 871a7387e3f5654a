/**
 * `crm-mcp events bind|unbind|status` for Kommo (fact sheet §10.1): the account webhook pointing at this
 * server's receiver, `<url>/hooks/kommo/<secret>`. Bind generates the secret (32 random bytes), sends the
 * address to Kommo once, stores only the secret's hash (events/hook-secrets.ts) and prints the address once.
 * `--rotate` issues a new secret, keeps the old one valid for the grace period and removes the old webhook.
 * `POST`/`DELETE /api/v4/webhooks` are admin effects (effects.ts): the command's grant must hold `admin`, and the
 * HTTP core refuses them otherwise. Deletion is by destination (§10.1); the destinations are found by listing
 * the account's webhooks and matching their secret's hash, since the store never holds the secret.
 */
import { CrmError, validationError } from '../../domain/errors.js';
import {
  forgetHookSecrets,
  hookBinding,
  newHookSecret,
  readHookSecrets,
  restoreHookSecrets,
  saveHookSecret,
  secretMatches,
} from '../../events/hook-secrets.js';
import { registerSecret } from '../../util/redact.js';
import type { Store } from '../../store/store.js';
import type { Check } from '../doctor-types.js';
import type { EventBinding } from '../events-contract.js';
import type { CallContext, CrmProvider } from '../types.js';
import type { KommoConnection } from './connection.js';
import { KOMMO_HOOK_PATH } from './events.js';

/** Every event of §10.1's list the receiver maps (events.ts). */
export const KOMMO_WEBHOOK_SETTINGS = [
  ...['lead', 'contact', 'company'].flatMap((e) => ['add', 'update', 'delete', 'restore', 'responsible', 'note'].map((a) => `${a}_${e}`)),
  'status_lead',
  'add_task',
  'update_task',
  'delete_task',
  'responsible_task',
  'add_unsorted',
  'update_unsorted',
  'delete_unsorted',
];

type Call = <T>(
  ctx: CallContext,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  opts?: { query?: Record<string, string>; body?: unknown },
) => Promise<T | undefined>;
interface KommoLike {
  conn: KommoConnection;
  call: Call;
}

interface KWebhook {
  destination?: string;
  disabled?: boolean;
  settings?: string[];
}

function kommo(p: CrmProvider): KommoLike {
  const k = p as unknown as Partial<KommoLike>;
  if (!k.call || !k.conn) throw new Error('not a Kommo provider');
  return k as KommoLike;
}

function baseOf(url: string | undefined): string {
  if (!url) throw validationError('--url: the public address Kommo can reach this server at (e.g. https://crm-mcp.example.com)');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw validationError(`--url: "${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw validationError('--url: an http(s) address');
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

/** The secret of a destination that points at a Kommo receiver (`…/hooks/kommo/<secret>`), if it is one. */
function secretOf(destination: string): string | undefined {
  const m = /\/hooks\/([^/?#]+)\/([^/?#]+)\/?$/.exec(destination);
  return m && m[1] === KOMMO_HOOK_PATH ? m[2] : undefined;
}

/** Where the destination points, without its secret. */
const shown = (destination: string) => destination.replace(/\/hooks\/([^/?#]+)\/[^/?#]+\/?$/, '/hooks/$1/…');

async function listHooks(k: KommoLike, ctx: CallContext): Promise<KWebhook[]> {
  const page = await k.call<{ _embedded?: { webhooks?: KWebhook[] } }>(ctx, 'GET', '/api/v4/webhooks');
  return page?._embedded?.webhooks ?? [];
}

/** The account's webhooks whose secret is one of this connection's (configured, or stored as a hash). */
async function ours(k: KommoLike, ctx: CallContext, store: Store, hashes?: readonly string[]): Promise<KWebhook[]> {
  const valid = hashes ?? (await hookBinding(store, k.conn.name)).hashes;
  return (await listHooks(k, ctx)).filter((w) => {
    const s = w.destination ? secretOf(w.destination) : undefined;
    return s !== undefined && (secretMatches(s, valid) || (k.conn.webhookSecret !== undefined && s === k.conn.webhookSecret));
  });
}

export async function bindKommo(p: CrmProvider, ctx: CallContext, o: { url?: string; rotate?: boolean; secretStore: Store }): Promise<EventBinding> {
  const k = kommo(p);
  const base = baseOf(o.url);
  const before = await readHookSecrets(o.secretStore, k.conn.name);
  if (before && !o.rotate)
    throw validationError(
      `${k.conn.name}: a webhook secret is already bound (${before.bound_at}); the store keeps only its hash, so it cannot be sent again. Use --rotate for a new one, or events unbind first.`,
    );
  const oldHashes = before ? (await hookBinding(o.secretStore, k.conn.name)).hashes : [];
  const account = await k.call<{ id?: number; subdomain?: string }>(ctx, 'GET', '/api/v4/account');
  const secret = newHookSecret();
  // Whatever prints the request or an error about it (the HTTP core's logs) masks the secret.
  registerSecret(secret);
  const destination = `${base}/hooks/${KOMMO_HOOK_PATH}/${secret}`;
  // The hash goes to the store first: a delivery that comes the moment Kommo has the address is then accepted.
  await saveHookSecret(o.secretStore, k.conn.name, secret, { rotate: Boolean(o.rotate), accountId: account?.id?.toString(), baseUrl: base });
  try {
    await k.call(ctx, 'POST', '/api/v4/webhooks', { body: { destination, settings: KOMMO_WEBHOOK_SETTINGS, sort: 10 } });
  } catch (err) {
    await restoreHookSecrets(o.secretStore, k.conn.name, before);
    throw err;
  }
  const lines = [
    `${k.conn.name}: Kommo sends ${KOMMO_WEBHOOK_SETTINGS.length} kinds of events to`,
    `  ${destination}`,
    'This address holds the secret: it is shown only now, the store keeps only its hash.',
  ];
  if (o.rotate && oldHashes.length) {
    const old = (await listHooks(k, ctx)).filter(
      (w) => w.destination && w.destination !== destination && secretOf(w.destination) && secretMatches(secretOf(w.destination)!, oldHashes),
    );
    for (const w of old) await k.call(ctx, 'DELETE', '/api/v4/webhooks', { body: { destination: w.destination } });
    lines.push(`The previous secret keeps working for 24 hours; ${old.length} old webhook(s) removed from Kommo.`);
  }
  return { lines };
}

export async function unbindKommo(p: CrmProvider, ctx: CallContext, o: { url?: string; secretStore: Store }): Promise<EventBinding> {
  const k = kommo(p);
  const base = o.url ? baseOf(o.url) : undefined;
  const hooks = (await ours(k, ctx, o.secretStore)).filter((w) => !base || w.destination!.startsWith(`${base}/`));
  for (const w of hooks) await k.call(ctx, 'DELETE', '/api/v4/webhooks', { body: { destination: w.destination } });
  await forgetHookSecrets(o.secretStore, k.conn.name);
  return {
    lines: [
      hooks.length
        ? `${k.conn.name}: removed ${hooks.length} webhook(s) from Kommo: ${hooks.map((w) => shown(w.destination!)).join(', ')}`
        : `${k.conn.name}: no webhook of this server was registered in Kommo`,
      'The stored secret is forgotten: deliveries to the old address are refused from now on.',
    ],
  };
}

export async function kommoHookStatus(p: CrmProvider, ctx: CallContext, o: { url?: string; secretStore: Store }): Promise<EventBinding> {
  const k = kommo(p);
  const stored = await readHookSecrets(o.secretStore, k.conn.name);
  const lines = [
    `${k.conn.name}: ${stored ? `secret bound ${stored.bound_at}${stored.base_url ? ` for ${stored.base_url}` : ''}${stored.previous && stored.previous.until > Date.now() ? `; the previous one valid until ${new Date(stored.previous.until).toISOString()}` : ''}` : 'no secret bound by crm-mcp events bind'}${k.conn.webhookSecret ? '; KOMMO_WEBHOOK_SECRET is set' : ''}`,
  ];
  const checks: Check[] = [];
  try {
    const mine = await ours(k, ctx, o.secretStore);
    if (!mine.length) lines.push('  Kommo sends nothing to this server (no webhook with its secret).');
    for (const w of mine)
      lines.push(
        `  ${shown(w.destination!)}${w.disabled ? ' (DISABLED by Kommo: too many failed answers; bind again)' : ''}: ${(w.settings ?? []).length} event kinds`,
      );
    checks.push(...hookChecks(k.conn, mine, stored?.base_url));
  } catch (err) {
    if (!(err instanceof CrmError && err.code === 'forbidden')) throw err;
    lines.push('  Kommo refused to list the webhooks: GET /api/v4/webhooks needs an administrator token (§10.1).');
    checks.push({
      check: 'events: account webhooks',
      status: 'skipped',
      detail: "cannot check: needs an administrator's token (Kommo lists webhooks to administrators only, §10.1)",
    });
  }
  return { lines, checks };
}

/** doctor --deep: whether the account's webhooks point at this server, and whether Kommo disabled one (§10.2). */
function hookChecks(conn: KommoConnection, mine: readonly KWebhook[], boundFor: string | undefined): Check[] {
  const check = 'events: account webhooks';
  const rebind = (base: string) => `\`crm-mcp events bind --rotate --url ${base}\``;
  if (!mine.length)
    return [
      {
        check,
        status: 'warn',
        detail: "Kommo sends nothing to this server: no webhook of the account carries this connection's secret",
        fix: conn.webhookSecret
          ? 'Add https://<public address>/hooks/kommo/<KOMMO_WEBHOOK_SECRET> as a webhook in Kommo, or let crm-mcp register one: crm-mcp events bind --url <public address>.'
          : `Register it again: ${rebind(boundFor ?? '<public address>')} (the store keeps only the secret's hash, so a new secret is issued).`,
      },
    ];
  return mine.map((w): Check => {
    const where = shown(w.destination!);
    if (w.disabled)
      return {
        check,
        status: 'warn',
        detail: `Kommo disabled the webhook to ${where} (it does so after more than 100 failed answers in 2 hours, §10.2): nothing is delivered`,
        fix: `Make sure ${where} answers from the internet (crm-mcp --http behind HTTPS), then re-save the webhook: ${rebind(boundFor ?? '<public address>')}, or save it again in Kommo's webhook settings.`,
      };
    if (boundFor && !w.destination!.startsWith(`${boundFor}/`))
      return {
        check,
        status: 'warn',
        detail: `the webhook points at ${where}, not at the address events bind registered (${boundFor})`,
        fix: `If the service moved, ${rebind('<its public address>')}; otherwise remove the stray webhook in Kommo.`,
      };
    return { check, status: 'ok', detail: `Kommo sends ${(w.settings ?? []).length} event kinds to ${where}` };
  });
}
