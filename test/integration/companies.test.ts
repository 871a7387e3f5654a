/**
 * create_company, update_company and link_contact_to_company on both CRMs, through a real MCP client against
 * the emulators: what each CRM received (request bodies, nothing for a refused call) and what it holds after.
 * Seeds are made by hand in the emulators' state, never with the tools under test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../../src/sandbox/harness.js';
import { createRecord } from '../../src/sandbox/bitrix24/crm.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import {
  bitrixMethods,
  connectBitrix,
  connectKommo,
  CREATE_ONLY,
  errorOf,
  FULL,
  startBitrix,
  startKommo,
  structured,
  WRITE,
  writesTo,
  type Connected,
  type ConnectedBitrix,
} from '../helpers/index.js';

type Co = {
  id: number;
  name: string;
  phones: string[];
  emails: string[];
  tags: string[];
  contact_ids: number[];
  custom_fields: Array<{ name: string; values: unknown[] }>;
};
type Created = { created: boolean; company: Co | null; reason?: string; duplicate_check: string };
type Linked = {
  linked: boolean;
  contact: { id: number; company: { id: number; name: string | null } | null };
  company: Co;
  replaced: { id: number; name: string | null } | null;
  note?: string;
};

interface World {
  /** Connections in write (no delete), write + delete, and create-only mode. */
  w: Connected | ConnectedBitrix;
  full: Connected | ConnectedBitrix;
  createOnly: Connected | ConnectedBitrix;
  reset(): void;
  /** The write requests the CRM received since the last reset, as "METHOD path" or the REST method name. */
  writes(): string[];
  requests(): RecordedRequest[];
  /** Companies of that name in the emulator, with their phones. */
  companies(name: string): Array<{ id: number; phones: string[] }>;
  seedCompany(name: string, phone: string): number;
  seedContact(name: string, companyId?: number): number;
  contactCompanies(id: number): number[];
  failCreate(): void;
}

let kemu: KommoEmulator;
let bemu: BitrixEmulator;
const open: Array<{ close(): Promise<void> }> = [];
const worlds: Record<'kommo' | 'bitrix24', World> = {} as never;

beforeAll(async () => {
  kemu = await startKommo({ rateLimit: false });
  bemu = await startBitrix({ rateLimit: false });
  const [kw, kf, kc] = await Promise.all([WRITE, FULL, CREATE_ONLY].map((flags) => connectKommo(kemu, { flags })));
  const [bw, bf, bc] = await Promise.all([WRITE, FULL, CREATE_ONLY].map((flags) => connectBitrix(bemu, { flags })));
  open.push(kw!, kf!, kc!, bw!, bf!, bc!);
  const s = kemu.state;
  const field = (code: string) => [...s.customFields.companies.values()].find((f) => f.code === code)!;
  const user = [...s.users.keys()][0]!;
  const kBase = () => ({
    responsible_user_id: user,
    group_id: 0,
    created_by: user,
    updated_by: user,
    created_at: 1_700_000_000,
    updated_at: 1_700_000_000,
    closest_task_at: null,
    account_id: s.account.id,
  });
  worlds.kommo = {
    w: kw!,
    full: kf!,
    createOnly: kc!,
    reset: () => kemu.resetLog(),
    requests: () => kemu.requests,
    writes: () => writesTo(kemu.requests).map((r) => `${r.method} ${r.path}`),
    companies: (name) =>
      [...s.companies.values()]
        .filter((c) => c.name === name)
        .map((c) => ({
          id: c.id,
          phones: (c.custom_fields_values ?? []).filter((f) => f.field_code === 'PHONE').flatMap((f) => f.values.map((v) => String(v.value))),
        })),
    seedCompany(name, phone) {
      const id = s.nextId.company++;
      const f = field('PHONE');
      const cfv = [{ field_id: f.id, field_name: f.name, field_code: 'PHONE', field_type: 'multitext', values: [{ value: phone, enum: 'WORK' }] }];
      s.companies.set(id, { id, name, ...kBase(), custom_fields_values: cfv, _embedded: { tags: [] } });
      return id;
    },
    seedContact(name, companyId) {
      const id = s.nextId.contact++;
      s.contacts.set(id, {
        id,
        name,
        first_name: name,
        last_name: '',
        ...kBase(),
        custom_fields_values: null,
        _embedded: { tags: [], companies: companyId ? [{ id: companyId }] : [] },
      });
      return id;
    },
    contactCompanies: (id) => s.contacts.get(id)!._embedded.companies.map((x) => x.id),
    failCreate: () =>
      kemu.injectFault(
        { kind: 'status', status: 500, body: '{"title":"ErrInternalServer","status":500}' },
        { match: { method: 'POST', path: '/api/v4/companies' }, times: 5 },
      ),
  };
  const bs = bemu.state;
  const at = Date.now();
  worlds.bitrix24 = {
    w: bw!,
    full: bf!,
    createOnly: bc!,
    reset: () => bemu.harness.resetLog(),
    requests: () => bemu.requests,
    writes: () => bitrixMethods(bemu.requests).filter((m) => /\.(add|update|delete|set)$/.test(m)),
    companies: (name) =>
      [...bs.companies.values()]
        .filter((c) => c.TITLE === name)
        .map((c) => ({ id: Number(c.ID), phones: ((c.PHONE as Array<{ VALUE: string }>) ?? []).map((m) => m.VALUE) })),
    seedCompany: (name, phone) => createRecord(bs, 'company', { TITLE: name, PHONE: [{ VALUE: phone, VALUE_TYPE: 'WORK' }] }, { by: 1, at }),
    seedContact: (name, companyId) => createRecord(bs, 'contact', { NAME: name, ...(companyId ? { COMPANY_IDS: [companyId] } : {}) }, { by: 1, at }),
    contactCompanies: (id) => ((bs.contacts.get(id)!.COMPANY_IDS as string[]) ?? []).map(Number),
    failCreate: () =>
      bemu.harness.injectFault(
        { kind: 'status', status: 400, body: '{"error":"","error_description":"Access denied."}', contentType: 'application/json' },
        { match: { path: 'crm.company.add' }, times: 1 },
      ),
  };
});

afterAll(async () => {
  for (const c of open) await c.close();
  await kemu.close();
  await bemu.close();
});

const body = (r: RecordedRequest) => JSON.parse(r.body) as unknown;

describe.each(['kommo', 'bitrix24'] as const)('%s', (crm) => {
  const W = () => worlds[crm];
  let n = 0;
  const unique = (what: string) => `${what} ${crm} ${Date.now()}-${++n}`;
  /** A +7 495 number no demo record has. */
  const phone = () => `+7495${String(1_000_000 + Math.floor(Math.random() * 8_999_999))}`;

  it('create_company sends the company with its phone, email and custom field, and the CRM holds it', async () => {
    const name = unique('Acme');
    const p = phone();
    W().reset();
    const args =
      crm === 'kommo'
        ? { name, phone: p, email: 'Office@Acme.example', tags: ['key account'], custom_fields: [{ field_name: 'Employees', value: 12 }] }
        : { name, phone: p, email: 'Office@Acme.example', custom_fields: [{ field_name: 'Tax ID', value: '7701234567' }] };
    const r = structured<Created>(await W().w.call('create_company', args));
    expect(r.created).toBe(true);
    expect(r.duplicate_check).toBe('done');
    expect(r.company).toMatchObject({ name, phones: [p], emails: ['Office@Acme.example'] });
    expect(W().companies(name)).toEqual([{ id: r.company!.id, phones: [p] }]);
    if (crm === 'kommo') {
      expect(W().writes()).toEqual(['POST /api/v4/companies']);
      const sent = body(kemu.requests.find((q) => q.method === 'POST' && q.path === '/api/v4/companies')!) as Array<Record<string, unknown>>;
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        name,
        custom_fields_values: [
          { field_code: 'PHONE', values: [{ value: p, enum_code: 'WORK' }] },
          { field_code: 'EMAIL', values: [{ value: 'Office@Acme.example', enum_code: 'WORK' }] },
          { field_id: 910206, values: [{ value: 12 }] },
        ],
        _embedded: { tags: [{ id: 42001 }] },
      });
      expect(r.company!.tags).toEqual(['key account']);
    } else {
      expect(W().writes()).toEqual(['crm.company.add']);
      const sent = body(bemu.requests.find((q) => q.path.endsWith('crm.company.add.json'))!);
      expect(sent).toEqual({
        fields: {
          TITLE: name,
          PHONE: [{ VALUE: p, VALUE_TYPE: 'WORK' }],
          EMAIL: [{ VALUE: 'Office@Acme.example', VALUE_TYPE: 'WORK' }],
          UF_CRM_1700000301: '7701234567',
        },
      });
    }
  });

  it('a company with the same phone (typed differently) is returned, and nothing is created', async () => {
    const name = unique('Seeded');
    const p = phone();
    const id = W().seedCompany(name, p);
    W().reset();
    const national = `8 (${p.slice(2, 5)}) ${p.slice(5, 8)}-${p.slice(8, 10)}-${p.slice(10)}`;
    const r = structured<Created>(await W().w.call('create_company', { name: `${name} again`, phone: national }));
    expect(r).toMatchObject({ created: false, duplicate_check: 'done', company: { id, name } });
    expect(r.reason).toMatch(/already exists/);
    expect(W().writes()).toEqual([]);
    expect(W().companies(`${name} again`)).toEqual([]);
  });

  it('5 concurrent identical create_company calls make exactly one company', async () => {
    const name = unique('Race');
    const p = phone();
    const rs = await Promise.all(Array.from({ length: 5 }, () => W().w.call('create_company', { name, phone: p })));
    const out = rs.map((x) => structured<Created>(x));
    expect(out.filter((x) => x.created)).toHaveLength(1);
    expect(new Set(out.map((x) => x.company!.id)).size).toBe(1);
    expect(W().companies(name)).toHaveLength(1);
  });

  it('a name-only create says no duplicate check was possible', async () => {
    const name = unique('Nameonly');
    const r = structured<Created>(await W().w.call('create_company', { name }));
    expect(r).toMatchObject({ created: true, duplicate_check: 'not possible: no phone or email' });
    expect(W().companies(name)).toHaveLength(1);
  });

  it('update_company adds a phone and renames, keeping the phone it had', async () => {
    const name = unique('Upd');
    const [p1, p2] = [phone(), phone()];
    const id = W().seedCompany(name, p1);
    W().reset();
    const r = structured<{ company: Co }>(await W().w.call('update_company', { id, name: `${name} Ltd`, phones_to_add: [p2] }));
    expect(r.company).toMatchObject({ id, name: `${name} Ltd`, phones: [p1, p2] });
    expect(W().companies(`${name} Ltd`)).toEqual([{ id, phones: [p1, p2] }]);
    if (crm === 'kommo') {
      expect(W().writes()).toEqual([`PATCH /api/v4/companies/${id}`]);
      const sent = body(kemu.requests.find((q) => q.method === 'PATCH')!) as Record<string, unknown>;
      expect(sent).toEqual({
        name: `${name} Ltd`,
        custom_fields_values: [
          {
            field_code: 'PHONE',
            values: [
              { value: p1, enum_code: 'WORK' },
              { value: p2, enum_code: 'WORK' },
            ],
          },
        ],
      });
    } else {
      expect(W().writes()).toEqual(['crm.company.update']);
      expect(body(bemu.requests.find((q) => q.path.endsWith('crm.company.update.json'))!)).toEqual({
        id,
        fields: { TITLE: `${name} Ltd`, PHONE: [{ VALUE: p2, VALUE_TYPE: 'WORK' }] },
      });
    }
  });

  it('removing a phone is a delete: refused without CRM_ALLOW_DELETE (nothing sent), done with it', async () => {
    const name = unique('Rm');
    const p = phone();
    const id = W().seedCompany(name, p);
    W().reset();
    const refused = await W().w.call('update_company', { id, phones_to_remove: [p] });
    expect(errorOf(refused).code).toBe('policy_denied');
    expect(W().requests()).toHaveLength(0);
    expect(W().companies(name)[0]!.phones).toEqual([p]);
    const done = structured<{ company: Co }>(await W().full.call('update_company', { id, phones_to_remove: [p] }));
    expect(done.company.phones).toEqual([]);
    expect(W().companies(name)[0]!.phones).toEqual([]);
  });

  it('link_contact_to_company links and names the company', async () => {
    const coName = unique('LinkCo');
    const co = W().seedCompany(coName, phone());
    const contact = W().seedContact(unique('Person'));
    W().reset();
    const r = structured<Linked>(await W().w.call('link_contact_to_company', { contact_id: contact, company_id: co }));
    expect(r).toMatchObject({ linked: true, replaced: null, contact: { id: contact, company: { id: co, name: coName } }, company: { id: co, name: coName } });
    expect(r.company.contact_ids).toContain(contact);
    expect(W().contactCompanies(contact)).toEqual([co]);
    if (crm === 'kommo') {
      expect(W().writes()).toEqual([`POST /api/v4/contacts/${contact}/link`]);
      expect(body(kemu.requests.find((q) => q.method === 'POST')!)).toEqual([{ to_entity_id: co, to_entity_type: 'companies' }]);
    } else {
      expect(W().writes()).toEqual(['crm.contact.company.add']);
      expect(body(bemu.requests.find((q) => q.path.endsWith('crm.contact.company.add.json'))!)).toEqual({ id: contact, fields: { COMPANY_ID: co } });
    }
    // Linking again sends nothing.
    W().reset();
    const again = structured<Linked>(await W().w.call('link_contact_to_company', { contact_id: contact, company_id: co }));
    expect(again.linked).toBe(false);
    expect(W().writes()).toEqual([]);
  });

  it('linking a contact that has another company: Kommo replaces it only when asked, under delete; Bitrix24 adds', async () => {
    const [oldName, newName] = [unique('OldCo'), unique('NewCo')];
    const [oldCo, newCo] = [W().seedCompany(oldName, phone()), W().seedCompany(newName, phone())];
    const contact = W().seedContact(unique('Mover'), oldCo);
    W().reset();
    if (crm === 'kommo') {
      const refused = await W().full.call('link_contact_to_company', { contact_id: contact, company_id: newCo });
      expect(errorOf(refused)).toMatchObject({ code: 'validation' });
      expect(errorOf(refused).message).toMatch(/replace_existing/);
      const denied = await W().w.call('link_contact_to_company', { contact_id: contact, company_id: newCo, replace_existing: true });
      expect(errorOf(denied).code).toBe('policy_denied');
      expect(W().writes()).toEqual([]);
      expect(W().contactCompanies(contact)).toEqual([oldCo]);
      const r = structured<Linked>(await W().full.call('link_contact_to_company', { contact_id: contact, company_id: newCo, replace_existing: true }));
      expect(r).toMatchObject({ linked: true, replaced: { id: oldCo, name: oldName }, contact: { company: { id: newCo, name: newName } } });
      expect(r.note).toMatch(/no longer linked/);
      expect(W().contactCompanies(contact)).toEqual([newCo]);
    } else {
      const r = structured<Linked>(await W().w.call('link_contact_to_company', { contact_id: contact, company_id: newCo }));
      expect(r).toMatchObject({ linked: true, replaced: null });
      expect(W().contactCompanies(contact)).toEqual([oldCo, newCo]);
    }
  });

  it.each([
    ['create_company', { name: '' }],
    ['create_company', { name: 'Bad phone Co', phone: '12345' }],
    ['create_company', { name: 'Bad email Co', email: 'not-an-email' }],
    ['update_company', { id: 'abc', name: 'X' }],
    ['update_company', { id: 1 }],
    ['link_contact_to_company', { contact_id: 1 }],
    ['link_contact_to_company', { contact_id: 'x', company_id: 1 }],
  ])('bad input to %s: an error, and no write', async (tool, args) => {
    W().reset();
    const r = await W().w.call(tool, args);
    expect(r.isError).toBe(true);
    expect(W().writes()).toEqual([]);
  });

  it('create-only mode lists create_company only, and refuses update_company and link_contact_to_company unsent', async () => {
    const co = W().seedCompany(unique('Ro'), phone());
    const contact = W().seedContact(unique('Ro person'));
    const names = (await W().createOnly.client.listTools()).tools.map((t) => t.name);
    expect(names).toContain('create_company');
    expect(names).not.toContain('update_company');
    expect(names).not.toContain('link_contact_to_company');
    W().reset();
    for (const [tool, args] of [
      ['update_company', { id: co, name: 'Nope' }],
      ['link_contact_to_company', { contact_id: contact, company_id: co }],
    ] as const) {
      const refused = await W()
        .createOnly.call(tool, args)
        .then(
          (r) => r.isError === true,
          () => true,
        );
      expect(refused).toBe(true);
    }
    expect(W().requests()).toHaveLength(0);
    expect(W().contactCompanies(contact)).toEqual([]);
  });

  it('a CRM failure on create is a clear error, and no company is made', async () => {
    const name = unique('Fails');
    W().failCreate();
    const r = await W().w.call('create_company', { name, email: `fails-${crm}-${n}@example.org` });
    const e = errorOf(r);
    expect(e.message.length).toBeGreaterThan(10);
    expect(e.code).not.toBe('internal');
    expect(W().companies(name)).toEqual([]);
  });
});
