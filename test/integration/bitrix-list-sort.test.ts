/**
 * `sort` on the Bitrix24 list tools (issue 10): newest created first by default (ID order: DATE_CREATE is
 * read-only, set on insert), oldest first, or most recently updated first (`order DATE_MODIFY`, offset
 * paging). Expectations come from the emulator's stored records; the order sent is read from the requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { parseBxDate } from '../../src/sandbox/bitrix24/time.js';
import { structured, type ConnectedBitrix, bitrixSession, closeAll } from '../helpers/index.js';

interface Item {
  id: number | string;
  created_at: string | null;
  updated_at: string | null;
}
interface PageOut {
  items: Item[];
  has_more: boolean;
  cursor: string | null;
}

let emu: BitrixEmulator;
let c: ConnectedBitrix;
beforeAll(async () => {
  ({ emu, c } = await bitrixSession());
});
afterAll(() => closeAll(c, emu));

/** Every page of a tool call, following cursors. */
async function all(tool: string, args: Record<string, unknown>): Promise<Item[]> {
  const out: Item[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 40; i++) {
    const page: PageOut = structured(await c.call(tool, { ...args, ...(cursor ? { cursor } : {}) }));
    out.push(...page.items);
    if (page.has_more) expect(page.items.length).toBe(args.limit);
    cursor = page.cursor;
    if (!cursor) break;
  }
  return out;
}

const sentBodies = () => emu.requests.filter((r) => r.path.includes('/rest/')).map((r) => decodeURIComponent(r.body));

describe.each([
  ['list_leads', 'deals', { entity: 'deal' }],
  ['list_contacts', 'contacts', {}],
  ['list_companies', 'companies', {}],
] as const)('%s sort', (tool, table, extra) => {
  const rows = () => [...emu.state[table].values()].map((r) => ({ id: Number(r.ID), modified: parseBxDate(r.DATE_MODIFY)! }));

  it('default: newest first (highest ID first), over every page', async () => {
    const got = await all(tool, { ...extra, limit: 70 });
    expect(got.map((x) => Number(x.id))).toEqual(
      rows()
        .map((r) => r.id)
        .sort((a, b) => b - a),
    );
  });

  it('created_asc: oldest first, ID order ascending with the >ID bound', async () => {
    emu.harness.resetLog();
    const got = await all(tool, { ...extra, limit: 70, sort: 'created_asc' });
    expect(got.map((x) => Number(x.id))).toEqual(
      rows()
        .map((r) => r.id)
        .sort((a, b) => a - b),
    );
    const bodies = sentBodies().join('\n');
    expect(bodies).toMatch(/"order":\{"ID":"ASC"\}|order\[ID\]=ASC/);
    expect(bodies).toMatch(/>ID/);
  });

  it('updated_desc: most recently modified first, every record once, sent as order DATE_MODIFY DESC', async () => {
    emu.harness.resetLog();
    const got = await all(tool, { ...extra, limit: 70, sort: 'updated_desc' });
    expect(new Set(got.map((x) => Number(x.id))).size).toBe(got.length);
    expect(got.length).toBe(rows().length);
    const want = rows().sort((a, b) => b.modified - a.modified || b.id - a.id);
    expect(got.map((x) => Number(x.id))).toEqual(want.map((r) => r.id));
    expect(sentBodies().join('\n')).toMatch(/"order":\{"DATE_MODIFY":"DESC","ID":"DESC"\}|order\[DATE_MODIFY\]=DESC/);
  });
});
