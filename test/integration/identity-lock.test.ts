/**
 * Issue 16, "no duplicates when calls race": identical creates sent at once from one MCP client make one
 * contact and one lead, counted in the emulator's own state; a name-only create says it could not check.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { IdentityLocks } from '../../src/store/identity-lock.js';
import { CrmError } from '../../src/domain/errors.js';
import { openStore, type Store } from '../../src/store/store.js';
import {
  CREATE_ONLY,
  connectBitrix,
  connectKommo,
  logLines,
  startBitrix,
  startKommo,
  structured,
  type Connected,
  type ConnectedBitrix,
} from '../helpers/index.js';
import { redisAvailable, testRedisUrl } from '../helpers/redis.js';

let kEmu: KommoEmulator;
let bEmu: BitrixEmulator;
let k: Connected;
let b: ConnectedBitrix;
beforeAll(async () => {
  kEmu = await startKommo({ rateLimit: false });
  bEmu = await startBitrix({ rateLimit: false });
  k = await connectKommo(kEmu, { flags: CREATE_ONLY });
  b = await connectBitrix(bEmu, { flags: CREATE_ONLY });
});
afterAll(async () => {
  await k?.close();
  await b?.close();
  await kEmu?.close();
  await bEmu?.close();
});

const tag = () => Math.random().toString(36).slice(2, 8);

/** What the emulators hold, by the unique last name / title the test chose. */
const held = {
  kommo: (last: string, title: string) => ({
    contacts: [...kEmu.state.contacts.values()].filter((c) => c.last_name === last).length,
    leads: [...kEmu.state.leads.values()].filter((l) => l.name === title).length,
  }),
  bitrix: (last: string, title: string) => ({
    contacts: [...bEmu.state.contacts.values()].filter((c) => c.LAST_NAME === last).length,
    leads: [...bEmu.state.leads.values(), ...bEmu.state.deals.values()].filter((l) => l.TITLE === title).length,
  }),
};

describe.each([
  ['kommo', () => k, held.kommo],
  ['bitrix24', () => b, held.bitrix],
] as const)('%s: five identical calls at once', (_crm, conn, count) => {
  it('create_lead ×5 → one contact, one lead; the others return it', async () => {
    const last = `Racer${tag()}`;
    const title = `Race lead ${last}`;
    const args = { name: title, contact: { first_name: 'Ivan', last_name: last, phone: `+7 904 ${100 + Math.floor(Math.random() * 900)}-33-44` } };
    const rs = await Promise.all(Array.from({ length: 5 }, () => conn().call('create_lead', args)));
    const out = rs.map((r) => structured<{ created: boolean; lead: { id: number }; duplicate_check: string }>(r));
    expect(count(last, title)).toEqual({ contacts: 1, leads: 1 });
    expect(out.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(out.map((r) => r.lead.id)).size).toBe(1);
    expect(out.every((r) => r.duplicate_check === 'done')).toBe(true);
  });

  it('create_contact ×5 (email in different cases) → one contact', async () => {
    const last = `Solo${tag()}`;
    const rs = await Promise.all(
      ['a', 'A', 'a', 'A', 'a'].map((c) => conn().call('create_contact', { first_name: 'Olga', last_name: last, email: `${c}${last}@example.org` })),
    );
    const out = rs.map((r) => structured<{ created: boolean; contact: { id: number }; duplicate_check: string }>(r));
    expect(count(last, '-').contacts).toBe(1);
    expect(out.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(out.map((r) => r.contact.id)).size).toBe(1);
  });

  it('a name-only create says no duplicate check was possible', async () => {
    const last = `Nameonly${tag()}`;
    const c = structured<{ created: boolean; duplicate_check: string }>(await conn().call('create_contact', { first_name: 'Nina', last_name: last }));
    expect(c).toMatchObject({ created: true, duplicate_check: 'not possible: no phone or email' });
    const l = structured<{ created: boolean; duplicate_check: string }>(
      await conn().call('create_lead', { name: `Lead ${last}`, contact: { last_name: last } }),
    );
    expect(l).toMatchObject({ created: true, duplicate_check: 'not possible: no phone or email' });
    const dry = structured<{ duplicate_check: string }>(await conn().call('create_lead', { name: `Dry ${last}`, dry_run: true }));
    expect(dry.duplicate_check).toBe('not possible: no phone or email');
  });
});

describe('the lock itself', () => {
  it('a caller that waits too long gets a retryable rate_limited error, having run nothing', async () => {
    const locks = new IdentityLocks(undefined, { waitMs: 100, ttlMs: 1000 });
    const lock = locks.for({ kind: 'x', connection: 'one' });
    let release!: () => void;
    const holding = lock(['phone:+79042223344'], () => new Promise<void>((r) => (release = r)));
    let ran = false;
    const err = await lock(['email:a@b.c', 'phone:+79042223344'], async () => void (ran = true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrmError);
    expect(err).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(ran).toBe(false);
    release();
    await holding;
    // Released: the key is free again, and another account never waited for it.
    await expect(lock(['phone:+79042223344'], async () => 'ok')).resolves.toBe('ok');
  });

  it('two accounts never block each other; overlapping key sets in either order do not deadlock', async () => {
    const store = await openStore('memory');
    const locks = new IdentityLocks(store, { waitMs: 500, ttlMs: 1000 });
    const one = locks.for({ kind: 'x', connection: 'one' });
    const two = locks.for({ kind: 'x', connection: 'two' });
    let release!: () => void;
    const holding = one(['phone:+1'], () => new Promise<void>((r) => (release = r)));
    await expect(two(['phone:+1'], async () => 'other account')).resolves.toBe('other account');
    release();
    await holding;
    const order: string[] = [];
    const slow = (n: string) => async () => {
      order.push(`${n}+`);
      await new Promise((r) => setTimeout(r, 30));
      order.push(`${n}-`);
    };
    await Promise.all([one(['a', 'b'], slow('x')), one(['b', 'a'], slow('y')), one(['b'], slow('z'))]);
    // All three ran (no deadlock), one at a time (each shares key b with the others).
    expect(order).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) expect(order[i + 1]).toBe(order[i]!.replace('+', '-'));
    await store.close();
  });
});

/**
 * Renewal: a holder that works longer than the TTL keeps its store lock. Two store instances on one backing
 * stand for two processes (each has its own in-process chain, so the second really waits on the file or Redis).
 * The TTL is short so nothing sleeps for 30 s; without renewal the second caller enters after one TTL.
 */
const TTL = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The identity lock's store name for one key, written out here rather than taken from the code. */
const identityName = (scope: string, key: string) => `identity:${createHash('sha256').update(`${scope}\n${key}`).digest('hex').slice(0, 32)}`;
const lostWarnings = (lock: string) => logLines.filter((l) => l.includes('lock lost') && l.includes(lock));

const RUN_REDIS = redisAvailable();
let redis: { url: string; close(): Promise<void> } | undefined;
const dir = mkdtempSync(join(tmpdir(), 'crm-renew-'));
const backings = {
  file: {
    open: () => openStore(join(dir, 'store.json')),
    /** Puts another holder's lock where `name`'s lock lives. */
    steal: async (_s: Store, name: string) => {
      const path = `${join(dir, 'store.json')}.${createHash('sha256').update(name).digest('hex').slice(0, 16)}.lock`;
      writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), token: 'someone-else', at: Date.now() }));
      return () => (JSON.parse(readFileSync(path, 'utf8')) as { token: string }).token;
    },
  },
  redis: {
    open: async () => {
      redis ??= await testRedisUrl(14);
      return openStore(redis.url);
    },
    steal: async (s: Store, name: string) => {
      await s.redis!.set(`crm-mcp:lock:${name}`, 'someone-else', { PX: 10_000 });
      return () => s.redis!.get(`crm-mcp:lock:${name}`);
    },
  },
};
const opened: Store[] = [];
afterAll(async () => {
  for (const s of opened) await s.close();
  await redis?.close();
});

describe.each([
  ['file', true],
  ['redis', RUN_REDIS],
] as const)('identity lock renewal on the %s store', (kind, run) => {
  const open = async () => {
    const s = await backings[kind].open();
    opened.push(s);
    return s;
  };

  it.runIf(run)('a holder running three TTLs keeps the lock; a caller in another process waits, then enters', async () => {
    const [a, b] = [await open(), await open()];
    const connection = `renew-${kind}-${tag()}`;
    const lock = new IdentityLocks(a, { waitMs: 5000, ttlMs: TTL }).for({ kind: 'x', connection });
    const events: string[] = [];
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const holder = lock(['phone:+79040001122'], async () => {
      events.push('holder in');
      entered();
      await sleep(TTL * 3);
      events.push('holder out');
    });
    await inside;
    const other = b.withLock(identityName(`x:${connection}`, 'phone:+79040001122'), TTL, async () => void events.push('other in'), 5000);
    await Promise.all([holder, other]);
    expect(events).toEqual(['holder in', 'holder out', 'other in']);
  });

  it.runIf(run)('renewal stops when fn settles: a later holder is left alone, no lost-lock warning', async () => {
    const a = await open();
    const name = `renew-stop-${kind}-${tag()}`;
    const evals = kind === 'redis' ? vi.spyOn(a.redis!, 'eval') : undefined;
    await a.withLock(name, TTL, () => sleep(TTL), 5000, { renew: true });
    const renewalsDuring = evals?.mock.calls.filter((c) => String(c[0]).includes('pexpire')).length;
    const holderNow = await backings[kind].steal(a, name);
    await sleep(TTL * 2);
    expect(await holderNow()).toBe('someone-else');
    expect(lostWarnings(name)).toEqual([]);
    if (evals) {
      // At least one renewal while fn ran (TTL/3 ticks over one TTL), none since.
      expect(renewalsDuring).toBeGreaterThanOrEqual(1);
      expect(evals.mock.calls.filter((c) => String(c[0]).includes('pexpire')).length).toBe(renewalsDuring);
      evals.mockRestore();
    }
  });

  it.runIf(run)('a renewal that finds the lock taken logs a warning naming the lock, and fn still finishes', async () => {
    const a = await open();
    const name = `renew-lost-${kind}-${tag()}`;
    const result = await a.withLock(
      name,
      TTL,
      async () => {
        await backings[kind].steal(a, name);
        await sleep(TTL);
        return 'finished';
      },
      5000,
      { renew: true },
    );
    expect(result).toBe('finished');
    expect(lostWarnings(name)).toHaveLength(1);
  });
});
