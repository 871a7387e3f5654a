/**
 * 2. HTTP requests per `search_lead_by_contact`, counted at the emulator (real limits on), for a cold server
 * (first call: metadata not cached yet) and for warm calls (the normal case: metadata cached for 5 minutes).
 *
 * Kommo: the server starts with an empty store, so nothing is known about how the account's `query` matches
 * phones. The cold call (Ivan, stored `+7 912 345-67-89`) is found by his national digits although the stored
 * text does not hold them: that proves `query` compares digits, the provider remembers it in the store
 * (src/crms/kommo/phone-style.ts), and the warm searches ask one spelling. Nothing is seeded and `doctor
 * --deep` is not run. For comparison, `unknown_style_not_found` is the not-found search on a second fresh
 * server whose only call so far found nobody (nothing learnt: every spelling is asked).
 */
import { DEMO as KDEMO } from '../dist/sandbox/kommo/index.js';
import { DEMO as BDEMO } from '../dist/sandbox/bitrix24/index.js';
import { bitrixCounters, bitrixEmu, bitrixProvider, delta, inProcessClient, kommoCounters, kommoEmu, kommoProvider, log, sleep, structuredOf } from './lib.mjs';

async function countSearches(c, counters, cases) {
  const out = [];
  for (const [label, args] of cases) {
    const before = counters();
    const r = structuredOf(await c.call('search_lead_by_contact', args));
    const d = delta(counters(), before);
    out.push({ search: label, requests: d.requests, found: r.found, leads: r.leads.length, contacts: r.contacts.length });
  }
  return out;
}

function summary(cold, warm, counters) {
  const max = Math.max(...warm.map((w) => w.requests));
  return { cold_first_call: cold, warm, max_requests_warm: max, max_requests_cold: cold.requests, emulator_rejections: counters };
}

export async function requestsPerSearch() {
  log('requests per search_lead_by_contact');
  // Kommo
  const { emu: k, token } = await kommoEmu();
  const kp = await kommoProvider(k, token);
  const kc = await inProcessClient([kp]);
  const kCases = [
    ['phone', { phone: KDEMO.ivanPhone }],
    ['email', { email: KDEMO.ivanEmail.toLowerCase() }],
    ['phone + email', { phone: '8 (912) 345-67-89', email: KDEMO.ivanEmail }],
    ['not found (phone)', { phone: '+44 20 7946 0958' }],
  ];
  const [kCold] = await countSearches(kc, () => kommoCounters(k), [['phone (cold)', { phone: KDEMO.ivanPhone }]]);
  await sleep(1100);
  const kWarm = await countSearches(kc, () => kommoCounters(k), kCases);
  const kommo = summary(kCold, kWarm, { rate_limited_429: k.stats.rateLimited, blocked_403: k.stats.blocked });
  kommo.phone_style_after_cold = (await kp.phoneStyle.get()) ?? null;
  await kc.close();
  await sleep(1100);
  const kc2 = await inProcessClient([await kommoProvider(k, token)]);
  await countSearches(kc2, () => kommoCounters(k), [['email (cold)', { email: KDEMO.ivanEmail }]]);
  await sleep(1100);
  [kommo.unknown_style_not_found] = await countSearches(kc2, () => kommoCounters(k), [['not found (phone), style unknown', { phone: '+44 20 7946 0958' }]]);
  await kc2.close();
  await k.close();

  // Bitrix24
  const b = await bitrixEmu();
  const bc = await inProcessClient([await bitrixProvider(b)]);
  const bCases = [
    ['phone', { phone: '+7 912 345-67-89' }],
    ['email', { email: BDEMO.ivan.email }],
    ['phone + email', { phone: '8 916 555 12 34', email: BDEMO.olga.emails[0] }],
    ['not found (phone)', { phone: '+44 20 7946 0958' }],
  ];
  const [bCold] = await countSearches(bc, () => bitrixCounters(b), [['phone (cold)', { phone: BDEMO.ivan.phone }]]);
  const bWarm = await countSearches(bc, () => bitrixCounters(b), bCases);
  const bitrix = summary(bCold, bWarm, { query_limit_exceeded_503: b.stats.queryLimitExceeded, operation_time_limit_429: b.stats.operationTimeLimit });
  await bc.close();
  await b.close();
  return { kommo, bitrix24: bitrix };
}
