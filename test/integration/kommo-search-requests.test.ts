/**
 * Requests the Kommo emulator receives per search_lead_by_contact once metadata is cached, with and without
 * a remembered phone style (how the account's `query` matches phones, src/crms/kommo/phone-style.ts), under
 * both ways the emulator's `query` may match a phone (digits of any spelling, or the text as stored). The
 * `query` texts and counts below are written out by hand from the demo data: Ivan is stored as
 * `+7 912 345-67-89`; `+44 20 7946 0958` is nobody's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deepProbe } from '../../src/commands/doctor-deep.js';
import { LeakyBucketLimiter } from '../../src/http/limiter.js';
import { DEMO } from '../../src/sandbox/kommo/demo-data.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { openStore, type Store } from '../../src/store/store.js';
import { connectKommo, startKommo, structured, type Connected } from '../helpers/index.js';

const unlimited = () => new LeakyBucketLimiter(1_000_000, 1_000_000);
const IVAN = '+7 912 345-67-89';
const NOBODY = '+44 20 7946 0958';
const EMAIL = 'ivan.petrov@example.com';

interface Out {
  contacts: Array<{ id: number }>;
}

/** One search: every request the emulator received for it, and the `query` texts of its contact searches. */
async function search(emu: KommoEmulator, c: Connected, args: Record<string, string>): Promise<{ requests: number; queries: string[]; ids: number[] }> {
  emu.resetLog();
  const out = structured<Out>(await c.call('search_lead_by_contact', args));
  const queries = emu.requests.filter((r) => r.path === '/api/v4/contacts').map((r) => new URL(r.url, 'http://x').searchParams.get('query') ?? '');
  return { requests: emu.requests.length, queries, ids: out.contacts.map((x) => x.id) };
}

/** Where the style is kept, written out here: one record per account origin. */
const keyOf = (emu: KommoEmulator) => `search-style:kommo:${emu.url}`;

describe("query compares digits (the emulator's default)", () => {
  let emu: KommoEmulator;
  let store: Store;
  let c: Connected;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
    store = await openStore('memory');
    c = await connectKommo(emu, { store, limiter: unlimited() });
    await search(emu, c, { email: EMAIL }); // metadata and Ivan's company cached; teaches nothing about phones
  });
  afterAll(async () => {
    await c?.close();
    await emu?.close();
  });

  it('no style known: not found asks all 4 spellings; email is the query and the leads', async () => {
    expect(await store.get(keyOf(emu))).toBeUndefined();
    expect(await search(emu, c, { phone: NOBODY })).toEqual({ requests: 4, queries: ['2079460958', '7946-0958', '7946 0958', '79460958'], ids: [] });
    expect(await search(emu, c, { email: EMAIL })).toEqual({ requests: 2, queries: [EMAIL], ids: [DEMO.ivanContactId] });
    expect(await store.get(keyOf(emu))).toBeUndefined();
  });

  it('a phone found by its digits in a formatted number teaches the style; then not found is 1 request', async () => {
    expect(await search(emu, c, { phone: IVAN })).toEqual({ requests: 2, queries: ['9123456789'], ids: [DEMO.ivanContactId] });
    expect(await store.get(keyOf(emu))).toMatchObject({ match: 'digits', by: 'search' });
    expect(await search(emu, c, { phone: NOBODY })).toEqual({ requests: 1, queries: ['2079460958'], ids: [] });
    expect(await search(emu, c, { phone: '8 (912) 345-67-89', email: EMAIL })).toEqual({
      requests: 3,
      queries: ['9123456789', EMAIL],
      ids: [DEMO.ivanContactId],
    });
    expect(await search(emu, c, { phone: IVAN })).toEqual({ requests: 2, queries: ['9123456789'], ids: [DEMO.ivanContactId] });
  });

  it('a provider restarted on the same store asks 1 spelling from its first search on', async () => {
    const again = await connectKommo(emu, { store, limiter: unlimited() });
    try {
      // Cold: the account (country) and, with no contact found, pipelines and users besides the one query.
      expect((await search(emu, again, { phone: NOBODY })).queries).toEqual(['2079460958']);
      expect(await search(emu, again, { phone: NOBODY })).toEqual({ requests: 1, queries: ['2079460958'], ids: [] });
    } finally {
      await again.close();
    }
  });

  it('doctor --deep remembers the style for the searches that follow', async () => {
    const fresh = await openStore('memory');
    const d = await connectKommo(emu, { store: fresh, limiter: unlimited() });
    try {
      await deepProbe(d.provider);
      expect(await fresh.get(keyOf(emu))).toMatchObject({ match: 'digits' });
      expect(await search(emu, d, { phone: NOBODY })).toEqual({ requests: 1, queries: ['2079460958'], ids: [] });
    } finally {
      await d.close();
    }
  });
});

describe('query matches the text as stored', () => {
  let emu: KommoEmulator;
  let store: Store;
  let c: Connected;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false, behaviour: { phoneQuery: 'as-stored' } });
    store = await openStore('memory');
    c = await connectKommo(emu, { store, limiter: unlimited() });
    await search(emu, c, { email: EMAIL });
  });
  afterAll(async () => {
    await c?.close();
    await emu?.close();
  });

  it('the digits miss Ivan and his dashes find him: the style is learnt, national digits no longer asked', async () => {
    expect(await search(emu, c, { phone: NOBODY })).toEqual({ requests: 4, queries: ['2079460958', '7946-0958', '7946 0958', '79460958'], ids: [] });
    expect(await search(emu, c, { phone: IVAN })).toEqual({ requests: 3, queries: ['9123456789', '345-67-89'], ids: [DEMO.ivanContactId] });
    expect(await store.get(keyOf(emu))).toMatchObject({ match: 'as-stored', spelling: 'dashes', by: 'search' });
    // `79460958` holds every text `2079460958` would find: 3 spellings, not 4.
    expect(await search(emu, c, { phone: NOBODY })).toEqual({ requests: 3, queries: ['7946-0958', '7946 0958', '79460958'], ids: [] });
    expect(await search(emu, c, { phone: IVAN })).toEqual({ requests: 2, queries: ['345-67-89'], ids: [DEMO.ivanContactId] });
    expect(await search(emu, c, { phone: '8 (912) 345-67-89', email: EMAIL })).toEqual({
      requests: 3,
      queries: ['345-67-89', EMAIL],
      ids: [DEMO.ivanContactId],
    });
  });

  it('a number stored in another spelling is still found, and its spelling goes first next time', async () => {
    // Contact 2000003 holds `89183364316` (no dashes, no spaces): only the joined digits find it as stored.
    const r = await search(emu, c, { phone: '+7 918 336-43-16' });
    expect(r.queries).toEqual(['336-43-16', '336 43 16', '3364316']);
    expect(r.ids).toContain(2000003);
    expect(await store.get(keyOf(emu))).toMatchObject({ match: 'as-stored', spelling: 'joined' });
    expect((await search(emu, c, { phone: IVAN })).queries).toEqual(['3456789', '345-67-89']);
  });
});
