/**
 * Narrowing headers past Node's header cap (issue 14, finding 3). Node keeps only the first
 * `maxHeadersCount` header fields of a request and drops the rest without a word, so a client that sends
 * ~1,000 tiny headers pushed a proxy-appended `X-CRM-Read-Only: true` out and `update_lead` renamed a lead
 * on a server the proxy meant to be read-only. The service refuses such a request (431) before anything
 * runs, and reads the narrowing headers from the raw list. Through the real service over the Kommo
 * emulator; what the emulator received is the measure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { narrowFromHeaders } from '../../src/transports/http/guards.js';
import type { RunningHttpServer } from '../../src/transports/http/service.js';
import { WRITE, kommoProvider, startKommo } from '../helpers/index.js';
import { serveHttp } from '../helpers/http.js';

const TOKEN = 'header-cap-token-0123456789abcdef';
const LEAD = 1000001;

let emu: KommoEmulator;
let http: RunningHttpServer;
beforeAll(async () => {
  emu = await startKommo({ rateLimit: false });
  const provider = await kommoProvider(emu, { flags: WRITE, maxRetries: 0 });
  http = await serveHttp(TOKEN, { config: { tools: {} }, providers: [provider] });
});
afterAll(async () => {
  await http?.close();
  await emu?.close();
});

const renameBody = (name: string) =>
  JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'update_lead', arguments: { id: LEAD, name } } });

/**
 * A POST whose header list is exactly `extra` after the essentials (Host first, so Node's own Host check
 * passes whatever is dropped), in this order: the proxy's header goes last, where a proxy appends it.
 */
function post(body: string, extra: Array<[string, string]>): Promise<{ status: number; text: string }> {
  const { hostname, port, pathname } = new URL(http.url);
  const headers: string[] = [
    'Host',
    `${hostname}:${port}`,
    'Content-Type',
    'application/json',
    'Content-Length',
    String(Buffer.byteLength(body)),
    'Accept',
    'application/json, text/event-stream',
    'Authorization',
    `Bearer ${TOKEN}`,
    'Mcp-Protocol-Version',
    '2025-11-25',
    ...extra.flat(),
  ];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path: pathname, method: 'POST', headers, setHost: false, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += String(d)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC answer, whether it came as JSON or as one SSE event. */
const answer = (text: string) => JSON.parse(text.slice(text.indexOf('{'), text.lastIndexOf('}') + 1)) as Record<string, unknown>;
/** A narrowed (read-only) server does not have update_lead at all. */
const NOT_THERE = { id: 7, error: { code: -32602, message: 'Tool update_lead not found' } };

const flood = (n: number): Array<[string, string]> => Array.from({ length: n }, (_, i) => [`x-p${i}`, '1']);
const sentToCrm = () => emu.requests.length;

describe('the header cap', () => {
  it('~1,000 tiny headers and then X-CRM-Read-Only: true: 431, and the CRM receives nothing', async () => {
    emu.resetLog();
    const r = await post(renameBody('Renamed past the header cap'), [...flood(1000), ['X-CRM-Read-Only', 'true']]);
    expect(r.status).toBe(431);
    // Node 20 hands the request to the service, which answers with a JSON-RPC error; newer Node versions may
    // refuse it themselves first (their own 431, no body). Either way nothing ran.
    if (r.text) expect(JSON.parse(r.text)).toMatchObject({ jsonrpc: '2.0', error: { code: -32000, message: expect.stringMatching(/header fields/i) } });
    expect(sentToCrm()).toBe(0);
  });

  it('the same request with a flood just under the cap is read in full: the header narrows, nothing is sent', async () => {
    emu.resetLog();
    // 6 essentials + 990 + the proxy's header + Node's Connection = 998 fields, under the cap of 1,000.
    const r = await post(renameBody('Renamed under the header cap'), [...flood(990), ['X-CRM-Read-Only', 'true']]);
    expect(r.status).toBe(200);
    expect(answer(r.text)).toMatchObject(NOT_THERE);
    expect(sentToCrm()).toBe(0);
  });

  it('a normal request with X-CRM-Read-Only: true is narrowed: update_lead is refused and nothing is sent', async () => {
    emu.resetLog();
    const r = await post(renameBody('Renamed through a read-only proxy'), [['X-CRM-Read-Only', 'true']]);
    expect(r.status).toBe(200);
    expect(answer(r.text)).toMatchObject(NOT_THERE);
    expect(sentToCrm()).toBe(0);
  });

  it('the control: without the header the same write goes through (so the refusals above are the header)', async () => {
    emu.resetLog();
    const r = await post(renameBody('Renamed with writes on'), []);
    expect(r.status).toBe(200);
    expect(answer(r.text)).toMatchObject({ id: 7, result: { structuredContent: { lead: { id: LEAD } } } });
    expect(emu.requests.filter((q) => q.method === 'PATCH' && q.path.startsWith('/api/v4/leads'))).toHaveLength(1);
  });
});

describe('narrowing headers from the raw header list', () => {
  it.each<[string, string[], Record<string, boolean>]>([
    ['one clear "true"', ['X-CRM-Read-Only', 'true'], { allowWrites: false }],
    ['any spelling of the name', ['x-CrM-rEaD-oNlY', 'true'], { allowWrites: false }],
    ['a clear "false"', ['X-CRM-Read-Only', 'false'], {}],
    ['the client\'s "false" and a proxy\'s "true"', ['X-CRM-Read-Only', 'false', 'x-crm-read-only', 'true'], { allowWrites: false }],
    ['two copies of "false" (repeated: narrows)', ['X-CRM-Read-Only', 'false', 'X-CRM-Read-Only', 'false'], { allowWrites: false }],
    ['"true" then "false"', ['X-CRM-Safe-Mode', 'true', 'X-CRM-Safe-Mode', 'false'], { safeMode: true }],
    ['allow-delete "true" twice', ['X-CRM-Allow-Delete', 'true', 'X-CRM-Allow-Delete', 'true'], { allowDelete: false }],
    ['allow-admin empty', ['X-CRM-Allow-Admin', ''], { allowAdmin: false }],
    ['unrelated headers only', ['Accept', 'application/json', 'X-Other', 'true'], {}],
  ])('%s', (_label, raw, expected) => {
    expect(narrowFromHeaders(raw)).toEqual(expected);
  });
});
