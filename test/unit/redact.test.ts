import { describe, expect, it } from 'vitest';
import { redact, redactValue, registerSecret } from '../../src/util/redact.js';
import { CrmError } from '../../src/domain/errors.js';

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

  it('masks a registered secret in the spellings a CRM or a proxy echoes it in (issue 14, finding 11)', () => {
    const secret = 'Wh00kS3cret/Key+9z~q';
    registerSecret(secret);
    const b = (s: string) => Buffer.from(s, 'utf8');
    const pct = (s: string) => [...b(s)].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('');
    // [what, the echoed text, characters of it that may stay visible (the encoded prefix, at most)]
    const cases: Array<[string, string, number]> = [
      ['upper-cased', secret.toUpperCase(), 0],
      ['lower-cased', secret.toLowerCase(), 0],
      ['percent-encoded as a URL component', encodeURIComponent(secret), 0],
      ['every byte percent-encoded, lower-case hex', pct(secret), 0],
      ['every byte percent-encoded, upper-case hex', pct(secret).toUpperCase(), 0],
      ['hex', b(secret).toString('hex'), 0],
      ['upper-case hex', b(secret).toString('hex').toUpperCase(), 0],
      ['base64', b(secret).toString('base64'), 0],
      ['base64url', b(secret).toString('base64url'), 0],
      // Inside a longer value the secret starts at each offset modulo 3; the prefix's own characters stay.
      ['base64 after one byte', b(`:${secret}`).toString('base64'), 2],
      ['base64 after two bytes (a Basic header)', b(`u:${secret}`).toString('base64'), 3],
      ['base64url after seven bytes', b(`Bearer ${secret}`).toString('base64url'), 10],
      ['base64 after three bytes', b(`id=${secret}`).toString('base64'), 4],
    ];
    for (const [what, echoed, prefix] of cases) {
      const out = redact(`upstream said: ${echoed} (end)`);
      expect(out, what).toContain('[REDACTED]');
      const left = out.replace('upstream said: ', '').replace(' (end)', '').replace('[REDACTED]', '').replace(/=+$/, '');
      // At most the prefix's characters plus one mixed character on either side remain (and the padding).
      expect(left.length, `${what}: ${out}`).toBeLessThanOrEqual(prefix + 2);
    }
    // Ordinary text is untouched.
    expect(redact('nothing secret here: 1234567890 abcdef')).toBe('nothing secret here: 1234567890 abcdef');
  });

  it('masks an upper-cased webhook secret and its hex and base64 forms', () => {
    const webhookSecret = 'q1w2e3r4t5y6u7i8';
    registerSecret(webhookSecret);
    for (const echoed of [
      webhookSecret.toUpperCase(),
      `https://p.bitrix24.com/REST/1/${webhookSecret.toUpperCase()}/CRM.LEAD.GET`,
      Buffer.from(webhookSecret).toString('hex').toUpperCase(),
      Buffer.from(webhookSecret).toString('base64'),
    ]) {
      const out = redact(`echo ${echoed}`);
      expect(out).toContain('[REDACTED]');
      expect(out.toLowerCase()).not.toContain(webhookSecret.slice(2, -2));
      expect(out).not.toContain(echoed);
    }
  });

  it('redacts the details of errors, not only their messages', () => {
    registerSecret('detail-secret-77');
    const e = new CrmError({ code: 'validation', message: 'x', details: [{ detail: 'token detail-secret-77', nested: { url: '/rest/3/abcdef123456/x' } }] });
    expect(JSON.stringify(e.toJSON())).not.toContain('detail-secret-77');
    expect(JSON.stringify(e.toJSON())).not.toContain('abcdef123456');
  });
});
