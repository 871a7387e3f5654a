import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/store.js';
import { freePort } from '../helpers/cli.js';
import { LeakyBucketLimiter, SlidingWindowLimiter } from '../../src/http/limiter.js';

describe('durable file store', () => {
  it('persists across instances, is private, and set() resolves after the write', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'crm-store-')), 'sub', 'store.json');
    const a = await openStore(file);
    await Promise.all([a.set('k1', { v: 1 }), a.set('k2', { v: 2 })]);
    await a.set('k1', { v: 3 });
    expect(readFileSync(file, 'utf8')).toContain('k2');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const b = await openStore(file);
    expect(await b.get('k1')).toEqual({ v: 3 });
    expect(await b.get('k2')).toEqual({ v: 2 });
    await b.delete('k2');
    expect(await (await openStore(file)).get('k2')).toBeUndefined();
  });

  it('a Redis store nobody listens on is a clear error naming the variable (on a port known to be closed)', async () => {
    // Not 6379: a machine that runs Redis there would make this pass or fail for the wrong reason.
    const port = await freePort();
    const store = openStore(`redis://127.0.0.1:${port}`).then(async (s) => {
      await s.get('probe');
      return s;
    });
    await expect(store).rejects.toThrow(/CRM_MCP_STORE/);
  });
});

describe('limiters (virtual clock)', () => {
  it('sliding window: a slot is held from send until a window after the response', async () => {
    let now = 0;
    const lim = new SlidingWindowLimiter(7, 1000, () => now);
    const releases: Array<() => void> = [];
    for (let i = 0; i < 7; i++) releases.push(await lim.acquire());
    let eighthIn = false;
    const eighth = lim.acquire().then((r) => ((eighthIn = true), r));
    // Long after the sends, but every request is still in flight: the CRM may not have counted them yet.
    now = 5000;
    await new Promise((r) => setTimeout(r, 30));
    expect(eighthIn).toBe(false);
    // One response arrives at 5000: that request reached the CRM at or before 5000, so wait until 6000.
    releases[0]!();
    await new Promise((r) => setTimeout(r, 30));
    expect(eighthIn).toBe(false);
    now = 6001;
    await eighth;
    expect(eighthIn).toBe(true);
    expect(lim.waiting).toBe(0);
  });

  it('sliding window admits N at once and no more', async () => {
    let now = 0;
    const lim = new SlidingWindowLimiter(3, 1000, () => now);
    for (let i = 0; i < 3; i++) (await lim.acquire())();
    let fourth = false;
    const p = lim.acquire().then(() => (fourth = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(fourth).toBe(false);
    now = 1001;
    await p;
    expect(fourth).toBe(true);
  });

  it('leaky bucket admits the burst capacity at once', async () => {
    const lim = new LeakyBucketLimiter(50, 2, () => 0);
    for (let i = 0; i < 50; i++) await lim.acquire();
    let done = false;
    const p = lim.acquire().then(() => (done = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    void p;
  });
});
