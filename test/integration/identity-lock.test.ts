/**
 * Issue 16, "no duplicates when calls race": identical creates sent at once from one MCP client make one
 * contact and one lead, counted in the emulator's own state; a name-only create says it could not check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { IdentityLocks } from '../../src/store/identity-lock.js';
import { CrmError } from '../../src/domain/errors.js';
import { openStore } from '../../src/store/store.js';
import { CREATE_ONLY, connectBitrix, connectKommo, startBitrix, startKommo, structured, type Connected, type ConnectedBitrix } from '../helpers/index.js';

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
