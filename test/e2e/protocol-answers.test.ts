/**
 * What the server advertises and names at the protocol level (issue 16): an unsupported protocol version is
 * answered with -32022 naming every revision the endpoint serves (2026-07-28 through server/discover, the 2025
 * ones through initialize), on HTTP and on stdio; and no capability is advertised that the server has nothing
 * for (it has no resources and no prompts). The expected revisions are written out from the spec's list of
 * revisions, not read from the code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from '../../src/server.js';
import { startHttpServer, type RunningHttpServer } from '../../src/transports/http/service.js';
import { baseEnv, CLI } from '../helpers/cli.js';

const MODERN = '2026-07-28';
const LEGACY = ['2025-11-25', '2025-06-18', '2025-03-26'];
const meta = (version: string) => ({
  'io.modelcontextprotocol/protocolVersion': version,
  'io.modelcontextprotocol/clientInfo': { name: 'answers', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': {},
});

interface RpcAnswer {
  id?: unknown;
  result?: { capabilities?: Record<string, unknown>; protocolVersion?: string };
  error?: { code: number; message: string; data?: { supported?: string[]; requested?: string } };
}

describe('Streamable HTTP (in process)', () => {
  let http: RunningHttpServer;
  beforeAll(async () => {
    http = await startHttpServer({ host: '127.0.0.1', port: 0, makeServer: () => createServer({ config: { tools: {} }, providers: [] }) });
  });
  afterAll(async () => {
    await http.close();
  });

  async function post(body: unknown, headers: Record<string, string>): Promise<{ status: number; json: RpcAnswer }> {
    const res = await fetch(http.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    const json = text.startsWith('event:') || text.startsWith('data:') ? text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1) : text;
    return { status: res.status, json: JSON.parse(json) as RpcAnswer };
  }

  it('-32022 names the 2025 revisions as well as 2026-07-28', async () => {
    const r = await post(
      { jsonrpc: '2.0', id: 1, method: 'server/discover', params: { _meta: meta('2099-01-01') } },
      { 'mcp-protocol-version': '2099-01-01', 'mcp-method': 'server/discover' },
    );
    expect(r.status).toBe(400);
    expect(r.json.error?.code).toBe(-32022);
    expect(r.json.error?.data?.requested).toBe('2099-01-01');
    expect(r.json.error?.data?.supported).toEqual(expect.arrayContaining([MODERN, ...LEGACY]));
  });

  it('a 2025 initialize: the capabilities are logging and tools, no empty resources or prompts', async () => {
    const r = await post(
      {
        jsonrpc: '2.0',
        id: 2,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'answers', version: '0' } },
      },
      {},
    );
    expect(r.status).toBe(200);
    expect(Object.keys(r.json.result!.capabilities!).sort()).toEqual(['logging', 'tools']);
    // Not advertised, so not answered: a client that asks anyway is told the method does not exist.
    const list = await post({ jsonrpc: '2.0', id: 3, method: 'resources/list', params: {} }, { 'mcp-protocol-version': '2025-06-18' });
    expect(list.json.error?.code).toBe(-32601);
  });

  it('2026-07-28 server/discover advertises no resources or prompts either', async () => {
    const r = await post(
      { jsonrpc: '2.0', id: 4, method: 'server/discover', params: { _meta: meta(MODERN) } },
      { 'mcp-protocol-version': MODERN, 'mcp-method': 'server/discover' },
    );
    expect(r.status).toBe(200);
    const caps = r.json.result!.capabilities!;
    expect(caps).toHaveProperty('tools');
    expect(caps).not.toHaveProperty('resources');
    expect(caps).not.toHaveProperty('prompts');
  });
});

describe('stdio (built binary, --sandbox)', () => {
  let child: ChildProcessWithoutNullStreams;
  let buf = '';
  const waiting = new Map<number, (m: RpcAnswer) => void>();
  beforeAll(() => {
    child = spawn(process.execPath, [CLI, '--sandbox'], { env: baseEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => {
      buf += String(d);
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const m = JSON.parse(buf.slice(0, nl)) as RpcAnswer;
        buf = buf.slice(nl + 1);
        waiting.get(m.id as number)?.(m);
      }
    });
  });
  afterAll(() => {
    child.stdin.end();
    child.kill('SIGTERM');
  });
  const request = (id: number, method: string, params: Record<string, unknown>) =>
    new Promise<RpcAnswer>((resolve) => {
      waiting.set(id, resolve);
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });

  it('-32022 names the 2025 revisions, then the connection opens at 2026-07-28 without resources or prompts', { timeout: 60_000 }, async () => {
    const bad = await request(1, 'server/discover', { _meta: meta('2099-01-01') });
    expect(bad.error?.code).toBe(-32022);
    expect(bad.error?.data?.supported).toEqual(expect.arrayContaining([MODERN, ...LEGACY]));
    const ok = await request(2, 'server/discover', { _meta: meta(MODERN) });
    const caps = ok.result!.capabilities!;
    expect(caps).toHaveProperty('tools');
    expect(caps).not.toHaveProperty('resources');
    expect(caps).not.toHaveProperty('prompts');
  });
});
