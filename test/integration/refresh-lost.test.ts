/**
 * Issue 10 / defect 5: a token refresh whose answer is lost. The emulators take the strict reading of the docs
 * (the old refresh token dies the moment the new pair is issued), so the stored refresh token is spent: the
 * server must end in a clear "sign in again" error after a bounded number of token requests, never loop on the
 * dead token, and `crm-mcp doctor` must say what happened and what to run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnose } from '../../src/commands/doctor.js';
import { bitrixTokenKey } from '../../src/crms/bitrix24/auth.js';
import { kommoTokenKey } from '../../src/crms/kommo/auth.js';
import type { TokenRecord } from '../../src/crms/oauth.js';
import { openStore } from '../../src/store/store.js';
import { connectBitrix, connectKommo, errorOf, startBitrix, startKommo, text } from '../helpers/index.js';

const KOMMO = { clientId: 'lost-client', clientSecret: 'lost-client-secret-123456', redirectUri: 'https://example.org/oauth' };
const BITRIX = { clientId: 'app.lost', clientSecret: 'app-lost-secret-123456' };

describe('Kommo: the answer to a refresh is lost', () => {
  it('ends in a non-retryable auth error naming `crm-mcp auth kommo` after exactly 2 token requests, then sends no more; doctor reports it', async () => {
    const emu = await startKommo({ rateLimit: false, oauth: KOMMO });
    const home = mkdtempSync(join(tmpdir(), 'crm-mcp-lost-'));
    const file = join(home, 'store.json');
    const t0 = await emu.issueOAuthTokens();
    const c = await connectKommo(emu, { store: await openStore(file), connection: { oauth: { ...KOMMO, refreshToken: t0.refresh_token } } });
    try {
      const before = { ...emu.stats };
      emu.loseRefreshResponses(1);
      const r = await c.call('list_leads', { limit: 1 });
      const e = errorOf(r);
      expect(e.code).toBe('auth');
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/answer to the token refresh was lost/);
      expect(e.message).toContain('crm-mcp auth kommo');
      // What the emulator saw: the lost refresh (which did issue a pair) and one repeat with the dead token.
      expect(emu.stats.tokenRequests - before.tokenRequests).toBe(2);
      expect(emu.stats.refreshes - before.refreshes).toBe(1);
      const tokenCalls = emu.requests.filter((q) => q.path === '/oauth2/access_token');
      expect(tokenCalls.slice(-2).map((q) => JSON.parse(q.body).refresh_token)).toEqual([t0.refresh_token, t0.refresh_token]);
      expect(tokenCalls.at(-2)!.status, 'the first answer was dropped').toBe(0);
      expect(tokenCalls.at(-1)!.status).toBe(400);
      // No API request went out with a dead or missing token.
      expect(emu.requests.filter((q) => q.path.startsWith('/api/v4/'))).toHaveLength(0);
      // The record is marked; further calls fail the same way without sending the dead token again.
      expect((await c.store.get<TokenRecord>(kommoTokenKey(emu.url, KOMMO.clientId)))?.refused_at).toBeTypeOf('number');
      for (let i = 0; i < 3; i++) {
        const again = errorOf(await c.call('list_leads', { limit: 1 }));
        expect(again.code).toBe('auth');
        expect(again.message).toContain('crm-mcp auth kommo');
      }
      expect(emu.stats.tokenRequests - before.tokenRequests).toBe(2);
      expect(JSON.stringify(r)).not.toContain(t0.refresh_token);

      // doctor (same store; diagnose() reads the store from its env, not from process.env) says the stored refresh token was refused and what to run, and sends nothing.
      const report = await diagnose({
        CRM_MCP_HOME: home,
        CRM_MCP_STORE: file,
        KOMMO_BASE_URL: emu.url,
        KOMMO_CLIENT_ID: KOMMO.clientId,
        KOMMO_CLIENT_SECRET: KOMMO.clientSecret,
        KOMMO_REDIRECT_URI: KOMMO.redirectUri,
        KOMMO_REFRESH_TOKEN: t0.refresh_token,
      });
      const p = report.problems.find((x) => x.connection === 'kommo' && x.check === 'token');
      expect(p, JSON.stringify(report.problems)).toBeDefined();
      expect(p!.severity).toBe('error');
      expect(p!.message).toMatch(/stored refresh token was refused by Kommo/);
      expect(p!.fix).toContain('crm-mcp auth kommo');
      expect(report.exit_code).toBe(1);
      expect(emu.stats.tokenRequests - before.tokenRequests).toBe(2);
      expect(JSON.stringify(report)).not.toContain(t0.refresh_token);

      // A new sign-in (what `crm-mcp auth kommo` writes: the next generation, no mark) is adopted by the running
      // server without a refresh.
      const fresh = await emu.issueOAuthTokens();
      const key = kommoTokenKey(emu.url, KOMMO.clientId);
      const prev = (await c.store.get<TokenRecord>(key))!;
      await c.store.set<TokenRecord>(key, {
        access_token: fresh.access_token,
        refresh_token: fresh.refresh_token,
        expires_at: Date.now() + 86_400_000,
        obtained_at: Date.now(),
        generation: prev.generation + 1,
        seed: prev.seed,
      });
      const ok = await c.call('list_leads', { limit: 1 });
      expect(ok.isError, text(ok)).toBeFalsy();
      expect(emu.stats.tokenRequests - before.tokenRequests).toBe(2);
      expect(emu.requests.filter((q) => q.path.startsWith('/api/v4/')).at(-1)!.headers.authorization).toBe(`Bearer ${fresh.access_token}`);
    } finally {
      await c.close();
      await emu.close();
    }
  });

  it('a refresh that meets a 5xx once and then succeeds is not an error (one repeat is allowed)', async () => {
    const emu = await startKommo({ rateLimit: false, oauth: KOMMO });
    const t0 = await emu.issueOAuthTokens();
    const c = await connectKommo(emu, { connection: { oauth: { ...KOMMO, refreshToken: t0.refresh_token } } });
    try {
      emu.injectFault({ kind: 'status', status: 502, body: 'bad gateway' }, { match: { path: '/oauth2/access_token' } });
      const before = emu.stats.tokenRequests;
      const r = await c.call('list_leads', { limit: 1 });
      expect(r.isError, text(r)).toBeFalsy();
      // The 502 was answered by the harness before the token endpoint ran: one real token request.
      expect(emu.stats.tokenRequests - before).toBe(1);
      expect(emu.requests.filter((q) => q.path === '/oauth2/access_token')).toHaveLength(2);
    } finally {
      await c.close();
      await emu.close();
    }
  });
});

describe('Bitrix24 OAuth: the answer to a refresh is lost (same strict single-use rotation)', () => {
  it('ends in a non-retryable auth error naming `crm-mcp auth bitrix24` after exactly 2 token requests, then sends no more; doctor reports it', async () => {
    const emu = await startBitrix({ rateLimit: false, oauth: BITRIX });
    const home = mkdtempSync(join(tmpdir(), 'crm-mcp-lost-b-'));
    const t0 = await emu.issueOAuthTokens();
    const conn = { oauth: { ...BITRIX, refreshToken: t0.refresh_token, portal: emu.url, oauthServer: emu.url } };
    const file = join(home, 'store.json');
    const c = await connectBitrix(emu, { store: await openStore(file), connection: conn });
    const tokenCalls = () => emu.requests.filter((q) => q.path.startsWith('/oauth/token'));
    try {
      emu.harness.injectFault({ kind: 'reset-after' }, { match: { path: '/oauth/token/' } });
      const r = await c.call('bitrix_call', { method: 'crm.deal.list', params: { select: ['ID'] } });
      const e = errorOf(r);
      expect(e.code).toBe('auth');
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/answer to the token refresh was lost/);
      expect(e.message).toContain('crm-mcp auth bitrix24');
      expect(tokenCalls()).toHaveLength(2);
      expect(tokenCalls()[0]!.processed, 'the lost refresh did run').toBe(true);
      expect(emu.stats.refreshes).toBe(1);
      for (let i = 0; i < 2; i++) expect(errorOf(await c.call('bitrix_call', { method: 'crm.deal.list', params: { select: ['ID'] } })).code).toBe('auth');
      expect(tokenCalls()).toHaveLength(2);
      expect(emu.requests.filter((q) => q.path.startsWith('/rest/'))).toHaveLength(0);
      expect((await c.store.get<TokenRecord>(bitrixTokenKey(emu.url, BITRIX.clientId)))?.refused_at).toBeTypeOf('number');

      const report = await diagnose({
        CRM_MCP_HOME: home,
        CRM_MCP_STORE: file,
        BITRIX_PORTAL: emu.url,
        BITRIX_OAUTH_SERVER: emu.url,
        BITRIX_CLIENT_ID: BITRIX.clientId,
        BITRIX_CLIENT_SECRET: BITRIX.clientSecret,
        BITRIX_REFRESH_TOKEN: t0.refresh_token,
      });
      const p = report.problems.find((x) => x.check === 'token');
      expect(p, JSON.stringify(report.problems)).toBeDefined();
      expect(p!.message).toMatch(/stored refresh token was refused by Bitrix24/);
      expect(p!.fix).toContain('crm-mcp auth bitrix24');
      expect(tokenCalls()).toHaveLength(2);
    } finally {
      await c.close();
      await emu.close();
    }
  });
});
