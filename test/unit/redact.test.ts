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
});
