import { request as httpRequest } from 'node:http';
/** The built binary, driven by the SDK's real Client over stdio and over Streamable HTTP (sandbox mode). */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const baseEnv = () => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CRM_') && !k.startsWith('KOMMO_') && !k.startsWith('AMOCRM_') && !k.startsWith('BITRIX')) env[k] = v;
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
    const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, '--sandbox'], env: { ...baseEnv(), CRM_LOG_LEVEL: 'debug', CRM_ALLOW_WRITES: 'true' }, stderr: 'pipe' });
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
    const created = (await client.callTool({ name: 'create_lead', arguments: { crm: 'kommo', name: 'From stdio', contact: { first_name: 'Stdio', email: 'stdio@example.org' } } })) as CallToolResult;
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
      const req = httpRequest(url, { method: 'POST', headers: { host: 'evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('{}');
    });
    expect(rebindingStatus).toBe(403);
    expect((await fetch(url)).status).toBe(405);
    expect((await fetch(url.replace('/mcp', '/healthz'))).status).toBe(200);
  });
});
