/**
 * Bulk import (issue 17): 1,000 rows into a Kommo emulator with the real limits (7 requests/s per token, 429 and
 * the 403 block beyond), 20% of the people already in the CRM with an open lead, 5% repeated within the file.
 * The import runs as import_leads does (startImport: row checks, per-person look-ups, plain batched creates of
 * 50, the journal in a memory store). Figures: the request rate reached over the rate Kommo allows (target
 * ≥ 0.8), rejections (429/403: target 0), and duplicates in the emulator's own state (target 0).
 * The people have emails: a phone nobody has costs Kommo's search several spellings (search.ts), which would
 * change the request count, not the rate.
 */
import { request } from 'undici';
import { openStore } from '../dist/store/store.js';
import { ImportDesk } from '../dist/import/jobs.js';
import { startImport } from '../dist/tools/import.js';
import { Grant } from '../dist/policy/policy.js';
import { CREATE_ONLY, kommoEmu, kommoProvider, log, round, sleep } from './lib.mjs';

const ROWS = 1000;
const KOMMO_RPS = 7;

const email = (i) => `person${i}@bench-import.example`;

/** People already in the CRM, each with an open lead, created straight in the emulator (before the clock starts). */
async function seedExisting(emu, token, ids) {
  for (let i = 0; i < ids.length; i += 50) {
    const part = ids.slice(i, i + 50);
    const post = async (path, body) => {
      const res = await request(`${emu.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const data = await res.body.json();
      if (res.statusCode !== 200) throw new Error(`seed ${path}: ${res.statusCode} ${JSON.stringify(data)}`);
      return data._embedded;
    };
    const contacts = await post(
      '/api/v4/contacts',
      part.map((n) => ({ name: `Bench Person ${n}`, custom_fields_values: [{ field_code: 'EMAIL', values: [{ value: email(n), enum_code: 'WORK' }] }] })),
    );
    await post(
      '/api/v4/leads',
      part.map((n, j) => ({ name: `Seeded ${n}`, _embedded: { contacts: [{ id: contacts.contacts[j].id, is_main: true }] } })),
    );
    await sleep(1100);
  }
}

export async function importBench() {
  const { emu, token } = await kommoEmu(); // real limits
  // Rows: 0..749 new, 750..949 already in the CRM (20%), then 50 repeats of new people (5%).
  const existing = Array.from({ length: 200 }, (_, i) => 750 + i);
  await seedExisting(emu, token, existing);
  const rows = [];
  for (let i = 0; i < 950; i++) rows.push({ name: `Imported ${i}`, contact: { name: `Bench Person ${i}`, email: email(i) } });
  for (let i = 0; i < 50; i++) rows.push({ name: `Repeat ${i}`, contact: { name: `Bench Person ${i * 7}`, email: email(i * 7).toUpperCase() } });
  // Shuffle deterministically so repeats and existing people are spread over the batches.
  let seed = 7;
  for (let i = rows.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const p = await kommoProvider(emu, token, CREATE_ONLY);
  const desk = new ImportDesk(await openStore('memory'));
  // Metadata (account, pipelines, users) first, then let the 1 s window empty.
  await p.pipelines({ grant: Grant.readOnly() });
  await sleep(1100);
  const from = emu.requests.length;
  const before = emu.stats.rateLimited;
  log(`import: ${ROWS} rows into Kommo (20% in the CRM, 5% repeated)`);
  const t0 = performance.now();
  const { id, job } = await startImport({
    provider: p,
    ctx: { grant: Grant.for('create') },
    lock: (_k, fn) => fn(),
    desk,
    rows,
    maxRows: ROWS,
    options: { if_open_lead_exists: 'skip', run_automations: true, dry_run: false },
  });
  await job;
  const seconds = (performance.now() - t0) / 1000;
  const st = await desk.status(id, 0, ROWS);
  const requests = emu.requests.length - from;
  // Duplicates: a person (by the row numbering above) holding more than one lead among the import's and the seeded
  // ones (the demo data has names of its own). "Repeat i" is person 7i: whichever of its two rows comes first makes
  // the lead, the other is "existing".
  const personOf = (name) => {
    const m = /^(Imported|Repeat|Seeded) (\d+)$/.exec(name);
    return m ? (m[1] === 'Repeat' ? Number(m[2]) * 7 : Number(m[2])) : undefined;
  };
  const perPerson = new Map();
  for (const l of emu.state.leads.values()) {
    const p = personOf(l.name);
    if (p !== undefined) perPerson.set(p, (perPerson.get(p) ?? 0) + 1);
  }
  const dupLeads = [...perPerson.values()].reduce((n, c) => n + Math.max(0, c - 1), 0);
  const emails = [...emu.state.contacts.values()].flatMap((c) =>
    (c.custom_fields_values ?? []).filter((f) => f.field_code === 'EMAIL').flatMap((f) => f.values.map((v) => String(v.value).toLowerCase())),
  );
  const dupContacts = emails.length - new Set(emails).size;
  const byPath = {};
  for (const r of emu.requests.slice(from)) byPath[`${r.method} ${r.path}`] = (byPath[`${r.method} ${r.path}`] ?? 0) + 1;
  await emu.close();
  const rate = requests / seconds;
  return {
    rows: ROWS,
    seconds: round(seconds, 1),
    requests,
    requests_by_path: byPath,
    rate_rps: round(rate, 2),
    allowed_rps: KOMMO_RPS,
    ratio: round(rate / KOMMO_RPS, 3),
    rows_per_s: round(ROWS / seconds, 1),
    counts: st.counts,
    rejected_429: emu.stats.rateLimited - before,
    blocked_403: emu.stats.blocked,
    duplicate_leads: dupLeads,
    duplicate_contacts: dupContacts,
    people_with_a_lead: perPerson.size,
  };
}
