/** Company names on list pages are read once a minute, not once a page (bulk reads stay at the CRM's pace). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { NameCache } from '../../src/util/name-cache.js';
import { connectKommo, startKommo, structured } from '../helpers/index.js';

describe('NameCache', () => {
  it('remembers a name for a minute, then forgets it', () => {
    let now = 0;
    const c = new NameCache(() => now);
    c.set(7, 'Acme');
    c.set('8', null);
    expect(c.get('7')).toBe('Acme');
    expect(c.has(8)).toBe(true);
    expect(c.get(8)).toBeNull();
    now = 60_001;
    expect(c.has(7)).toBe(false);
  });
});

describe('Kommo list pages', () => {
  let emu: KommoEmulator;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it('name companies on the first page and reuse the names on the next pages', async () => {
    const c = await connectKommo(emu);
    emu.resetLog();
    type Page = { items: Array<{ company: { id: number; name: string | null } | null }>; cursor: string | null };
    const first = structured<Page>(await c.call('list_leads', { limit: 50 }));
    const named = first.items.filter((x) => x.company);
    expect(named.length).toBeGreaterThan(0);
    for (const x of named) expect(x.company!.name).toBe(emu.state.companies.get(x.company!.id)!.name);
    const lookups = () => emu.requests.filter((r) => r.method === 'GET' && r.path === '/api/v4/companies').length;
    expect(lookups()).toBe(1);
    // The same page again: every name is known, no lookup.
    await c.call('list_leads', { limit: 50 });
    expect(lookups()).toBe(1);
    await c.close();
  });
});
