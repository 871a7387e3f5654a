/**
 * Issue 15, item 6: the OAuth token requests (the server's refreshes and `crm-mcp auth`'s code exchange) take one
 * path, src/http/token.ts, and each CRM only says where they go and what the answer means. Asserted from what the
 * token endpoint received: the body each CRM asks for, how often a request is repeated (a 5xx or a lost answer
 * once, a connection that never opened up to three times in all), and that nothing sent or echoed reaches an error.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bitrixTokenEndpoint, bitrixTokenKey } from '../../src/crms/bitrix24/auth.js';
import { kommoTokenEndpoint, kommoTokenKey } from '../../src/crms/kommo/auth.js';
import { refreshRefused, type TokenRecord } from '../../src/crms/oauth.js';
import { tokenExchange } from '../../src/crms/token-endpoint.js';
import { CrmError } from '../../src/domain/errors.js';
import { connectBitrix, connectKommo, errorOf, startBitrix, startKommo, text } from '../helpers/index.js';

const KOMMO = { clientId: 'tok-client', clientSecret: 'tok-client-secret-5e1d0c', redirectUri: 'https://example.org/oauth' };
const BITRIX = { clientId: 'app.tok', clientSecret: 'app-tok-secret-9a8b7c' };
const RAW = { method: 'crm.deal.list', params: { select: ['ID'] } };

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A token endpoint of our own that records each request's body and answers with `answer`. */
async function endpoint(answer: (body: string) => { status: number; json: unknown }): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    bodies.push(body);
    const a = answer(body);
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.json));
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bodies };
}

describe('Bitrix24: a 5xx from the OAuth server is repeated once, like Kommo', () => {
  it('a refresh that meets a 502 once and then succeeds is not an error', async () => {
    const emu = await startBitrix({ rateLimit: false, oauth: BITRIX });
    const t0 = await emu.issueOAuthTokens();
    const c = await connectBitrix(emu, { connection: { oauth: { ...BITRIX, refreshToken: t0.refresh_token, portal: emu.url, oauthServer: emu.url } } });
    try {
      emu.harness.injectFault({ kind: 'status', status: 502, body: 'bad gateway' }, { match: { path: '/oauth/token/' } });
      const r = await c.call('bitrix_call', RAW);
      expect(r.isError, text(r)).toBeFalsy();
      const calls = emu.requests.filter((q) => q.path.startsWith('/oauth/token'));
      expect(calls.map((q) => q.status)).toEqual([502, 200]);
      expect(calls.map((q) => new URLSearchParams(q.body).get('refresh_token'))).toEqual([t0.refresh_token, t0.refresh_token]);
      expect(emu.stats.refreshes).toBe(1);
    } finally {
      await c.close();
      await emu.close();
    }
  });
});

describe('a token endpoint that keeps failing with 5xx', () => {
  it('Kommo and Bitrix24: two requests, then a retryable network error; the chain is not marked spent and works once the endpoint is back', async () => {
    const kemu = await startKommo({ rateLimit: false, oauth: KOMMO });
    const bemu = await startBitrix({ rateLimit: false, oauth: BITRIX });
    const kt = await kemu.issueOAuthTokens();
    const bt = await bemu.issueOAuthTokens();
    const k = await connectKommo(kemu, { connection: { oauth: { ...KOMMO, refreshToken: kt.refresh_token } } });
    const b = await connectBitrix(bemu, { connection: { oauth: { ...BITRIX, refreshToken: bt.refresh_token, portal: bemu.url, oauthServer: bemu.url } } });
    try {
      kemu.injectFault({ kind: 'status', status: 503, body: 'unavailable' }, { times: 2, match: { path: '/oauth2/access_token' } });
      bemu.harness.injectFault({ kind: 'status', status: 503, body: 'unavailable' }, { times: 2, match: { path: '/oauth/token/' } });
      const cases = [
        { call: () => k.call('list_leads', { limit: 1 }), tokenCalls: () => kemu.requests.filter((q) => q.path === '/oauth2/access_token') },
        { call: () => b.call('bitrix_call', RAW), tokenCalls: () => bemu.requests.filter((q) => q.path.startsWith('/oauth/token')) },
      ];
      for (const x of cases) {
        const e = errorOf(await x.call());
        expect(e).toMatchObject({ code: 'network', retryable: true });
        expect(x.tokenCalls().map((q) => q.status)).toEqual([503, 503]);
      }
      expect((await k.store.get<TokenRecord>(kommoTokenKey(kemu.url, KOMMO.clientId)))?.refused_at).toBeUndefined();
      expect((await b.store.get<TokenRecord>(bitrixTokenKey(bemu.url, BITRIX.clientId)))?.refused_at).toBeUndefined();
      for (const x of cases) {
        const r = await x.call();
        expect(r.isError, text(r)).toBeFalsy();
        expect(x.tokenCalls().map((q) => q.status)).toEqual([503, 503, 200]);
      }
    } finally {
      await Promise.all([k.close(), b.close()]);
      await Promise.all([kemu.close(), bemu.close()]);
    }
  });
});

describe('the one token request', () => {
  it('sends the body each CRM asks for: JSON with the redirect URI to Kommo, a form to the Bitrix24 OAuth server', async () => {
    const ok = { status: 200, json: { access_token: 'acc-0123456789', refresh_token: 'ref-0123456789', expires_in: 60, scope: 'crm,user' } };
    const k = await endpoint(() => ok);
    const b = await endpoint(() => ok);
    const kg = await tokenExchange(kommoTokenEndpoint({ baseUrl: k.url, ...KOMMO }), { timeoutMs: 2000 })({
      grant_type: 'refresh_token',
      refresh_token: 'rt-kommo-1234',
    });
    const bg = await tokenExchange(bitrixTokenEndpoint({ ...BITRIX, oauthServer: b.url }), { timeoutMs: 2000 })({
      grant_type: 'refresh_token',
      refresh_token: 'rt-bitrix-1234',
    });
    expect(k.bodies.map((x) => JSON.parse(x) as unknown)).toEqual([
      {
        client_id: KOMMO.clientId,
        client_secret: KOMMO.clientSecret,
        redirect_uri: KOMMO.redirectUri,
        grant_type: 'refresh_token',
        refresh_token: 'rt-kommo-1234',
      },
    ]);
    expect(b.bodies.map((x) => Object.fromEntries(new URLSearchParams(x)))).toEqual([
      { client_id: BITRIX.clientId, client_secret: BITRIX.clientSecret, grant_type: 'refresh_token', refresh_token: 'rt-bitrix-1234' },
    ]);
    expect(kg).toEqual({ access_token: 'acc-0123456789', refresh_token: 'ref-0123456789', expires_in: 60 });
    expect(bg).toEqual({ access_token: 'acc-0123456789', refresh_token: 'ref-0123456789', expires_in: 60, extra: { scope: 'crm,user' } });
  });

  it('a refusal that echoes the client secret and the refresh token: neither reaches the error, which marks the token spent', async () => {
    const secret = 'echoed-secret-4d2c8e1f';
    const refresh = 'echoed-refresh-77aa31bc';
    const k = await endpoint(() => ({ status: 400, json: { hint: `Invalid refresh token ${refresh} for client ${secret}` } }));
    const exchange = tokenExchange(
      kommoTokenEndpoint({ baseUrl: k.url, clientId: 'echo-client', clientSecret: secret, redirectUri: 'https://example.org/cb' }),
      {
        timeoutMs: 2000,
      },
    );
    const e = await exchange({ grant_type: 'refresh_token', refresh_token: refresh }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CrmError);
    expect(refreshRefused(e)).toBe(true);
    const shown = JSON.stringify({ message: (e as CrmError).message, json: (e as CrmError).toJSON() });
    expect(shown).toMatch(/Invalid refresh token/);
    expect(shown).not.toContain(secret);
    expect(shown).not.toContain(refresh);
    expect(k.bodies).toHaveLength(1);
  });

  it('a connection that never opens is tried three times in all, then a retryable network error', async () => {
    const closed = await endpoint(() => ({ status: 500, json: {} }));
    const url = closed.url;
    await new Promise((r) => servers.pop()!.close(r)); // nothing listens there now: connection refused
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const exchange = tokenExchange(kommoTokenEndpoint({ baseUrl: url, ...KOMMO }), { timeoutMs: 2000, logger });
    const e = await exchange({ grant_type: 'refresh_token', refresh_token: 'rt-never-sent-1234' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'network', retryable: true });
    expect((e as CrmError).message).toContain('ECONNREFUSED');
    expect(lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === 'oauth token request')).toHaveLength(3);
    expect(lines.join('')).not.toContain(KOMMO.clientSecret);
  });
});
