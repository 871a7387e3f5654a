/**
 * What every CRM's OAuth sign-in (contract.ts `SignInPart`, `crm-mcp auth <name>`) shares: reading the
 * redirect's answer, the code exchange (the one token request the running server's refreshes make too,
 * http/token.ts) and saving the tokens under the very key and record shape the providers read (RotatingTokens,
 * oauth.ts), so the next `crm-mcp` start simply uses them. The browser half (the loopback callback server) is
 * the command's (src/commands/auth-browser.ts).
 */
import { ONE_ATTEMPT, requestToken } from '../http/token.js';
import type { Store } from '../store/store.js';
import { registerSecret } from '../util/redact.js';
import type { ConnectionBase, SignInContext } from './contract.js';
import { seedHash, type TokenGrant, type TokenRecord } from './oauth.js';
import { grantOf, type TokenEndpoint } from './token-endpoint.js';

/** A failed sign-in: the message says what happened and what to do; nothing was saved. */
export class AuthError extends Error {
  override name = 'AuthError';
}

export type Env = Readonly<Record<string, string | undefined>>;

/** The first of `names` set to a non-blank value. */
export function pickEnv(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v.trim() !== '') return { name: n, value: v.trim() };
  }
  return undefined;
}

export function isLoopbackHost(hostname: string): boolean {
  return ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(hostname.toLowerCase());
}

/** An https URL (plain http only on loopback), as origin and path. */
export function checkedUrl(ctx: SignInContext, name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw ctx.problem([`${name}: "${raw}" is not a URL`]);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname)))
    throw ctx.problem([`${name}: must use https:// (plain http only for 127.0.0.1/localhost)`]);
  return `${u.origin}${u.pathname}`;
}

/**
 * The connection of `kind` to sign in for: the one `--connection` names, else the only one with OAuth set,
 * else the only one. `none` is the problem when there is none.
 */
export function pickConnection<C extends ConnectionBase & { oauth?: unknown }>(
  ctx: SignInContext,
  conns: readonly ConnectionBase[],
  kind: string,
  none: string,
): C {
  const mine = conns.filter((c) => c.provider === kind) as C[];
  if (ctx.connection) {
    const c = mine.find((x) => x.name === ctx.connection);
    if (!c)
      throw ctx.problem([
        `--connection: no ${kind} connection named "${ctx.connection}"${ctx.configPath ? ` in ${ctx.configPath}` : ''} (have: ${mine.map((x) => x.name).join(', ') || 'none'})`,
      ]);
    return c;
  }
  const withOAuth = mine.filter((c) => c.oauth);
  if (withOAuth.length > 1)
    throw ctx.problem([`--connection: ${withOAuth.length} ${kind} OAuth connections are configured (${withOAuth.map((c) => c.name).join(', ')}); name one`]);
  const c = withOAuth[0] ?? mine[0];
  if (!c) throw ctx.problem([none]);
  return c;
}

/** Checks `state` before anything else (a forged or stale redirect must not even report an error code); the code. */
export function checkAnswer(q: URLSearchParams, state: string, what: string, again: string): string {
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

/** What a sign-in's code exchange got: the grant to save, or the endpoint's refusal for the flow to word. */
export type CodeExchange = { grant: TokenGrant } | { refused: { status: number; body: Record<string, unknown> | undefined } };

/**
 * The sign-in's code exchange: the one token request the running server's refreshes make too (http/token.ts),
 * sent once (the code is single-use, and the user is there to run the command again).
 */
export async function exchangeCode(ep: TokenEndpoint, code: string): Promise<CodeExchange> {
  const r = await requestToken({
    url: ep.url,
    encoding: ep.encoding,
    fields: { ...ep.client, grant_type: 'authorization_code', code },
    timeoutMs: 30_000,
    attempts: ONE_ATTEMPT,
  });
  if (r.kind === 'issued') return { grant: grantOf(ep, r) };
  if (r.kind === 'refused') return { refused: { status: r.status, body: r.body } };
  // A 5xx is an answer too: the CRM's to explain, as any refusal.
  if (r.status !== undefined) return { refused: { status: r.status, body: r.body } };
  throw new AuthError(`Could not reach ${ep.url.origin} to exchange the code (${r.reason}). Nothing was saved; check the network and run the command again.`);
}

/**
 * Writes the record RotatingTokens reads, under its refresh lock. The generation continues the stored chain
 * (a running server adopts only a newer generation), and a configured seed is marked as consumed so it does
 * not replace these tokens at the next start.
 */
export async function saveTokens(store: Store, key: string, seed: { authCode?: string; refreshToken?: string }, g: TokenGrant): Promise<void> {
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
