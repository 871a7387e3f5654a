/**
 * A CRM (or a proxy in front of it) that echoes the credential into its error bodies: every tool on both
 * CRMs gets such an answer, and neither the bearer token nor the webhook secret may reach the agent through
 * the message, the details or anywhere else in the result, nor reach the log at debug level.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { ALL, connectBitrix, connectKommo, logLines, startBitrix, startKommo, text } from '../helpers/index.js';

const FUTURE = new Date(Date.now() + 7 * 86_400_000).toISOString();

/** Arguments that make each tool reach the CRM. */
const ARGS: Record<string, Record<string, unknown>> = {
  get_account: {},
  get_pipelines: {},
  search_lead_by_contact: { phone: '+7 912 000-00-01' },
  list_leads: {},
  get_lead: { id: 1 },
  list_contacts: {},
  get_contact: { id: 1 },
  list_companies: {},
  get_company: { id: 1 },
  get_custom_fields: {},
  list_users: {},
  list_tags: {},
  create_lead: { name: 'Echo lead', contact: { name: 'Echo Person', phone: '+7 912 000-00-02' } },
  create_contact: { name: 'Echo Person', phone: '+7 912 000-00-03' },
  add_note: { entity: 'lead', entity_id: 1, text: 'hello' },
  create_task: { text: 'call back', complete_till: FUTURE },
  update_lead: { id: 1, name: 'Renamed' },
  update_contact: { id: 1, name: 'Renamed' },
  kommo_request: { method: 'GET', path: '/api/v4/leads' },
  bitrix_call: { method: 'crm.deal.list', params: {} },
  delete_lead: { id: 1 },
  delete_contact: { id: 1 },
  move_lead: { id: 1, won: true },
  list_notes: { entity: 'lead', entity_id: 1 },
  list_tasks: {},
  complete_task: { id: 1, result_text: 'done' },
  create_company: { name: 'Echo Co', phone: '+7 912 000-00-04' },
  update_company: { id: 1, name: 'Renamed' },
  link_contact_to_company: { contact_id: 1, company_id: 2 },
  log_call: { phone: '+7 912 000-00-05', direction: 'in', duration_s: 30, status: 'answered' },
  list_incoming_leads: {},
  accept_incoming_lead: { uid: 'abc123' },
  decline_incoming_lead: { uid: 'abc123' },
  import_leads: { rows: [{ contact: { name: 'Echo Person', phone: '+7 912 000-00-06' } }] },
  get_record_history: { entity: 'lead', id: 1 },
};
/** Tools that never ask the CRM (they read this server's own import journal and event log). */
const LOCAL_ONLY = new Set(['get_audit_log', 'get_import_status', 'list_changes']);

describe('Kommo echoes the bearer token in its error bodies', () => {
  let emu: KommoEmulator;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it('no tool lets the token through (message, details, text)', async () => {
    const probe = await connectKommo(emu, { flags: ALL });
    const names = (await probe.client.listTools()).tools.map((t) => t.name).filter((n) => !LOCAL_ONLY.has(n));
    await probe.close();
    expect(names.length).toBeGreaterThan(15);
    let reached = 0;
    for (const name of names) {
      const c = await connectKommo(emu, { flags: ALL, maxRetries: 0 });
      const token = c.provider.conn.accessToken!;
      emu.resetLog();
      emu.harness.injectFault(
        {
          kind: 'echo',
          respond: (req) => ({
            status: 400,
            headers: { 'content-type': 'application/problem+json' },
            body: {
              title: 'Bad Request',
              status: 400,
              detail: `Request with ${String(req.headers.authorization)} rejected`,
              'validation-errors': [
                { request_id: '0', errors: [{ code: 'Echo', path: 'name', detail: `authorization: ${String(req.headers.authorization)} token=${token}` }] },
              ],
            },
          }),
        },
        { times: 100 },
      );
      const r = await c.call(name, ARGS[name] ?? {});
      if (emu.requests.length > 0) reached += 1;
      const out = JSON.stringify(r);
      expect(out, name).not.toContain(token);
      expect(out, name).not.toContain(token.slice(8, 40));
      await c.close();
    }
    // Almost every tool reached the CRM and met the echo (a few validate locally first).
    expect(reached).toBeGreaterThan(names.length - 3);
    expect(logLines.join('')).not.toContain('token=ey');
  });
});

describe('Bitrix24 echoes the webhook URL in its error bodies', () => {
  let emu: BitrixEmulator;
  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  it('no tool lets the webhook secret through (message, details, text)', async () => {
    const probe = await connectBitrix(emu, { flags: ALL });
    const names = (await probe.client.listTools()).tools.map((t) => t.name).filter((n) => !LOCAL_ONLY.has(n));
    await probe.close();
    expect(names.length).toBeGreaterThan(15);
    let reached = 0;
    for (const name of names) {
      const c = await connectBitrix(emu, { flags: ALL, maxRetries: 0 });
      emu.harness.resetLog();
      emu.harness.injectFault(
        {
          kind: 'echo',
          respond: (req) => ({
            status: 400,
            body: { error: 'INVALID_REQUEST', error_description: `Bad request to ${req.url} (secret ${emu.webhookSecret}) with ${req.body.slice(0, 200)}` },
          }),
        },
        { times: 100 },
      );
      const r = await c.call(name, ARGS[name] ?? {});
      if (emu.requests.length > 0) reached += 1;
      expect(JSON.stringify(r), name).not.toContain(emu.webhookSecret);
      expect(text(r), name).toBeTruthy();
      await c.close();
    }
    expect(reached).toBeGreaterThan(names.length - 3);
    expect(logLines.join('')).not.toContain(emu.webhookSecret);
  });
});

/**
 * The same echo in the spellings a CRM or a proxy may use (issue 14, finding 11): base64 (alone and inside a
 * Basic header), base64url, hex in both cases, every byte percent-encoded, the secret upper-cased. What the
 * agent sees must not hold the middle of any of them (the ends may share characters with their neighbours).
 */
function spellings(secret: string): string[] {
  const b = Buffer.from(secret, 'utf8');
  const hex = b.toString('hex');
  return [
    b.toString('base64'),
    Buffer.from(`user:${secret}`).toString('base64'),
    b.toString('base64url'),
    hex,
    hex.toUpperCase(),
    hex.replace(/../g, '%$&'),
    secret.toUpperCase(),
  ];
}
const leaked = (out: string, forms: string[]) => forms.filter((f) => out.includes(f.slice(4, -4)));

describe('echoed credentials in other spellings', () => {
  it('Kommo: the token in base64, base64url, hex and percent-encoded reaches no tool result', async () => {
    const emu = await startKommo({ rateLimit: false });
    let reached = 0;
    for (const name of Object.keys(ARGS).filter((n) => n !== 'bitrix_call' && !n.startsWith('delete_'))) {
      const c = await connectKommo(emu, { flags: ALL, maxRetries: 0 });
      const forms = spellings(c.provider.conn.accessToken!);
      emu.resetLog();
      emu.harness.injectFault(
        { kind: 'echo', respond: () => ({ status: 400, body: { title: 'Bad Request', status: 400, detail: `seen: ${forms.join(' ; ')}` } }) },
        { times: 100 },
      );
      const r = await c.call(name, ARGS[name] ?? {});
      if (emu.requests.length > 0) reached += 1;
      expect(leaked(JSON.stringify(r), forms), name).toEqual([]);
      expect(leaked(logLines.join(''), forms), name).toEqual([]);
      await c.close();
    }
    expect(reached).toBeGreaterThan(15);
    await emu.close();
  });

  it('Bitrix24: the webhook secret upper-cased, in base64 and in hex reaches no tool result', async () => {
    const emu = await startBitrix({ rateLimit: false });
    const forms = spellings(emu.webhookSecret);
    let reached = 0;
    for (const name of Object.keys(ARGS).filter((n) => n !== 'kommo_request' && n !== 'list_tags' && !n.includes('incoming_lead'))) {
      const c = await connectBitrix(emu, { flags: ALL, maxRetries: 0 });
      emu.harness.resetLog();
      emu.harness.injectFault(
        { kind: 'echo', respond: () => ({ status: 400, body: { error: 'INVALID_REQUEST', error_description: `seen: ${forms.join(' ; ')}` } }) },
        { times: 100 },
      );
      const r = await c.call(name, ARGS[name] ?? {});
      if (emu.requests.length > 0) reached += 1;
      expect(leaked(JSON.stringify(r), forms), name).toEqual([]);
      expect(leaked(logLines.join(''), forms), name).toEqual([]);
      await c.close();
    }
    expect(reached).toBeGreaterThan(15);
    await emu.close();
  });
});
