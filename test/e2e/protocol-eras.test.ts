/**
 * One handler, both protocol eras, on both transports: an SDK v2 client at 2026-07-28 (server/discover, no
 * initialize, a `_meta` envelope on every request), and SDK v1 clients at 2025-06-18 and 2025-11-25 (the
 * initialize handshake), against the built binary over stdio (`--sandbox`) and the in-process Streamable HTTP
 * service over the emulators. Plus raw HTTP and stdio exchanges for what a client library hides: the cache
 * hints on tools/list, the Mcp-Method/Mcp-Name checks, stateless requests without a session id, and the
 * error for an unsupported protocol version.
 *
 * Expected values come from the spec (docs/specification/2026-07-28: basic/transports/streamable-http.mdx,
 * server/utilities/caching.mdx, basic/versioning.mdx) and from the emulators' demo data, not from the code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client as ClientV2, StreamableHTTPClientTransport as HttpV2 } from '@modelcontextprotocol/client';
import { StdioClientTransport as StdioV2 } from '@modelcontextprotocol/client/stdio';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport as StdioV1 } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport as HttpV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { openStore } from '../../src/store/store.js';
import { buildKommoProvider } from '../../src/crms/kommo/provider.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { createServer } from '../../src/server.js';
import { startHttpServer, type McpRequestRecord, type RunningHttpServer } from '../../src/transports/http/service.js';
import { CREATE_ONLY, startKommo, structured, writesTo, type AnyToolResult } from '../helpers/index.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const MODERN = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'raw-2026', version: '0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
/** Tools of the read-only set in the order the registry lists them (crms/registry.ts ALL_TOOLS; written out here, not read from it). */
const READ_ORDER = ['get_account', 'get_pipelines', 'search_lead_by_contact', 'list_leads', 'get_lead', 'list_contacts', 'get_contact'];

const cleanEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) env[k] = v;
  return { ...env, ...extra };
};

/** True when `names` holds every name of `order` and in that relative order. */
function inOrder(names: string[], order: string[]): boolean {
  const at = order.map((n) => names.indexOf(n));
  return at.every((i, k) => i >= 0 && (k === 0 || i > at[k - 1]!));
}

interface Wire {
  sent: JSONRPCMessage[];
  received: JSONRPCMessage[];
}

/**
 * The transport with what crosses it recorded, and the v1 client's initialize offer rewritten to `offer`
 * (SDK v1 always offers its latest, 2025-11-25; a 2025-06-18 client is the same handshake with that version).
 */
function recorded<T extends object>(inner: T, wire: Wire, offer?: string): T {
  const t = inner as unknown as Transport;
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'send') {
        return (m: JSONRPCMessage, o?: unknown) => {
          let out = m;
          if (offer && 'method' in m && m.method === 'initialize') out = { ...m, params: { ...m.params, protocolVersion: offer } } as JSONRPCMessage;
          wire.sent.push(out);
          return (t.send as (m: JSONRPCMessage, o?: unknown) => Promise<void>).call(target, out, o);
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
    set(target, prop, value) {
      if (prop === 'onmessage' && typeof value === 'function') {
        const deliver = value as (m: JSONRPCMessage, extra?: unknown) => void;
        t.onmessage = (m: JSONRPCMessage, extra?: unknown) => {
          wire.received.push(m);
          deliver(m, extra);
        };
        return true;
      }
      return Reflect.set(target, prop, value, target);
    },
  });
}

const methodsSent = (w: Wire) => w.sent.map((m) => ('method' in m ? m.method : '(response)'));
const resultOf = (w: Wire, id: unknown) => w.received.find((m) => 'id' in m && m.id === id && 'result' in m) as { result: Record<string, unknown> } | undefined;

// ---------------------------------------------------------------------------------------------- stdio

/** A raw newline-delimited JSON-RPC exchange with the built binary: requests answered in order of id. */
class RawStdio {
  private buf = '';
  private readonly waiting = new Map<number | string, (m: Record<string, unknown>) => void>();
  readonly child: ChildProcessWithoutNullStreams;
  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => {
      this.buf += String(d);
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const m = JSON.parse(line) as Record<string, unknown>;
        this.waiting.get(m.id as number)?.(m);
      }
    });
  }
  request(id: number, method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }
  close(): void {
    this.child.stdin.end();
    this.child.kill('SIGTERM');
  }
}

describe('stdio (built binary, --sandbox)', () => {
  const env = cleanEnv({ CRM_ALLOW_WRITES: 'true' });

  it(
    '2026-07-28 with an SDK v2 client: no initialize, the envelope on every request, tools in a stable order, a call with structuredContent',
    { timeout: 60_000 },
    async () => {
      const wire: Wire = { sent: [], received: [] };
      const transport = recorded(new StdioV2({ command: process.execPath, args: [CLI, '--sandbox'], env, stderr: 'pipe' }), wire);
      const client = new ClientV2({ name: 'eras-v2', version: '0' }, { versionNegotiation: { mode: { pin: MODERN } } });
      await client.connect(transport);
      expect(client.getProtocolEra()).toBe('modern');
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(inOrder(names, READ_ORDER), names.join(',')).toBe(true);
      expect(names).toContain('create_lead');
      const created = await client.callTool({
        name: 'create_lead',
        arguments: { crm: 'kommo', name: 'Era 2026 stdio', contact: { first_name: 'Modern', email: 'modern-stdio@example.org' } },
      });
      const lead = structured<{ created: boolean; lead: { id: number } }>(created);
      expect(lead.created).toBe(true);
      // The sandbox stored it: a read in a later request finds it.
      const read = structured<{ lead: { name: string } }>(await client.callTool({ name: 'get_lead', arguments: { crm: 'kommo', id: lead.lead.id } }));
      expect(read.lead.name).toBe('Era 2026 stdio');
      await client.close();

      const methods = methodsSent(wire);
      expect(methods).not.toContain('initialize');
      expect(methods).toContain('tools/call');
      for (const m of wire.sent) {
        if (!('method' in m) || !('id' in m)) continue;
        expect((m.params as { _meta?: Record<string, unknown> })?._meta?.['io.modelcontextprotocol/protocolVersion'], m.method).toBe(MODERN);
      }
    },
  );

  it(
    '2026-07-28 raw: server/discover answers without initialize; tools/list carries ttlMs and cacheScope; the order is stable',
    { timeout: 60_000 },
    async () => {
      const raw = new RawStdio(['--sandbox'], cleanEnv());
      try {
        const discover = await raw.request(1, 'server/discover', { _meta: META });
        const d = discover.result as {
          supportedVersions: string[];
          capabilities: { tools?: unknown };
          ttlMs: number;
          cacheScope: string;
          _meta?: Record<string, { name: string }>;
        };
        expect(d.supportedVersions).toContain(MODERN);
        expect(d.capabilities.tools).toBeDefined();
        expect(d._meta?.['io.modelcontextprotocol/serverInfo']?.name).toBe('crm-mcp');
        const first = (await raw.request(2, 'tools/list', { _meta: META })).result as { tools: Array<{ name: string }>; ttlMs: number; cacheScope: string };
        // caching.mdx: cacheable results MUST carry both hints; the list is fixed per process, private per caller.
        expect(first.ttlMs).toBe(300_000);
        expect(first.cacheScope).toBe('private');
        const second = (await raw.request(3, 'tools/list', { _meta: META })).result as { tools: Array<{ name: string }> };
        expect(second.tools.map((t) => t.name)).toEqual(first.tools.map((t) => t.name));
        expect(
          inOrder(
            first.tools.map((t) => t.name),
            READ_ORDER,
          ),
        ).toBe(true);
        const call = (await raw.request(4, 'tools/call', { name: 'get_pipelines', arguments: { crm: 'bitrix24' }, _meta: META })).result as {
          structuredContent: { pipelines: Array<{ stages: unknown[] }> };
          content: Array<{ type: string; text: string }>;
        };
        expect(call.structuredContent.pipelines.length).toBeGreaterThan(0);
        expect(JSON.parse(call.content[0]!.text)).toEqual(call.structuredContent);
      } finally {
        raw.close();
      }
    },
  );

  it('2026-07-28 raw: a connection that opens with an unsupported version gets -32022 naming the supported ones', { timeout: 60_000 }, async () => {
    const raw = new RawStdio(['--sandbox'], cleanEnv());
    try {
      const bad = await raw.request(1, 'server/discover', { _meta: { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' } });
      expect(bad.error, JSON.stringify(bad).slice(0, 300)).toMatchObject({ code: -32022, data: { requested: '2099-01-01' } });
      expect((bad.error as { data: { supported: string[] } }).data.supported).toContain(MODERN);
    } finally {
      raw.close();
    }
  });

  it.each(['2025-06-18', '2025-11-25'])(
    '%s with an SDK v1 client: the initialize handshake, the same tools, the same call',
    { timeout: 60_000 },
    async (version) => {
      const wire: Wire = { sent: [], received: [] };
      const client = new ClientV1({ name: `eras-v1-${version}`, version: '0' });
      await client.connect(recorded(new StdioV1({ command: process.execPath, args: [CLI, '--sandbox'], env, stderr: 'pipe' }), wire, version));
      const init = resultOf(wire, (wire.sent.find((m) => 'method' in m && m.method === 'initialize') as { id: number }).id);
      expect(init?.result.protocolVersion).toBe(version);
      expect(init?.result).not.toHaveProperty('ttlMs'); // 2025-era answers never carry the 2026 cache fields
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(inOrder(names, READ_ORDER)).toBe(true);
      const created = await client.callTool({
        name: 'create_lead',
        arguments: { crm: 'bitrix24', name: `Era ${version} stdio`, contact: { first_name: 'Legacy', email: `legacy-${version}@example.org` } },
      });
      const lead = structured<{ created: boolean; lead: { id: number; entity: string } }>(created as AnyToolResult);
      expect(lead.created).toBe(true);
      const read = structured<{ lead: { name: string } }>(
        (await client.callTool({ name: 'get_lead', arguments: { crm: 'bitrix24', id: lead.lead.id, entity: lead.lead.entity } })) as AnyToolResult,
      );
      expect(read.lead.name).toBe(`Era ${version} stdio`);
      const listResult = resultOf(wire, (wire.sent.find((m) => 'method' in m && m.method === 'tools/list') as { id: number }).id);
      expect(listResult?.result).not.toHaveProperty('ttlMs');
      await client.close();
    },
  );
});

// ---------------------------------------------------------------------------------------------- HTTP

const TOKEN = 'eras-token-0123456789abcdef';

describe('Streamable HTTP (in-process service over the Kommo emulator)', () => {
  let emu: KommoEmulator;
  let http: RunningHttpServer;
  const records: McpRequestRecord[] = [];

  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
    const p = buildKommoProvider(
      { name: 'kommo', provider: 'kommo', baseUrl: emu.url, accessToken: emu.createLongLivedToken(), policy: CREATE_ONLY },
      { store: await openStore('memory'), timeoutMs: 3000, maxRetries: 1, backoffBaseMs: 20 },
    );
    await p.init();
    http = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      makeServer: (scope) => createServer({ config: { tools: {} }, providers: [p], narrow: scope.narrow }),
      metrics: { contentType: 'text/plain', render: async () => '', mcpRequest: (r) => void records.push(r) },
    });
  });
  afterAll(async () => {
    await http?.close();
    await emu?.close();
  });
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('2026-07-28 with an SDK v2 client: server/discover and no initialize, a stable tool order, a call with structuredContent', async () => {
    records.length = 0;
    emu.resetLog();
    const client = new ClientV2({ name: 'eras-v2-http', version: '0' }, { versionNegotiation: { mode: { pin: MODERN } } });
    await client.connect(new HttpV2(new URL(http.url), { requestInit: { headers: auth } }));
    expect(client.getProtocolEra()).toBe('modern');
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(inOrder(names, READ_ORDER)).toBe(true);
    const r = await client.callTool({ name: 'create_lead', arguments: { name: 'Era 2026 http' } });
    expect(structured<{ created: boolean }>(r).created).toBe(true);
    // What the CRM received: one lead with that name.
    const posted = writesTo(emu.requests).filter((q) => q.path.startsWith('/api/v4/leads'));
    expect(JSON.stringify(posted.map((q) => q.body))).toContain('Era 2026 http');
    await client.close();
    // What the service saw, method and name as the headers said and the body agreed.
    expect(records.map((x) => x.method)).toContain('server/discover');
    expect(records.map((x) => x.method)).not.toContain('initialize');
    expect(records.every((x) => x.era === 'modern')).toBe(true);
    expect(records).toContainEqual({ method: 'tools/call', name: 'create_lead', era: 'modern', status: 200 });
  });

  it.each(['2025-06-18', '2025-11-25'])('%s with an SDK v1 client: initialize, the same tools in the same order, the same call', async (version) => {
    records.length = 0;
    emu.resetLog();
    const wire: Wire = { sent: [], received: [] };
    const client = new ClientV1({ name: `eras-v1-http-${version}`, version: '0' });
    await client.connect(recorded(new HttpV1(new URL(http.url), { requestInit: { headers: auth } }), wire, version));
    const init = resultOf(wire, (wire.sent.find((m) => 'method' in m && m.method === 'initialize') as { id: number }).id);
    expect(init?.result.protocolVersion).toBe(version);
    const v1names = (await client.listTools()).tools.map((t) => t.name);

    const modern = new ClientV2({ name: 'eras-compare', version: '0' }, { versionNegotiation: { mode: { pin: MODERN } } });
    await modern.connect(new HttpV2(new URL(http.url), { requestInit: { headers: auth } }));
    expect(v1names).toEqual((await modern.listTools()).tools.map((t) => t.name));
    await modern.close();

    const r = await client.callTool({ name: 'create_lead', arguments: { name: `Era ${version} http` } });
    expect(structured<{ created: boolean }>(r as AnyToolResult).created).toBe(true);
    expect(JSON.stringify(writesTo(emu.requests).map((q) => q.body))).toContain(`Era ${version} http`);
    await client.close();
    expect(records.filter((x) => x.era === 'legacy').map((x) => x.method)).toEqual(expect.arrayContaining(['initialize', 'tools/list', 'tools/call']));
  });

  /** A raw POST to /mcp. */
  async function post(body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
    const res = await fetch(http.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth, ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      json: JSON.parse(text.startsWith('event:') || text.startsWith('data:') ? text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1) : text) as Record<
        string,
        unknown
      >,
    };
  }
  const modernHeaders = (method: string, name?: string): Record<string, string> => ({
    'mcp-protocol-version': MODERN,
    'mcp-method': method,
    ...(name ? { 'mcp-name': name } : {}),
  });
  const call = (id: number, name: string, args: Record<string, unknown>, meta: Record<string, unknown> | undefined = META) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
  });

  it('a stateless 2026-07-28 request with the _meta envelope works without a session id or initialize', async () => {
    emu.resetLog();
    const r = await post(call(7, 'list_leads', { limit: 2 }), modernHeaders('tools/call', 'list_leads'));
    expect(r.status).toBe(200);
    expect(r.headers.get('mcp-session-id')).toBeNull();
    expect(r.json.id).toBe(7);
    const result = r.json.result as { resultType: string; structuredContent: { items: unknown[] } };
    expect(result.resultType).toBe('complete');
    expect(result.structuredContent.items).toHaveLength(2);
    // The CRM was asked for exactly that page.
    expect(emu.requests.some((q) => q.path === '/api/v4/leads' && new URL(q.url, 'http://x').searchParams.get('limit') === '2')).toBe(true);
    const list = await post({ jsonrpc: '2.0', id: 8, method: 'tools/list', params: { _meta: META } }, modernHeaders('tools/list'));
    expect(list.json.result).toMatchObject({ ttlMs: 300_000, cacheScope: 'private' });
  });

  it.each([
    ['2026-07-28: Mcp-Method names another method', call(9, 'create_lead', { name: 'Mismatch A' }), modernHeaders('tools/list')],
    ['2026-07-28: Mcp-Name names another tool', call(10, 'create_lead', { name: 'Mismatch B' }), modernHeaders('tools/call', 'get_account')],
    [
      '2026-07-28: Mcp-Name as a Base64 sentinel of another tool',
      call(11, 'create_lead', { name: 'Mismatch C' }),
      modernHeaders('tools/call', `=?base64?${Buffer.from('get_account').toString('base64')}?=`),
    ],
    [
      '2025 era: a present Mcp-Method that disagrees',
      call(12, 'create_lead', { name: 'Mismatch D' }, undefined),
      { 'mcp-protocol-version': '2025-11-25', 'mcp-method': 'tools/list' },
    ],
  ])('%s is refused with 400 and -32020, and nothing reaches the CRM', async (_label, body, headers) => {
    emu.resetLog();
    const r = await post(body, headers);
    expect(r.status).toBe(400);
    expect((r.json.error as { code: number }).code).toBe(-32020);
    expect(r.json.id).toBe((body as { id: number }).id);
    expect(emu.requests).toHaveLength(0);
  });

  it('a Base64 sentinel Mcp-Name that matches the body is accepted', async () => {
    const r = await post(call(13, 'get_account', {}), modernHeaders('tools/call', `=?base64?${Buffer.from('get_account').toString('base64')}?=`));
    expect(r.status).toBe(200);
    expect((r.json.result as { isError?: boolean }).isError).toBeFalsy();
  });

  it('shutdown does not wait for an open subscriptions/listen stream: it ends it with the listen result', { timeout: 20_000 }, async () => {
    const own = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      // Far above the test's timeout: close() must not be waiting for the drain deadline.
      shutdownTimeoutMs: 120_000,
      makeServer: () => createServer({ config: { tools: {} }, providers: [] }),
    });
    const res = await fetch(own.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...modernHeaders('subscriptions/listen') },
      body: JSON.stringify({ jsonrpc: '2.0', id: 21, method: 'subscriptions/listen', params: { _meta: META, notifications: { toolsListChanged: true } } }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('notifications/subscriptions/acknowledged')) seen += new TextDecoder().decode((await reader.read()).value);
    await own.close();
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen += new TextDecoder().decode(r.value);
    // subscriptions.mdx: a server ending the stream deliberately answers the listen request first.
    expect(seen).toMatch(/"id":21,"result"|"result":\{[^]*"id":21/);
  });

  it('an unsupported protocol version gets 400 with -32022 naming the supported versions', async () => {
    emu.resetLog();
    const meta = { ...META, 'io.modelcontextprotocol/protocolVersion': '2099-01-01' };
    const r = await post(call(14, 'create_lead', { name: 'From the future' }, meta), {
      'mcp-protocol-version': '2099-01-01',
      'mcp-method': 'tools/call',
      'mcp-name': 'create_lead',
    });
    expect(r.status).toBe(400);
    const error = r.json.error as { code: number; data: { supported: string[]; requested: string } };
    expect(error.code).toBe(-32022);
    expect(error.data.supported).toContain(MODERN);
    expect(error.data.requested).toBe('2099-01-01');
    expect(emu.requests).toHaveLength(0);
  });
});
