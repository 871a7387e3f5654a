/**
 * CRM_CONFIRM_WRITES through the built binary over stdio, against a Kommo emulator in this process (so the
 * test sees what it received), on both protocol eras, and `crm-mcp approve` / `crm-mcp decline` spawned
 * against the same file store: a client that cannot ask gets `approval_required`, the terminal approves, the
 * repeat runs once and a third is refused; a declined write never runs; a client that declares elicitation
 * is asked over the wire (elicitation/create on 2025-11-25, input_required on 2026-07-28). Run `npm run build` first.
 */
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { baseEnv, CLI, runCli, tempHome } from '../helpers/cli.js';
import { errorOf, startKommo, structured, writesTo } from '../helpers/index.js';

/** What one create_lead for a new person sends to Kommo, written out by hand. */
const ONE_LEAD = ['POST /api/v4/contacts', 'POST /api/v4/leads'];

let emu: KommoEmulator;
let env: Record<string, string>;
let auditFile: string;
let seq = 0;

const newLead = () => {
  seq += 1;
  return { name: `CLI approval ${seq}`, contact: { first_name: `Cli${seq}`, email: `cli-approval-${seq}-${Date.now()}@example.org` } };
};
const sent = () => writesTo(emu.requests).map((q) => `${q.method} ${q.path}`);

async function connect(o: {
  modern: boolean;
  accept?: boolean;
}): Promise<{ call: (a: Record<string, unknown>) => Promise<CallToolResult>; asked: unknown[]; close: () => Promise<void> }> {
  const asked: unknown[] = [];
  const c = new Client(
    { name: 'cli-test', version: '1' },
    {
      ...(o.accept !== undefined ? { capabilities: { elicitation: { form: {} } } } : {}),
      ...(o.modern ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}),
    },
  );
  if (o.accept !== undefined) {
    c.setRequestHandler('elicitation/create', (req) => {
      asked.push(req.params);
      return o.accept ? { action: 'accept', content: { approve: true } } : { action: 'decline' };
    });
  }
  await c.connect(new StdioClientTransport({ command: process.execPath, args: [CLI], env, stderr: 'pipe' }));
  return { call: (args) => c.callTool({ name: 'create_lead', arguments: args }) as Promise<CallToolResult>, asked, close: () => c.close() };
}

const idOf = (r: CallToolResult) => /approval_id "(apr_[^"]+)"/.exec(errorOf(r).message)![1]!;

beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  const home = tempHome();
  auditFile = join(home, 'audit.log');
  env = {
    ...baseEnv(),
    CRM_MCP_HOME: home,
    CRM_MCP_STORE: join(home, 'store.json'),
    CRM_MCP_AUDIT_LOG: auditFile,
    CRM_ALLOW_WRITES: 'true',
    CRM_CONFIRM_WRITES: 'true',
    KOMMO_BASE_URL: emu.url,
    KOMMO_ACCESS_TOKEN: emu.createLongLivedToken(),
  };
});

afterAll(async () => {
  await emu.close();
});

beforeEach(() => emu.resetLog());

describe('out of band over stdio: crm-mcp approve / decline', () => {
  it.each([
    ['2026-07-28', true],
    ['2025-11-25', false],
  ])(
    '%s, a client without elicitation: approval_required → `crm-mcp approve <id>` → the repeat runs once → a third is refused',
    { timeout: 60_000 },
    async (_era, modern) => {
      const s = await connect({ modern });
      const args = newLead();
      const first = await s.call(args);
      expect(errorOf(first).code).toBe('approval_required');
      expect(sent()).toEqual([]);
      const id = idOf(first);

      const list = await runCli(['approve'], env);
      expect(list.code).toBe(0);
      expect(list.stdout).toContain(id);
      const approved = await runCli(['approve', id], env);
      expect(approved.code, approved.stderr).toBe(0);
      // The summary and the exact requests are printed first.
      expect(approved.stdout).toContain('create_lead');
      expect(approved.stdout).toMatch(/POST \S+\/api\/v4\/contacts/);
      expect(approved.stdout).toContain('Approved');
      expect(sent()).toEqual([]);

      expect(structured<{ created: boolean }>(await s.call({ ...args, approval_id: id })).created).toBe(true);
      expect(sent()).toEqual(ONE_LEAD);
      expect(errorOf(await s.call({ ...args, approval_id: id })).code).toBe('approval_used');
      expect(sent()).toEqual(ONE_LEAD);
      // Approving again from the terminal does not open it again.
      expect((await runCli(['approve', id], env)).code).toBe(1);
      await s.close();

      const lines = readFileSync(auditFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { outcome: string; approval?: { id: string; via: string; by: string; decision: string; at: string } });
      const done = lines.find((l) => l.outcome === 'ok' && l.approval && id.includes(l.approval.id));
      expect(done?.approval).toMatchObject({ decision: 'approved', via: 'terminal', by: expect.stringContaining('@') });
      expect(Date.parse(done!.approval!.at)).not.toBeNaN();
    },
  );

  it('`crm-mcp decline <id>`: the repeat is refused and nothing is sent', { timeout: 60_000 }, async () => {
    const s = await connect({ modern: true });
    const args = newLead();
    const id = idOf(await s.call(args));
    const declined = await runCli(['decline', id], env);
    expect(declined.code, declined.stderr).toBe(0);
    expect(declined.stdout).toContain('Declined');
    expect(errorOf(await s.call({ ...args, approval_id: id })).code).toBe('approval_declined');
    expect(sent()).toEqual([]);
    expect((await runCli(['approve', 'apr_AAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB'], env)).code).toBe(1);
    await s.close();
  });
});

describe('asked through the client over stdio', () => {
  it.each([
    ['2025-11-25 (elicitation/create)', false, true],
    ['2026-07-28 (input_required)', true, true],
    ['2025-11-25, declined', false, false],
    ['2026-07-28, declined', true, false],
  ])('%s', { timeout: 60_000 }, async (_label, modern, accept) => {
    const s = await connect({ modern, accept });
    const r = await s.call(newLead());
    expect(s.asked).toHaveLength(1);
    if (accept) {
      expect(structured<{ created: boolean }>(r).created).toBe(true);
      expect(sent()).toEqual(ONE_LEAD);
    } else {
      expect(errorOf(r).code).toBe('approval_declined');
      expect(sent()).toEqual([]);
    }
    await s.close();
  });
});
