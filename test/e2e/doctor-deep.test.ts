/**
 * `crm-mcp doctor --deep` against the emulators in each of their plausible modes: Kommo's `query` matching
 * phones by digits or only as stored, API filters applied or ignored; Bitrix24's findbycomm normalising
 * phones or comparing them exactly. Through the built binary (`--json` and text) and in-process `diagnose`.
 * Every run checks what the emulators received (reads only, within the bound) and that the output carries
 * none of the demo data's names, phones or emails. Expected phone formats are computed here with
 * libphonenumber directly, not with the project's helpers.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnose } from '../../src/commands/doctor.js';
import { deepProbe } from '../../src/commands/doctor-deep.js';
import { LeakyBucketLimiter } from '../../src/http/limiter.js';
import { startBitrixEmulator, type BitrixEmulator, type BMulti } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { runCli, tempHome } from '../helpers/cli.js';
import { connectKommo, structured, text, writesTo } from '../helpers/index.js';

/** The documented ceiling of one probe (README, `doctor --help`). */
const BOUND = 100;

/** Bitrix24 methods that only read, written out here (not taken from the project's classifier). */
const BITRIX_READ = /^(batch|profile|app\.info|scope|user\.get|crm\.settings\.mode\.get|crm\.duplicate\.findbycomm|crm\.[a-z]+(\.[a-z]+)?\.(list|get|fields))$/;

interface Finding {
  id: string;
  holds: boolean | null;
  detail: string;
  action: string;
}
interface Count {
  found: number;
  of: number;
}
interface Deep {
  requests: number;
  request_limit: number;
  sampled: Array<{ id: number | string; phone_shape: string }>;
  phone_search: { crm: Record<string, Count>; crm_mcp: Record<string, Count> };
  lists: Record<'users' | 'lead_fields' | 'contact_fields', { read: number | null; total: number | null; pages: number | null }>;
  filters: { account_flag: boolean | null; applied: boolean | null } | null;
  rate_limit: { profile: string; throttled: number };
  operating_budget: Array<{ method: string; operating_sec: number; left_sec: number }> | null;
  findings: Finding[];
}
interface Report {
  exit_code: number;
  connections: Array<{
    name: string;
    provider: string;
    account: { id: unknown; name: string | null } | null;
    checks: Array<{ check: string; status: string; detail: string }>;
    deep?: Deep | null;
  }>;
  problems: Array<{ connection: string; check: string; severity: string; message: string; fix: string }>;
}

function finding(d: Deep, id: string): Finding {
  const f = d.findings.find((x) => x.id === id);
  if (!f) throw new Error(`no finding ${id} in ${d.findings.map((x) => x.id).join(', ')}`);
  return f;
}

function deepOf(r: Report, name: string): Deep {
  const d = r.connections.find((c) => c.name === name)?.deep;
  if (!d) throw new Error(`no deep section for ${name}`);
  return d;
}

/** A stored phone, the ways its number shows (digits, national digits), for the leak check. */
function phoneForms(stored: string): string[] {
  const out = [stored, stored.replace(/\D+/g, '')];
  const p = stored.trim().startsWith('+') ? parsePhoneNumberFromString(stored) : parsePhoneNumberFromString(stored, 'RU');
  if (p) out.push(p.number, p.nationalNumber);
  return out.filter((s) => s.replace(/\D+/g, '').length >= 7 || /[a-z]/i.test(s));
}

/** Names (3+ letters), phones and emails of every Kommo contact and user. */
function kommoPersonal(k: KommoEmulator): string[] {
  const out: string[] = [];
  for (const c of k.state.contacts.values()) {
    out.push(c.name, c.first_name, c.last_name);
    for (const f of c.custom_fields_values ?? []) {
      if (f.field_code === 'PHONE') for (const v of f.values) out.push(...phoneForms(String(v.value)));
      if (f.field_code === 'EMAIL') for (const v of f.values) out.push(String(v.value));
    }
  }
  for (const u of k.state.users.values()) out.push(u.name, u.email);
  return [...new Set(out.filter((s) => s && s.trim().length >= 3))];
}

function bitrixPersonal(b: BitrixEmulator): string[] {
  const out: string[] = [];
  for (const c of b.state.contacts.values()) {
    for (const key of ['NAME', 'LAST_NAME', 'SECOND_NAME']) if (typeof c[key] === 'string') out.push(c[key] as string);
    for (const m of (c.PHONE as BMulti[] | undefined) ?? []) out.push(...phoneForms(m.VALUE));
    for (const m of (c.EMAIL as BMulti[] | undefined) ?? []) out.push(m.VALUE);
  }
  for (const u of b.state.users) for (const key of ['NAME', 'LAST_NAME', 'EMAIL'] as const) if (typeof u[key] === 'string') out.push(u[key]);
  return [...new Set(out.filter((s) => s && s.trim().length >= 3))];
}

function expectNoPersonalData(output: string, personal: string[]): void {
  expect(personal.length).toBeGreaterThan(100);
  expect(personal.filter((s) => output.includes(s))).toEqual([]);
}

/** The first stored phone of a sampled contact, from the emulator's state. */
function kommoStored(k: KommoEmulator, id: number | string): string {
  const c = k.state.contacts.get(Number(id))!;
  return String((c.custom_fields_values ?? []).find((f) => f.field_code === 'PHONE')!.values[0]!.value);
}

function bitrixStored(b: BitrixEmulator, id: number | string): string {
  return (b.state.contacts.get(Number(id))!.PHONE as BMulti[])[0]!.VALUE;
}

/** Every command the Bitrix24 emulator executed is a read. */
function expectBitrixReadsOnly(b: BitrixEmulator): void {
  const methods = Object.keys(b.stats.methodCalls);
  expect(methods).toContain('crm.duplicate.findbycomm');
  expect(methods.filter((m) => !BITRIX_READ.test(m))).toEqual([]);
}

/** Adds contact custom fields to the emulated account until it has more than one page of 50 (account setup). */
function addContactFields(k: KommoEmulator, n: number): void {
  const base = [...k.state.customFields.contacts.values()].find((f) => f.type === 'text')!;
  for (let i = 0; i < n; i++) {
    const id = 990_000 + i;
    k.state.customFields.contacts.set(id, {
      ...base,
      id,
      name: `Extra ${i}`,
      code: null,
      sort: 1000 + i,
      is_predefined: false,
      is_deletable: true,
      enums: null,
    });
  }
}

describe('crm-mcp doctor --deep, through the binary', () => {
  let home: string;
  beforeAll(() => {
    home = tempHome();
  });

  it('documents --deep in its usage text', async () => {
    const r = await runCli(['doctor', '--help'], { CRM_MCP_HOME: home });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--deep/);
    expect(r.stdout).toMatch(/read-only and in at most 100 requests/);
  });

  describe("default modes: Kommo query by digits, filters applied; Bitrix24 'core-normalized'", () => {
    let kommo: KommoEmulator;
    let bitrix: BitrixEmulator;
    let report: Report;
    let stdout: string;
    let code: number | null;
    beforeAll(async () => {
      [kommo, bitrix] = await Promise.all([
        startKommoEmulator({ behaviour: { phoneQuery: 'digits', filters: 'applied' } }),
        startBitrixEmulator({ phoneMatch: 'core-normalized' }),
      ]);
      addContactFields(kommo, 60);
      const env = { CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken(), BITRIX_WEBHOOK_BASE: bitrix.webhookUrl };
      const r = await runCli(['doctor', '--deep', '--json'], env);
      stdout = r.stdout;
      code = r.code;
      report = JSON.parse(r.stdout) as Report;
    }, 120_000);
    afterAll(async () => {
      await Promise.all([kommo?.close(), bitrix?.close()]);
    });

    it('finds every assumption holding and exits 0', () => {
      expect(report.problems).toEqual([]);
      expect(code).toBe(0);
      for (const c of report.connections) expect(c.checks.find((x) => x.check === 'deep probe')).toMatchObject({ status: 'ok' });
    });

    it('Kommo: query finds phones by digits; the duplicate check finds every format; filters applied', () => {
      const d = deepOf(report, 'kommo');
      expect(d.sampled).toHaveLength(3);
      for (const s of d.sampled) expect(s.phone_shape).toBe(kommoStored(kommo, s.id).replace(/\d/g, '#'));
      expect(d.phone_search.crm.digits).toEqual({ found: 3, of: 3 });
      expect(finding(d, 'phone.crm_search.digits').holds).toBe(true);
      for (const f of ['as_stored', 'e164', 'national']) expect(d.phone_search.crm_mcp[f]).toEqual({ found: 3, of: 3 });
      expect(d.filters).toEqual({ account_flag: true, applied: true });
      expect(finding(d, 'filters.kommo').holds).toBe(true);
    });

    it('Kommo: reads every custom field through pages of 50 and says how many pages it took', () => {
      const d = deepOf(report, 'kommo');
      const n = kommo.state.customFields.contacts.size;
      expect(n).toBeGreaterThan(50);
      expect(d.lists.contact_fields).toEqual({ read: n, total: n, pages: Math.ceil(n / 50) });
      expect(d.lists.lead_fields).toEqual({ read: kommo.state.customFields.leads.size, total: kommo.state.customFields.leads.size, pages: 1 });
      expect(d.lists.users).toMatchObject({ read: kommo.state.users.size, total: kommo.state.users.size });
      // The pages the report counts are the requests the emulator received for the list (plus the probe's own count read).
      expect(kommo.requests.filter((r) => r.path === '/api/v4/contacts/custom_fields')).toHaveLength(Math.ceil(n / 50) + 1);
    });

    it('Bitrix24: findbycomm normalises; every user beyond the first 50 is read; the operating budget is reported', () => {
      const d = deepOf(report, 'bitrix24');
      expect(finding(d, 'phone.crm_search.normalised').holds).toBe(true);
      for (const f of ['as_stored', 'e164', 'national']) expect(d.phone_search.crm_mcp[f]).toEqual({ found: 3, of: 3 });
      expect(bitrix.state.users.length).toBeGreaterThan(50);
      expect(d.lists.users).toMatchObject({ read: bitrix.state.users.length, total: bitrix.state.users.length });
      expect(finding(d, 'paging.users').holds).toBe(true);
      expect(finding(d, 'budget.reported').holds).toBe(true);
      expect(d.operating_budget!.map((b) => b.method)).toContain('crm.duplicate.findbycomm');
      for (const b of d.operating_budget!) expect(b.left_sec).toBeCloseTo(480 - b.operating_sec, 2);
      expect(finding(d, 'budget.headroom').holds).toBe(true);
    });

    it('sent only reads, within the bound, and counted them as the emulators did', () => {
      expect(writesTo(kommo.requests)).toEqual([]);
      expect(kommo.requests.every((r) => r.method === 'GET')).toBe(true);
      expectBitrixReadsOnly(bitrix);
      const k = deepOf(report, 'kommo');
      const b = deepOf(report, 'bitrix24');
      expect(k.request_limit).toBe(BOUND);
      expect(k.requests).toBeLessThanOrEqual(BOUND);
      expect(b.requests).toBeLessThanOrEqual(BOUND);
      // The normal checks send one Kommo request (/account), and profile + app.info (+ scope) to Bitrix24.
      expect(kommo.requests.length).toBe(k.requests + 1);
      expect(bitrix.requests.length - b.requests).toBeGreaterThanOrEqual(2);
      expect(bitrix.requests.length - b.requests).toBeLessThanOrEqual(3);
    });

    it('prints no name, phone or email of the demo data (nor the account or user name)', () => {
      expectNoPersonalData(stdout, [...kommoPersonal(kommo), ...bitrixPersonal(bitrix), kommo.state.account.name]);
      for (const c of report.connections) expect(c.account?.name ?? null).toBeNull();
    });
  });

  describe("strict modes: Kommo query as stored, filters ignored; Bitrix24 'exact'", () => {
    let kommo: KommoEmulator;
    let bitrix: BitrixEmulator;
    let report: Report;
    let json: string;
    let textOut: string;
    let code: number | null;
    beforeAll(async () => {
      [kommo, bitrix] = await Promise.all([
        startKommoEmulator({ behaviour: { phoneQuery: 'as-stored', filters: 'ignored' } }),
        startBitrixEmulator({ phoneMatch: 'exact' }),
      ]);
      const env = { CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken(), BITRIX_WEBHOOK_BASE: bitrix.webhookUrl };
      const r = await runCli(['doctor', '--deep', '--json'], env);
      json = r.stdout;
      code = r.code;
      report = JSON.parse(r.stdout) as Report;
      // A fresh token: Kommo counts 7 requests/s per token, and the run before has just spent this second's.
      textOut = (await runCli(['doctor', '--deep'], { ...env, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken() })).stdout;
    }, 180_000);
    afterAll(async () => {
      await Promise.all([kommo?.close(), bitrix?.close()]);
    });

    it('warns (exit 3) for each assumption that does not hold, with what crm-mcp does as the fix', () => {
      expect(code).toBe(3);
      expect(report.exit_code).toBe(3);
      expect(report.problems.filter((p) => p.severity === 'error')).toEqual([]);
      const byCheck = new Map(report.problems.map((p) => [`${p.connection} ${p.check}`, p]));
      expect(byCheck.get('kommo deep: phone.crm_search.digits')?.fix).toMatch(/345-67-89/);
      expect(byCheck.get('kommo deep: filters.kommo')?.fix).toMatch(/list_leads filters .* are not applied/);
      expect(byCheck.get('bitrix24 deep: phone.crm_search.normalised')?.fix).toMatch(/common spellings/);
      // crm-mcp's own duplicate check holds in every mode: no warning for it.
      expect([...byCheck.keys()].filter((k) => k.includes('duplicate_check'))).toEqual([]);
    });

    it("Kommo 'as-stored': query by digits finds only the unformatted numbers, crm-mcp's duplicate check finds all", () => {
      const d = deepOf(report, 'kommo');
      expect(d.sampled).toHaveLength(3);
      const unformatted = d.sampled.filter((s) => /^\+?\d+$/.test(kommoStored(kommo, s.id))).length;
      expect(unformatted).toBeLessThan(3); // the demo's newest contacts include formatted numbers
      expect(d.phone_search.crm.digits).toEqual({ found: unformatted, of: 3 });
      expect(finding(d, 'phone.crm_search.digits').holds).toBe(false);
      for (const f of ['as_stored', 'e164', 'national']) expect(d.phone_search.crm_mcp[f]).toEqual({ found: 3, of: 3 });
    });

    it("Kommo filters 'ignored': the flag says false and a filter by id returns other contacts", () => {
      const d = deepOf(report, 'kommo');
      expect(d.filters).toEqual({ account_flag: false, applied: false });
      expect(finding(d, 'filters.kommo').holds).toBe(false);
    });

    it("Bitrix24 'exact': the CRM finds only the stored spelling, crm-mcp's duplicate check finds every format", () => {
      const d = deepOf(report, 'bitrix24');
      const stored = d.sampled.map((s) => bitrixStored(bitrix, s.id));
      const parsed = stored.map((s) => (s.startsWith('+') ? parsePhoneNumberFromString(s) : parsePhoneNumberFromString(s, 'RU'))!);
      expect(d.phone_search.crm.as_stored).toEqual({ found: 3, of: 3 });
      expect(d.phone_search.crm.e164).toEqual({ found: parsed.filter((p, i) => p.number === stored[i]).length, of: 3 });
      expect(d.phone_search.crm.national).toEqual({ found: parsed.filter((p, i) => p.formatNational() === stored[i]).length, of: 3 });
      expect(d.phone_search.crm.national!.found).toBeLessThan(3);
      expect(finding(d, 'phone.crm_search.normalised').holds).toBe(false);
      for (const f of ['as_stored', 'e164', 'national']) expect(d.phone_search.crm_mcp[f]).toEqual({ found: 3, of: 3 });
    });

    it('sent only reads, within the bound', () => {
      expect(kommo.requests.every((r) => r.method === 'GET')).toBe(true);
      expectBitrixReadsOnly(bitrix);
      for (const name of ['kommo', 'bitrix24']) expect(deepOf(report, name).requests).toBeLessThanOrEqual(BOUND);
      // Two runs (JSON, then text), each one /account request besides the probe.
      expect(kommo.requests.length).toBeLessThanOrEqual(2 * (BOUND + 1));
    });

    it('prints the findings as text too, and neither output carries personal data', () => {
      expect(textOut).toMatch(/deep probe: \d+ read requests \(limit 100\)/);
      expect(textOut).toMatch(/\[NO\] Kommo applies `filter\[\.\.\.\]` parameters/);
      expect(textOut).toMatch(/→ crm-mcp also searches the part after the area code/);
      expect(textOut).toMatch(/\[ok\] crm-mcp's duplicate check finds an existing contact by a phone typed in national format/);
      expect(textOut).toMatch(/WARN\s+deep probe/);
      const personal = [...kommoPersonal(kommo), ...bitrixPersonal(bitrix), kommo.state.account.name];
      expectNoPersonalData(json, personal);
      expectNoPersonalData(textOut, personal);
    });
  });
});

describe('crm-mcp doctor --deep, in-process', () => {
  it('stops sending at its request ceiling', async () => {
    const kommo = await startKommoEmulator();
    try {
      const c = await connectKommo(kommo);
      kommo.resetLog();
      const d = await deepProbe(c.provider, { maxRequests: 8 });
      expect(kommo.requests.length).toBeLessThanOrEqual(8);
      expect(d.requests).toBe(kommo.requests.length);
      expect(finding(d as unknown as Deep, 'probe.budget').holds).toBe(false);
      await c.close();
    } finally {
      await kommo.close();
    }
  });

  it('reports a throttled request (429) as a rate-limit finding', async () => {
    const kommo = await startKommoEmulator();
    try {
      kommo.injectFault(
        { kind: 'status', status: 429, body: '{"title":"Too Many Requests","status":429}', contentType: 'application/problem+json' },
        { times: 1, match: { path: '/api/v4/contacts' } },
      );
      const r = (await diagnose({ CRM_MCP_STORE: 'memory', KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: kommo.createLongLivedToken() }, undefined, {
        deep: true,
      })) as unknown as Report;
      const d = deepOf(r, 'kommo');
      expect(kommo.requests.filter((x) => x.status === 429)).toHaveLength(1);
      expect(d.rate_limit.throttled).toBe(1);
      expect(finding(d, 'rate_limit').holds).toBe(false);
      expect(r.problems.find((p) => p.check === 'deep: rate_limit')?.fix).toMatch(/paces requests at 7\/s/);
      expect(r.exit_code).toBe(3);
    } finally {
      await kommo.close();
    }
  });

  it('Bitrix24: a method past half of its operating budget is a warning naming it', async () => {
    const bitrix = await startBitrixEmulator();
    try {
      // 10 simulated seconds per findbycomm: about 27 calls in the probe, past 240 s and short of 480 s.
      bitrix.setOperatingCost('crm.duplicate.findbycomm', 10);
      const r = (await diagnose({ CRM_MCP_STORE: 'memory', BITRIX_WEBHOOK_BASE: bitrix.webhookUrl }, undefined, { deep: true })) as unknown as Report;
      const d = deepOf(r, 'bitrix24');
      const calls = bitrix.stats.methodCalls['crm.duplicate.findbycomm'] ?? 0;
      expect(calls * 10).toBeGreaterThanOrEqual(240);
      expect(d.operating_budget![0]).toMatchObject({ method: 'crm.duplicate.findbycomm' });
      expect(d.operating_budget![0]!.operating_sec).toBeGreaterThanOrEqual(240);
      const f = finding(d, 'budget.headroom');
      expect(f.holds).toBe(false);
      expect(f.detail).toMatch(/crm\.duplicate\.findbycomm/);
      expect(r.problems.find((p) => p.check === 'deep: budget.headroom')?.fix).toMatch(/reads no further ahead than needed on crm\.duplicate\.findbycomm/);
    } finally {
      await bitrix.close();
    }
  });

  it('skips the probe for a connection it cannot reach (and keeps its store under the CRM_MCP_HOME given)', async () => {
    const kommo = await startKommoEmulator();
    const other = await startKommoEmulator();
    const home = tempHome();
    try {
      const r = (await diagnose({ CRM_MCP_HOME: home, KOMMO_BASE_URL: kommo.url, KOMMO_ACCESS_TOKEN: other.createLongLivedToken() }, undefined, {
        deep: true,
      })) as unknown as Report & { store: string };
      expect(r.store).toBe(`file ${home}/store.json`);
      expect(r.connections[0]!.deep).toBeNull();
      expect(r.connections[0]!.checks.find((c) => c.check === 'deep probe')).toMatchObject({ status: 'skipped' });
      expect(kommo.requests).toHaveLength(1);
    } finally {
      await Promise.all([kommo.close(), other.close()]);
    }
  });
});

/**
 * crm-mcp's duplicate check on Kommo under each way `query` may match phones: every phone of every demo
 * contact, as stored, in E.164 and in Russian national format, through search_lead_by_contact.
 */
const unlimited = () => new LeakyBucketLimiter(1_000_000, 1_000_000);

function inputs(stored: string): string[] {
  const p = stored.trim().startsWith('+') ? parsePhoneNumberFromString(stored) : parsePhoneNumberFromString(stored, 'RU');
  if (!p || !p.isValid()) return [stored];
  const n = p.nationalNumber;
  return p.country === 'RU' ? [stored, p.number, `8 ${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6, 8)} ${n.slice(8)}`] : [stored, p.number];
}

for (const phoneQuery of ['digits', 'as-stored'] as const) {
  describe(`Kommo duplicate check, query matching '${phoneQuery}', filters ignored`, () => {
    let kommo: KommoEmulator;
    let c: Awaited<ReturnType<typeof connectKommo>>;
    beforeAll(async () => {
      kommo = await startKommoEmulator({ rateLimit: false, behaviour: { phoneQuery, filters: 'ignored' } });
      c = await connectKommo(kommo, { limiter: unlimited() });
    });
    afterAll(async () => {
      await c?.close();
      await kommo?.close();
    });

    it('finds the contact for every stored phone in every format, with only its own leads', async () => {
      const missed: string[] = [];
      let n = 0;
      for (const rec of kommo.state.contacts.values()) {
        const phones = (rec.custom_fields_values ?? []).find((f) => f.field_code === 'PHONE')?.values ?? [];
        const own = [...kommo.state.leads.values()].filter((l) => l._embedded.contacts.some((x) => x.id === rec.id)).map((l) => l.id);
        for (const v of phones) {
          for (const input of inputs(String(v.value))) {
            n += 1;
            const res = await c.call('search_lead_by_contact', { phone: input });
            if (res.isError) {
              missed.push(`${input} (stored ${String(v.value)}): ${text(res)}`);
              continue;
            }
            const out = structured<{ contacts: Array<{ id: number }>; leads: Array<{ id: number }> }>(res);
            if (!out.contacts.some((x) => x.id === rec.id)) missed.push(`${input} (stored ${String(v.value)}) → contact ${rec.id} not found`);
            // With filters ignored the leads come back unfiltered: only the found contacts' own may be kept.
            const allowed = new Set(
              out.contacts.flatMap((x) => [...kommo.state.leads.values()].filter((l) => l._embedded.contacts.some((y) => y.id === x.id)).map((l) => l.id)),
            );
            const foreign = out.leads.filter((l) => !allowed.has(l.id));
            if (foreign.length) missed.push(`${input}: ${foreign.length} leads of other contacts`);
            if (own.some((id) => !out.leads.some((l) => l.id === id)) && out.contacts.some((x) => x.id === rec.id))
              missed.push(`${input}: contact ${rec.id}'s leads missing`);
          }
        }
      }
      expect(n).toBeGreaterThan(300);
      expect(missed).toEqual([]);
      expect(writesTo(kommo.requests)).toEqual([]);
    }, 240_000);
  });
}
