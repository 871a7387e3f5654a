import { describe, expect, it } from 'vitest';
import { normalizePhone, sameEmail, samePhone } from '../../src/util/phone.js';
import { backoffMs, parseRetryAfter, shouldRetry } from '../../src/http/retry.js';

describe('phones', () => {
  it.each(['+7 912 345-67-89', '8 (912) 345 67 89', '79123456789', '+79123456789', '8-912-345-67-89'])('%s → +79123456789', (raw) => {
    expect(normalizePhone(raw)?.e164).toBe('+79123456789');
  });
  it.each([
    ['00 7 912 345-67-89', undefined, '+79123456789'],
    ['0044 20 7946 0958', undefined, '+442079460958'],
    ['810 7 912 345 67 89', undefined, '+79123456789'],
    ['(202) 555-0107', 'US', '+12025550107'],
    ['912 345-67-89', 'RU', '+79123456789'],
    ['020 7946 0958', 'GB', '+442079460958'],
  ])('%s (account country %s) → %s', (raw, country, e164) => {
    expect(normalizePhone(raw, country)?.e164).toBe(e164);
  });
  it('gives national digits for substring search and rejects junk', () => {
    expect(normalizePhone('+7 912 345-67-89')?.national).toBe('9123456789');
    expect(normalizePhone('12345')).toBeUndefined();
    expect(normalizePhone('hello')).toBeUndefined();
    expect(normalizePhone('+44 20 7946 0958')?.e164).toBe('+442079460958');
  });
  it('matches the same number across formats, not different ones', () => {
    expect(samePhone('8 (912) 345 67 89', '+7 912 345-67-89')).toBe(true);
    expect(samePhone('+7 912 345-67-88', '+7 912 345-67-89')).toBe(false);
    expect(sameEmail('Ada@Example.com', ' ada@example.COM ')).toBe(true);
  });
});

describe('retry decisions', () => {
  const transient = { code: 'upstream' as const, notProcessed: false, transient: true };
  it('reads retry transient failures up to the limit', () => {
    expect(shouldRetry('read', transient, 0, 3)).toBe(true);
    expect(shouldRetry('read', transient, 3, 3)).toBe(false);
    expect(shouldRetry('read', { ...transient, transient: false }, 0, 3)).toBe(false);
  });
  it('creates retry only when the CRM certainly did not process the request', () => {
    expect(shouldRetry('create', transient, 0, 3)).toBe(false);
    expect(shouldRetry('create', { code: 'rate_limited', notProcessed: true, transient: true }, 0, 3)).toBe(true);
  });
  it('backoff grows, is jittered, and honours a longer Retry-After', () => {
    expect(backoffMs(0, undefined, { random: () => 0 })).toBe(125);
    expect(backoffMs(3, undefined, { random: () => 1 })).toBe(2000);
    expect(backoffMs(0, 5000, { random: () => 0 })).toBe(5000);
    expect(backoffMs(0, 999_999, { random: () => 0 })).toBe(30_000);
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(Date.now() + 3000).toUTCString())).toBeGreaterThan(1000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
