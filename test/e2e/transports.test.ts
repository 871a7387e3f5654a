import { request as httpRequest } from 'node:http';
/** The built binary, driven by the SDK's real Client over stdio and over Streamable HTTP (sandbox mode). */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const baseEnv = () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('CRM_') && !k.startsWith('KOMMO_') && !k.startsWith('AMOCRM_') && !k.startsWith('BITRIX')) env[k] = v;
  return env;
};

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...baseEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end();
  });
}

describe('stdio', () => {
  it('serves the sandbox to a real client, logs only to stderr, and leaks no token', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, '--sandbox'],
      env: { ...baseEnv(), CRM_LOG_LEVEL: 'debug', CRM_ALLOW_WRITES: 'true' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (d) => (stderr += String(d)));
    const client = new Client({ name: 'stdio-test', version: '0' });
    await client.connect(transport);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['get_pipelines', 'search_lead_by_contact', 'create_lead']));
    expect(names).not.toContain('update_lead');
    const r = (await client.callTool({ name: 'search_lead_by_contact', arguments: { crm: 'kommo', phone: '+7 912 345-67-89' } })) as CallToolResult;
    expect(r.isError).toBeFalsy();
    expect((r.structuredContent as { found: boolean }).found).toBe(true);
    const created = (await client.callTool({
      name: 'create_lead',
      arguments: { crm: 'kommo', name: 'From stdio', contact: { first_name: 'Stdio', email: 'stdio@example.org' } },
    })) as CallToolResult;
    expect((created.structuredContent as { created: boolean }).created).toBe(true);
    await client.close();
    expect(stderr).toMatch(/crm request/); // debug logs every CRM request, on stderr
    expect(stderr).not.toMatch(/Bearer\s+eyJ/);
    expect(stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./);
  });

  it.each([
    [{ CRM_ALLOW_WRITES: 'yes please' }, /CRM_ALLOW_WRITES/],
    [{ CRM_SAFE_MODE: 'perhaps' }, /CRM_SAFE_MODE/],
    [{ KOMMO_SUBDOMAIN: 'acme' }, /KOMMO_ACCESS_TOKEN/],
    [{}, /No CRM configured/],
  ])('a bad configuration %o stops the server with a clear error', async (env, message) => {
    const r = await run([], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});

describe('Streamable HTTP', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGTERM');
  });

  it('serves the sandbox statelessly; bad Host and GET are refused', async () => {
    child = spawn(process.execPath, [CLI, '--sandbox', '--http', '--port', '0'], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (d) => {
        out += String(d);
        const m = /(http:\/\/127\.0\.0\.1:\d+\/mcp)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child!.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
    const client = new Client({ name: 'http-test', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(url)));
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('get_pipelines');
    expect(tools).not.toContain('create_lead');
    const missing = (await client.callTool({ name: 'get_pipelines', arguments: {} })) as CallToolResult;
    expect(missing.isError).toBe(true); // two sandbox accounts: the crm argument is required
    for (const crm of ['kommo', 'bitrix24']) {
      const r = (await client.callTool({ name: 'get_pipelines', arguments: { crm } })) as CallToolResult;
      expect(r.isError, crm).toBeFalsy();
      expect((r.structuredContent as { pipelines: unknown[] }).pipelines.length, crm).toBeGreaterThan(0);
    }
    await client.close();

    // fetch() may not set Host, so a DNS-rebinding request is made with node:http.
    const rebindingStatus = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        url,
        { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    expect(rebindingStatus).toBe(403);
    expect((await fetch(url)).status).toBe(405);
    expect((await fetch(url.replace('/mcp', '/healthz'))).status).toBe(200);
  });
});

describe('every tool on both sandbox CRMs over stdio', () => {
  // Ids from the sandboxes' demo data (src/sandbox/*/demo-data.ts).
  const ids = {
    kommo: { lead: 1000001, contact: 2000001, company: 3000001, deleteLead: 0, deleteContact: 0 },
    bitrix24: { lead: 1, contact: 1, company: 1, deleteLead: 7, deleteContact: 40 },
  } as const;
  /** Ids an earlier call of the same run returned (an open task from list_tasks, an import's job id). */
  const seen: Record<string, Record<string, unknown>> = { kommo: {}, bitrix24: {} };
  const argsFor = (tool: string, crm: 'kommo' | 'bitrix24'): Record<string, unknown> => {
    const id = ids[crm];
    const got = seen[crm]!;
    const email = `matrix-${crm}@example.org`;
    const table: Record<string, Record<string, unknown>> = {
      get_account: {},
      get_pipelines: {},
      search_lead_by_contact: { phone: '+7 912 345-67-89' },
      list_leads: { limit: 5 },
      get_lead: { id: id.lead },
      list_contacts: { limit: 5 },
      get_contact: { id: id.contact },
      list_companies: { limit: 5 },
      get_company: { id: id.company },
      get_custom_fields: { entity: 'leads' },
      list_users: {},
      list_tags: { entity: 'leads' },
      get_audit_log: { limit: 5 },
      create_lead: { name: `Matrix ${crm}`, contact: { first_name: 'Matrix', email } },
      create_contact: { first_name: 'Matrix', last_name: 'Contact', email: `contact-${email}` },
      add_note: { entity: 'lead', entity_id: id.lead, text: 'Called back' },
      create_task: { text: 'Follow up', complete_till: '2030-01-01T10:00:00Z', entity: 'lead', entity_id: id.lead },
      update_lead: { id: id.lead, name: 'Renamed by matrix' },
      update_contact: { id: id.contact, phones_to_add: ['+44 20 7946 0999'] },
      kommo_request: { method: 'GET', path: '/api/v4/account' },
      bitrix_call: { method: 'crm.deal.list', params: { select: ['ID'], start: -1 } },
      delete_lead: { id: id.deleteLead },
      delete_contact: { id: id.deleteContact },
      move_lead: { id: id.lead, won: true },
      list_notes: { entity: 'lead', entity_id: id.lead },
      list_tasks: { status: 'open', limit: 5 },
      complete_task: { id: got.task, ...(crm === 'kommo' ? { result_text: 'Done by the matrix' } : {}) },
      create_company: { name: `Matrix Co ${crm}`, email: `co-${email}` },
      update_company: { id: id.company, name: 'Renamed company' },
      link_contact_to_company: { contact_id: id.contact, company_id: id.company, replace_existing: true },
      log_call: { phone: '+7 912 345-67-89', direction: 'in', duration_s: 42, status: 'answered', started_at: '2026-12-01T10:00:00Z' },
      list_incoming_leads: {},
      accept_incoming_lead: { uid: 'demo0sip0000000000000000000000000000001' },
      decline_incoming_lead: { uid: 'demo0forms00000000000000000000000000002' },
      import_leads: { rows: [{ name: `Imported ${crm}`, contact: { first_name: 'Imported', email: `import-${email}` } }] },
      get_import_status: { id: got.import },
      list_changes: {},
      get_record_history: { entity: 'lead', id: id.lead },
    };
    const a = table[tool];
    if (!a) throw new Error(`no sample arguments for ${tool}: add them to this test`);
    return { crm, ...a };
  };

  it('calls every registered tool on Kommo and on Bitrix24 in full mode', async () => {
    // Every toolset: the default ones leave out the feature toolsets, metadata, audit and raw.
    const env = { ...baseEnv(), CRM_ALLOW_WRITES: 'true', CRM_SAFE_MODE: 'false', CRM_ALLOW_DELETE: 'true', CRM_TOOLSETS: 'all' };
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, '--sandbox'], env, stderr: 'pipe' });
    const client = new Client({ name: 'matrix', version: '0' });
    await client.connect(transport);
    const tools = (await client.listTools()).tools;
    expect(tools.length).toBe(38);
    const ran: string[] = [];
    for (const crm of ['kommo', 'bitrix24'] as const) {
      for (const t of tools) {
        if (t.name === 'kommo_request' && crm !== 'kommo') continue;
        if (['bitrix_call', 'delete_lead', 'delete_contact'].includes(t.name) && crm !== 'bitrix24') continue;
        if ((t.name === 'list_tags' || t.name.includes('incoming_lead')) && crm !== 'kommo') continue;
        const r = (await client.callTool({ name: t.name, arguments: argsFor(t.name, crm) })) as CallToolResult;
        expect(r.isError, `${crm} ${t.name}: ${JSON.stringify(r.content).slice(0, 300)}`).toBeFalsy();
        expect(r.structuredContent, `${crm} ${t.name}`).toBeTruthy();
        const out = r.structuredContent as { items?: Array<{ id: unknown; is_completed?: boolean }>; id?: unknown };
        if (t.name === 'list_tasks') seen[crm]!.task = out.items?.find((x) => !x.is_completed)?.id;
        if (t.name === 'import_leads') seen[crm]!.import = out.id;
        ran.push(`${crm}:${t.name}`);
      }
    }
    // Kommo: all but the three Bitrix-only tools; Bitrix24: all but kommo_request, list_tags and the three incoming-lead tools.
    expect(ran).toHaveLength(35 + 33);
    await client.close();
  });
});
