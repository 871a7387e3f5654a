/**
 * Bulk import across processes (issue 17), on the built binary (`npm run build` first) against a Kommo emulator
 * in this process: the server is killed (SIGKILL) while its first batch is in flight (processed by the CRM, the
 * answer not yet back), restarted on the same file store, and the import is resumed by id: the emulator holds
 * each lead and each contact exactly once. And `crm-mcp import FILE`: plain progress lines off a terminal, exit
 * 0 when every row is created or existing, 1 when some failed, and --resume finishing an import.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { CLI, baseEnv, runCli, tempHome } from '../helpers/cli.js';

let emu: KommoEmulator | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c().catch(() => undefined);
  await emu?.close();
  emu = undefined;
});

function envFor(e: KommoEmulator, home: string): Record<string, string> {
  return {
    ...baseEnv(),
    CRM_MCP_HOME: home,
    KOMMO_BASE_URL: e.url,
    KOMMO_ACCESS_TOKEN: e.createLongLivedToken(),
    CRM_ALLOW_WRITES: 'true',
    CRM_TOOLSETS: 'core,import',
    CRM_LOG_LEVEL: 'warn',
  };
}

async function server(e: KommoEmulator, home: string) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI], env: envFor(e, home), stderr: 'pipe' });
  const client = new Client({ name: 'import-e2e', version: '0' });
  await client.connect(transport);
  closers.push(() => client.close());
  return {
    pid: transport.pid!,
    call: (name: string, args: Record<string, unknown> = {}) =>
      client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 }) as Promise<CallToolResult>,
  };
}

const json = <T>(r: CallToolResult): T => {
  if (r.isError) throw new Error(JSON.stringify(r.content));
  return r.structuredContent as T;
};

/** People with an email (one look-up each: a phone nobody has costs Kommo several spellings). */
const people = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({
    name: `${tag} ${i + 1}`,
    contact: { name: `${tag} Person ${i + 1}`, email: `${tag.toLowerCase()}${i + 1}@import.example` },
  }));

function count(e: KommoEmulator, prefix: string) {
  return {
    leads: [...e.state.leads.values()].filter((l) => l.name.startsWith(`${prefix} `)).map((l) => l.name),
    contacts: [...e.state.contacts.values()].filter((c) => (c.name ?? '').startsWith(`${prefix} Person `)).length,
  };
}

describe('import_leads survives a crash', () => {
  it('SIGKILL after the first batch was sent, restart, resume: each lead and contact exactly once', async () => {
    emu = await startKommoEmulator({ rateLimit: false });
    const home = tempHome();
    // The first lead batch is processed, and its answer held back long enough to kill the server meanwhile.
    // With if_open_lead_exists "create" the dedupe alone would not save the resume: only the journal's pending
    // batch, looked up before anything is sent again, keeps the 50 leads from being made twice.
    emu.injectFault({ kind: 'slow', ms: 30_000 }, { match: { method: 'POST', path: /^\/api\/v4\/leads$/ } });
    const a = await server(emu, home);
    const started = json<{ id: string; state: string }>(await a.call('import_leads', { rows: people(60, 'Kill'), if_open_lead_exists: 'create' }));
    expect(started.state).toBe('running');
    const e = emu;
    // Wait until the batch is in the emulator's state, not only marked processed (on a loaded machine the two are
    // observed a moment apart).
    const sent = () => e.requests.some((q) => q.method === 'POST' && q.path === '/api/v4/leads' && q.processed) && count(e, 'Kill').leads.length === 50;
    for (let i = 0; i < 1200 && !sent(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(count(emu, 'Kill').leads).toHaveLength(50);
    process.kill(a.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));

    const b = await server(emu, home);
    const st = json<{ state: string }>(await b.call('get_import_status', { id: started.id }));
    expect(st.state).toBe('interrupted');
    let done = json<{ state: string; counts: Record<string, number> }>(await b.call('import_leads', { resume: started.id }));
    for (let i = 0; i < 200 && done.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      done = json(await b.call('get_import_status', { id: started.id }));
    }
    expect(done.state).toBe('done');
    expect(done.counts).toEqual({ created: 60 });
    const held = count(emu, 'Kill');
    expect(held.leads).toHaveLength(60);
    expect(new Set(held.leads).size).toBe(60);
    expect(held.contacts).toBe(60);
  }, 150_000);
});

describe('crm-mcp import FILE', () => {
  it('a JSON file: plain progress lines, exit 1 with a bad row named, nothing of it sent; a re-run of the same people is all existing, exit 0', async () => {
    emu = await startKommoEmulator({ rateLimit: false });
    const home = tempHome();
    const file = join(home, 'leads.json');
    writeFileSync(file, JSON.stringify([...people(3, 'Cli'), { contact: { name: 'Bad', email: 'nope' } }]));
    const r = await runCli(['import', file], envFor(emu, home));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^import imp_[0-9a-f]{16}/m);
    expect(r.stdout).toMatch(/^progress 4\/4$/m);
    expect(r.stdout).toMatch(/3 created, 0 existing, 0 would be created, 1 errors \(of 4\)/);
    expect(r.stdout).toMatch(/^row 4: error: .*email/m);
    expect(count(emu, 'Cli').leads).toHaveLength(3);
    expect(emu.requests.some((q) => q.body.includes('nope'))).toBe(false);

    writeFileSync(file, JSON.stringify(people(3, 'Cli')));
    const again = await runCli(['import', file], envFor(emu, home));
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 created, 3 existing/);
    expect(count(emu, 'Cli').leads).toHaveLength(3);
  }, 60_000);

  it('refuses without CRM_ALLOW_WRITES, sending nothing', async () => {
    emu = await startKommoEmulator({ rateLimit: false });
    const home = tempHome();
    const file = join(home, 'leads.json');
    writeFileSync(file, JSON.stringify(people(1, 'Ro')));
    const r = await runCli(['import', file], { ...envFor(emu, home), CRM_ALLOW_WRITES: 'false' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/refused/);
    expect(emu.requests).toHaveLength(0);
  });

  it('a CSV file: header row, BOM, quoted cells with commas and a line break; a bad row and a broken record named by their line, the rest sent', async () => {
    emu = await startKommoEmulator({ rateLimit: false });
    const home = tempHome();
    const file = join(home, 'leads.csv');
    const csv = [
      '\uFEFFName,Contact_Name,Phone,Email,Price,Company', // line 1: BOM, header in any case
      '"Csv, one",Csv Person 1,+7 903 500-00-01,,100,', // 2
      '"Csv two: first line', // 3: a cell over two lines
      'second line",Csv Person 2,,csv2@example.com,,"Csv Widgets, Ltd"', // 4
      '', // 5: empty, skipped
      'Csv three,Csv Person 3,,not-an-email,,', // 6: a bad email, that row's error
      'Csv four,Csv Person 4,,csv4@example.com', // 7: a cell short
      'Csv five,Csv Person 5,,csv5@example.com,7,', // 8
    ].join('\r\n');
    writeFileSync(file, csv);
    const r = await runCli(['import', file], envFor(emu, home));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^line 7: error: .*(not imported)/m);
    expect(r.stdout).toMatch(/^row 3 \(line 6\): error: .*email/m);
    expect(r.stdout).toMatch(/3 created, 0 existing, 0 would be created, 1 errors \(of 4\)/);
    const made = [...emu.state.leads.values()].filter((l) => l.name.startsWith('Csv'));
    expect(made.map((l) => [l.name, l.price]).sort()).toEqual([
      ['Csv five', 7],
      ['Csv two: first line\nsecond line', 0],
      ['Csv, one', 100],
    ]);
    expect([...emu.state.companies.values()].filter((c) => c.name === 'Csv Widgets, Ltd')).toHaveLength(1);
    expect(emu.requests.some((q) => q.body.includes('not-an-email') || q.body.includes('csv4@'))).toBe(false);
  });

  it('a CSV company with company_email is made once with it; --no-automations is refused on Kommo with nothing sent', async () => {
    emu = await startKommoEmulator({ rateLimit: false });
    const home = tempHome();
    const file = join(home, 'co.csv');
    writeFileSync(
      file,
      'name,contact_name,email,company,company_email\nCo one,Co P1,cop1@example.com,Csvco Mail,hi@csvco.example\nCo two,Co P2,cop2@example.com,Csvco Mail,hi@csvco.example\n',
    );
    const refused = await runCli(['import', file, '--no-automations'], envFor(emu, home));
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/--no-automations: .*nothing was sent/);
    expect(emu.requests).toHaveLength(0);
    const r = await runCli(['import', file], envFor(emu, home));
    expect(r.code).toBe(0);
    const cos = [...emu.state.companies.values()].filter((c) => c.name === 'Csvco Mail');
    expect(cos).toHaveLength(1);
    expect(JSON.stringify(cos[0]!.custom_fields_values)).toContain('hi@csvco.example');
  });
});
