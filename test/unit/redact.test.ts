import { describe, expect, it } from 'vitest';
import { redact, redactValue, registerSecret } from '../../src/util/redact.js';
import { CrmError } from '../../src/http/errors.js';

describe('redaction', () => {
  it('masks registered secrets, bearer tokens, JWTs and webhook secrets', () => {
    registerSecret('sup3r-s3cret-value');
    expect(redact('token=sup3r-s3cret-value here')).not.toContain('sup3r-s3cret-value');
    expect(redact('Authorization: Bearer abcdefghijklmnop')).toBe('Authorization: Bearer [REDACTED]');
    expect(redact('x eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl y')).toBe('x [REDACTED] y');
    expect(redact('https://p.bitrix24.com/rest/1/abcd1234efgh/crm.lead.get')).toBe('https://p.bitrix24.com/rest/1/[REDACTED]/crm.lead.get');
    expect(redact('{"refresh_token":"def50200abc"}')).toBe('{"refresh_token":"[REDACTED]"}');
  });

  it('applies to nested values and to error messages', () => {
    registerSecret('another-secret-42');
    expect(redactValue({ a: ['x another-secret-42'] })).toEqual({ a: ['x [REDACTED]'] });
    expect(new CrmError({ code: 'auth', message: 'bad another-secret-42' }).message).toBe('bad [REDACTED]');
  });

  it('masks OAuth fields in bodies but leaves messages that name a variable readable', () => {
    expect(redact('client_secret=abcdefgh&x=1')).toBe('client_secret=[REDACTED]&x=1');
    expect(redact('{"client_secret": "zzzz9999"}')).toBe('{"client_secret": "[REDACTED]"}');
    expect(redact('KOMMO_CLIENT_SECRET: required for OAuth')).toBe('KOMMO_CLIENT_SECRET: required for OAuth');
    expect(redact('BITRIX_REFRESH_TOKEN: required')).toBe('BITRIX_REFRESH_TOKEN: required');
  });

  it('redacts the details of errors, not only their messages', () => {
    registerSecret('detail-secret-77');
    const e = new CrmError({ code: 'validation', message: 'x', details: [{ detail: 'token detail-secret-77', nested: { url: '/rest/3/abcdef123456/x' } }] });
    expect(JSON.stringify(e.toJSON())).not.toContain('detail-secret-77');
    expect(JSON.stringify(e.toJSON())).not.toContain('abcdef123456');
  });
});
