/**
 * Every phone of every contact in both demo accounts is found by search_lead_by_contact in three formats:
 * as stored, E.164, and (for the account's home country, Russia) national with the trunk prefix `8 …`.
 * Bitrix24 runs under both ways a portal may compare phones in crm.duplicate.findbycomm (the core's match
 * code, and the stored string as typed); under 'exact' the emulator must have received the stored string.
 * Expected formats are computed here with libphonenumber directly, not with the project's phone helpers.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BMulti, BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { LeakyBucketLimiter } from '../../src/http/limiter.js';
import { READ_ONLY, connectBitrix, startBitrix, structured, text, type Connected, closeAll, kommoSession } from '../helpers/index.js';

/**
 * Both clients' own rate limiters would pace ~1,500 searches at 2–7 requests a second; the emulators run
 * with rateLimit off here, so the clients get a limiter that never waits. Everything else is the real stack.
 */
const unlimited = () => new LeakyBucketLimiter(1_000_000, 1_000_000);

const connectBitrixFast = (emu: BitrixEmulator) => connectBitrix(emu, { flags: READ_ONLY, timeoutMs: 5000, maxRetries: 2, limiter: unlimited() });

interface Case {
  contactId: number;
  stored: string;
  input: string;
  format: 'stored' | 'e164' | 'national';
}

/** The three inputs for one stored number. A stored number without + is read as Russian (both accounts are). */
function inputs(stored: string): Array<{ input: string; format: Case['format'] }> {
  const p = stored.trim().startsWith('+') ? parsePhoneNumberFromString(stored) : parsePhoneNumberFromString(stored, 'RU');
  const out: Array<{ input: string; format: Case['format'] }> = [{ input: stored, format: 'stored' }];
  // A foreign national number on a Russian account (`020 7946 0123`) has no E.164 that can be told from it.
  if (!p || !p.isValid()) return out;
  out.push({ input: p.number, format: 'e164' });
  if (p.country === 'RU') {
    const n = p.nationalNumber;
    out.push({ input: `8 ${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6, 8)} ${n.slice(8)}`, format: 'national' });
  }
  return out;
}

function bitrixCases(emu: BitrixEmulator): Case[] {
  const cases: Case[] = [];
  for (const rec of emu.state.contacts.values())
    for (const m of (rec.PHONE as BMulti[] | undefined) ?? [])
      for (const i of inputs(m.VALUE)) cases.push({ contactId: Number(rec.ID), stored: m.VALUE, ...i });
  return cases;
}

/** findbycomm values the emulator received since the log was reset. */
function sentValues(emu: BitrixEmulator): string[] {
  const out: string[] = [];
  for (const r of emu.requests) {
    if (!r.path.endsWith('/batch.json')) continue;
    const cmd = (JSON.parse(r.body) as { cmd: Record<string, string> }).cmd;
    for (const c of Object.values(cmd)) {
      if (!c.startsWith('crm.duplicate.findbycomm?')) continue;
      for (const [k, v] of new URLSearchParams(c.slice(c.indexOf('?') + 1))) if (k.startsWith('values[')) out.push(v);
    }
  }
  return out;
}

for (const phoneMatch of ['core-normalized', 'exact'] as const) {
  describe(`Bitrix24 demo, findbycomm phoneMatch '${phoneMatch}'`, () => {
    let emu: BitrixEmulator;
    let c: Awaited<ReturnType<typeof connectBitrixFast>>;
    beforeAll(async () => {
      emu = await startBitrix({ rateLimit: false, phoneMatch });
      c = await connectBitrixFast(emu);
    });
    afterAll(async () => {
      await c.close();
      await emu.close();
    });

    it('finds the contact for every stored phone in every format', async () => {
      const cases = bitrixCases(emu);
      // The demo holds the formats of the defect report: `+7 912 447-03-61` and `+1 (202) 555-0107` styles.
      expect(cases.some((x) => /^\+7 \d{3} \d{3}-\d{2}-\d{2}$/.test(x.stored))).toBe(true);
      expect(cases.some((x) => /^\+1 \(\d{3}\) \d{3}-\d{4}$/.test(x.stored))).toBe(true);
      expect(new Set(cases.map((x) => x.contactId)).size).toBeGreaterThan(120);
      const missed: string[] = [];
      for (const k of cases) {
        emu.harness.resetLog();
        const res = await c.call('search_lead_by_contact', { phone: k.input });
        if (res.isError) {
          missed.push(`${k.format} ${k.input} (stored ${k.stored}): ${text(res)}`);
          continue;
        }
        const ids = structured<{ contacts: Array<{ id: number }> }>(res).contacts.map((x) => x.id);
        if (!ids.includes(k.contactId)) missed.push(`${k.format} ${k.input} (stored ${k.stored}) → contact ${k.contactId} not in [${ids.join(', ')}]`);
        // With exact matching only the stored string can find it, so it must have been among the values sent.
        if (phoneMatch === 'exact' && !sentValues(emu).includes(k.stored)) missed.push(`${k.format} ${k.input}: the stored string ${k.stored} was not sent`);
      }
      expect(missed).toEqual([]);
    }, 180_000);
  });
}

describe('Kommo demo, search_lead_by_contact', () => {
  let emu: KommoEmulator;
  let c: Connected;
  beforeAll(async () => {
    ({ emu, c } = await kommoSession({ limiter: unlimited() }));
  });
  afterAll(() => closeAll(c, emu));

  it('finds the contact for every stored phone in every format', async () => {
    const cases: Case[] = [];
    for (const rec of emu.state.contacts.values()) {
      const phones = (rec.custom_fields_values ?? []).find((f) => f.field_code === 'PHONE')?.values ?? [];
      for (const v of phones) for (const i of inputs(String(v.value))) cases.push({ contactId: rec.id, stored: String(v.value), ...i });
    }
    expect(cases.length).toBeGreaterThan(150);
    const missed: string[] = [];
    for (const k of cases) {
      const res = await c.call('search_lead_by_contact', { phone: k.input });
      if (res.isError) {
        missed.push(`${k.format} ${k.input} (stored ${k.stored}): ${text(res)}`);
        continue;
      }
      const ids = structured<{ contacts: Array<{ id: number }> }>(res).contacts.map((x) => x.id);
      if (!ids.includes(k.contactId)) missed.push(`${k.format} ${k.input} (stored ${k.stored}) → contact ${k.contactId} not in [${ids.join(', ')}]`);
    }
    expect(missed).toEqual([]);
  }, 180_000);
});
