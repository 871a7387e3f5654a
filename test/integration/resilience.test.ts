/** The CRM misbehaving: 429s, 5xx, malformed bodies, timeouts, 401s, token refresh. The server keeps serving. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore } from '../../src/store/store.js';
import { READ_ONLY, connectKommo, errorOf, logLines, startKommo, structured, text } from '../helpers/index.js';

let emu: KommoEmulator;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
});
afterAll(async () => emu.close());

describe('transient failures on reads', () => {
  it.each([
    ['429 JSON', { kind: 'status', status: 429, body: '{"title":"Too Many Requests","status":429,"retry_after":0}' }],
    ['429 HTML', { kind: 'status', status: 429, body: '<html><body>429 Too Many Requests</body></html>', contentType: 'text/html' }],
    ['503', { kind: 'status', status: 503, body: '' }],
    ['502 HTML', { kind: 'status', status: 502, body: '<html>Bad gateway</html>', contentType: 'text/html' }],
    ['malformed JSON', { kind: 'malformed' }],
    ['truncated body', { kind: 'truncated' }],
    ['connection reset', { kind: 'reset-before' }],
  ] as const)('%s then success', async (_name, fault) => {
    const c = await connectKommo(emu, { maxRetries: 2 });
    emu.resetLog();
    emu.injectFault(fault, { match: { method: 'GET', path: '/api/v4/leads' } });
    const r = await c.call('list_leads', { limit: 3 });
    expect(r.isError, text(r)).toBeFalsy();
    expect(structured<{ items: unknown[] }>(r).items).toHaveLength(3);
    expect(emu.requests.filter((q) => q.path === '/api/v4/leads').length).toBeGreaterThanOrEqual(2);
    await c.close();
  });

  it('persistent malformed bodies: a clear upstream error, and the server keeps serving', async () => {
    const c = await connectKommo(emu, { maxRetries: 1 });
    emu.injectFault({ kind: 'malformed' }, { times: 2, match: { path: '/api/v4/leads' } });
    const e = errorOf(await c.call('list_leads', { limit: 1 }));
    expect(e).toMatchObject({ code: 'upstream', retryable: true });
    expect(e.message).toMatch(/not valid JSON/);
    expect((await c.call('list_leads', { limit: 1 })).isError).toBeFalsy();
    await c.close();
  });

  it('a timeout is a retryable network error; the next call works', async () => {
    const c = await connectKommo(emu, { maxRetries: 0, timeoutMs: 300 });
    emu.injectFault({ kind: 'timeout' }, { match: { path: '/api/v4/leads' } });
    const e = errorOf(await c.call('list_leads', { limit: 1 }));
    expect(e).toMatchObject({ code: 'network', retryable: true });
    expect((await c.call('list_leads', { limit: 1 })).isError).toBeFalsy();
    await c.close();
  });

  it('404 route and 402 map to clear errors', async () => {
    const c = await connectKommo(emu, { maxRetries: 0 });
    emu.injectFault(
      { kind: 'status', status: 402, body: '{"title":"Payment Required","status":402,"detail":"Payment required"}' },
      { match: { path: '/api/v4/leads' } },
    );
    expect(errorOf(await c.call('list_leads', {}))).toMatchObject({ code: 'forbidden' });
    const e = errorOf(await c.call('kommo_request', { method: 'GET', path: '/api/v4/no_such_thing' }));
    expect(e.code).toBe('not_found');
    await c.close();
  });
});

describe('auth', () => {
  it('401 → an auth error that contains no token', async () => {
    const bogus = 'bogus-token-abcdef-1234567890';
    const c = await connectKommo(emu, { connection: { accessToken: bogus } });
    const r = await c.call('list_leads', {});
    const e = errorOf(r);
    expect(e.code).toBe('auth');
    expect(e.retryable).toBe(false);
    expect(text(r)).not.toContain(bogus);
    expect(text(r)).not.toMatch(/bogus-token/);
    await c.close();
  });
});

describe('OAuth refresh', () => {
  const oauth = { clientId: 'client-abc', clientSecret: 'client-secret-xyz-123', redirectUri: 'https://example.org/cb' };

  it('20 concurrent calls meeting an expired token cause exactly one refresh', async () => {
    const e2 = await startKommo({ rateLimit: false, oauth });
    const tokens = await e2.issueOAuthTokens();
    const c = await connectKommo(e2, { connection: { oauth: { ...oauth, refreshToken: tokens.refresh_token } } });
    expect((await c.call('list_leads', { limit: 1 })).isError).toBeFalsy();
    const before = e2.stats.refreshes;
    e2.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.call('list_leads', { limit: 1 + (i % 5) })));
    for (const r of results) expect(r.isError, text(r)).toBeFalsy();
    expect(e2.stats.refreshes - before).toBe(1);
    await c.close();
    await e2.close();
  });

  it('the rotated refresh token is persisted and used after a restart', async () => {
    const e2 = await startKommo({ rateLimit: false, oauth });
    const tokens = await e2.issueOAuthTokens();
    const file = join(mkdtempSync(join(tmpdir(), 'crm-tok-')), 'store.json');
    const conn = { oauth: { ...oauth, refreshToken: tokens.refresh_token } };
    const a = await connectKommo(e2, { connection: conn, store: await openStore(file) });
    expect((await a.call('list_leads', { limit: 1 })).isError).toBeFalsy(); // refresh #1 (no access token yet)
    e2.expireAccessTokens();
    expect((await a.call('list_leads', { limit: 1 })).isError).toBeFalsy(); // refresh #2: the configured token is now spent
    await a.close();
    // A restart with the same (now stale) KOMMO_REFRESH_TOKEN must continue the stored chain.
    const b = await connectKommo(e2, { connection: conn, store: await openStore(file) });
    const r = await b.call('list_leads', { limit: 1 });
    expect(r.isError, text(r)).toBeFalsy();
    await b.close();
    await e2.close();
  });

  it('a start-up authorization code is exchanged once, even across restarts', async () => {
    const e2 = await startKommo({ rateLimit: false, oauth });
    const code = e2.issueAuthorizationCode();
    const file = join(mkdtempSync(join(tmpdir(), 'crm-code-')), 'store.json');
    const conn = { oauth: { ...oauth, authCode: code } };
    const a = await connectKommo(e2, { connection: conn, store: await openStore(file) });
    expect((await a.call('list_leads', { limit: 1 })).isError).toBeFalsy();
    await a.close();
    const b = await connectKommo(e2, { connection: conn, store: await openStore(file) });
    expect((await b.call('list_leads', { limit: 1 })).isError).toBeFalsy();
    expect(e2.stats.tokenRequests).toBe(1);
    await b.close();
    await e2.close();
  });

  it('no secret reaches a log line', async () => {
    const all = logLines.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(oauth.clientSecret);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
    expect(all).not.toContain('bogus-token-abcdef');
  });
});

describe('rate limits', () => {
  it('a burst of calls stays under 7 requests/s: the emulator counts no 429', async () => {
    const e2 = await startKommo({});
    const c = await connectKommo(e2, { flags: READ_ONLY });
    const calls = Array.from({ length: 12 }, (_, i) => c.call('list_leads', { limit: 1 + i }));
    for (const r of await Promise.all(calls)) expect(r.isError, text(r)).toBeFalsy();
    expect(e2.stats.rateLimited).toBe(0);
    expect(e2.stats.blocked).toBe(false);
    await c.close();
    await e2.close();
  });
});
