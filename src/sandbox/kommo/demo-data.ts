/**
 * Deterministic demo data for the Kommo emulator: the same seed gives the same account on every run (only
 * timestamps move with the current day). Ids start from realistic values; phones are stored in the mixed
 * formats real accounts are full of (§6), emails in mixed case.
 */
import { seededRandom } from '../harness.js';
import { recordEvent, refreshClosestTask } from './store.js';
import { addUnsorted } from './unsorted.js';
import type {
  EntityType,
  KCompany,
  KContact,
  KCustomField,
  KCustomFieldValue,
  KLead,
  KNote,
  KPipeline,
  KRightsSet,
  KStatus,
  KTagRef,
  KTask,
  KUser,
  KommoState,
} from './types.js';

/** Well-known ids and values tests can rely on (independent of the seed). */
export const DEMO = {
  accountName: 'Sandbox Trading',
  adminUserId: 6500101,
  userIds: [6500101, 6500102, 6500103, 6500104, 6500105],
  mainPipelineId: 7700101,
  pipelineIds: [7700101, 7700102, 7700103],
  /** The main pipeline's incoming-leads stage (type 1) and its first regular stage. */
  mainIncomingStatusId: 55100101,
  mainFirstStatusId: 55100102,
  wonStatusId: 142,
  lostStatusId: 143,
  ivanContactId: 2000001,
  ivanLeadId: 1000001,
  ivanCompanyId: 3000001,
  ivanName: 'Ivan Petrov',
  ivanLeadName: 'Ivan Petrov — website order',
  ivanCompanyName: 'Petrov Logistics LLC',
  /** Stored exactly like this; `9123456789` is its national digits. */
  ivanPhone: '+7 912 345-67-89',
  ivanEmail: 'Ivan.Petrov@example.com',
  /** A customer with 100 bonus points and no transactions. */
  customerId: 4000001,
  leadFields: { source: 910001, orderNumber: 910002, discount: 910003, deliveryDate: 910004, services: 910005, paid: 910006 },
  contactFields: { phone: 910101, email: 910102, position: 910103, channel: 910104 },
  companyFields: { phone: 910201, email: 910202, web: 910203, address: 910204, industry: 910205, employees: 910206 },
  counts: { users: 5, pipelines: 3, companies: 64, contacts: 160, leads: 230 },
} as const;

const DAY = 86_400;

export function emptyState(accountId: number, subdomain: string, now: number): KommoState {
  const mk = <T>() => ({ leads: new Map<number, T>(), contacts: new Map<number, T>(), companies: new Map<number, T>() });
  return {
    account: {
      id: accountId,
      name: DEMO.accountName,
      subdomain,
      created_at: now - 400 * DAY,
      created_by: 0,
      updated_at: now - 30 * DAY,
      updated_by: 0,
      // RU account: phone numbers without a country code (8 (912) …) are Russian.
      country: 'RU',
      currency: 'RUB',
      currency_symbol: '₽',
      customers_mode: 'disabled',
      is_unsorted_on: true,
      is_loss_reason_enabled: true,
      is_helpbot_enabled: false,
      is_technical_account: false,
      contact_name_display_order: 1,
      amojo_id: '5f1e8a62-3c4b-4d7e-9a21-6b0c2d9e4f11',
      version: 11,
      users_groups: [
        { id: 0, name: 'Sales', uuid: null },
        { id: 412001, name: 'Key accounts', uuid: null },
      ],
      // §9: standard task types 1 = Follow-up, 2 = Meeting.
      task_types: [
        { id: 1, name: 'Follow-up', color: null, icon_id: null, code: 'FOLLOW_UP' },
        { id: 2, name: 'Meeting', color: null, icon_id: null, code: 'MEETING' },
      ],
    },
    users: new Map(),
    pipelines: new Map(),
    leads: new Map(),
    contacts: new Map(),
    companies: new Map(),
    customFields: mk<KCustomField>(),
    tags: mk(),
    notes: mk<KNote>(),
    tasks: new Map(),
    events: [],
    webhooks: new Map(),
    customers: new Map(),
    transactions: new Map(),
    nextId: {
      lead: 1000001,
      contact: 2000001,
      company: 3000001,
      tag: 50001,
      note: 90000001,
      task: 30000001,
      webhook: 1,
      event: 1,
      customer: 4000001,
      transaction: 4500001,
      field: 911001,
      enum: 1520001,
    },
  };
}

// ---------------------------------------------------------------- metadata (always present)

function rights(all: string, del: string): KRightsSet {
  return { view: all, edit: all, add: all, delete: del, export: all };
}

function seedUsers(s: KommoState): void {
  const people: Array<[string, string, boolean, number]> = [
    ['Anna Smirnova', 'anna.smirnova', true, 0],
    ['Dmitry Volkov', 'dmitry.volkov', false, 0],
    ['Emily Clarke', 'emily.clarke', false, 412001],
    ['Pavel Orlov', 'pavel.orlov', false, 0],
    ['Sofia Martins', 'sofia.martins', false, 412001],
  ];
  people.forEach(([name, login, admin, group], i) => {
    const id = DEMO.userIds[i]!;
    const r = admin ? rights('A', 'A') : rights('A', 'D');
    s.users.set(id, {
      id,
      name,
      email: `${login}@sandbox-trading.example`,
      lang: i === 2 ? 'en' : 'ru',
      rights: {
        leads: r,
        contacts: r,
        companies: r,
        tasks: { edit: 'A', delete: admin ? 'A' : 'D' },
        mail_access: true,
        catalog_access: admin,
        status_rights: [],
        is_admin: admin,
        is_free: false,
        is_active: true,
        group_id: group,
        role_id: null,
      },
    } satisfies KUser);
  });
}

// §7: allowed status colors (SDK list).
const COLORS = [
  '#fffeb2',
  '#fffd7f',
  '#fff000',
  '#ffeab2',
  '#ffdc7f',
  '#ffce5a',
  '#ffdbdb',
  '#ffc8c8',
  '#ff8f92',
  '#d6eaff',
  '#c1e0ff',
  '#98cbff',
  '#ebffb1',
  '#deff81',
  '#87f2c0',
  '#f9deff',
  '#f3beff',
  '#ccc8f9',
  '#eb93ff',
  '#f2f3f4',
  '#e6e8ea',
];

function seedPipelines(s: KommoState): void {
  const defs: Array<[string, string[]]> = [
    ['Sales', ['New inquiry', 'Qualification', 'Proposal sent', 'Negotiation']],
    ['Wholesale', ['First contact', 'Quote sent', 'Contract']],
    ['Renewals', ['Renewal due', 'Invoice sent', 'Awaiting payment']],
  ];
  defs.forEach(([name, stages], pi) => {
    const id = DEMO.pipelineIds[pi]!;
    const account_id = s.account.id;
    const base = 55100101 + pi * 100;
    // §7: incoming leads (type 1) first, regular stages, then 142 (won, sort 10000) and 143 (lost, 11000).
    const statuses: KStatus[] = [
      { id: base, name: 'Incoming leads', sort: 10, is_editable: false, pipeline_id: id, color: '#c1e0ff', type: 1, account_id },
      ...stages.map((st, i): KStatus => ({
        id: base + 1 + i,
        name: st,
        sort: 20 + i * 10,
        is_editable: true,
        pipeline_id: id,
        color: COLORS[(pi * 5 + i * 3) % 19]!,
        type: 0,
        account_id,
      })),
      { id: 142, name: 'Closed - won', sort: 10000, is_editable: false, pipeline_id: id, color: '#ccc8f9', type: 0, account_id },
      { id: 143, name: 'Closed - lost', sort: 11000, is_editable: false, pipeline_id: id, color: '#f2f3f4', type: 0, account_id },
    ];
    s.pipelines.set(id, {
      id,
      name,
      sort: pi + 1,
      is_main: pi === 0,
      is_unsorted_on: true,
      is_archive: false,
      account_id,
      _embedded: { statuses },
    } satisfies KPipeline);
  });
}

function field(
  s: KommoState,
  entity: EntityType,
  id: number,
  name: string,
  type: string,
  opts: { code?: string; enums?: Array<[number, string]>; predefined?: boolean; sort?: number } = {},
): void {
  s.customFields[entity].set(id, {
    id,
    name,
    type,
    account_id: s.account.id,
    code: opts.code ?? null,
    sort: opts.sort ?? 500,
    is_api_only: false,
    enums: opts.enums ? opts.enums.map(([eid, value], i) => ({ id: eid, value, sort: (i + 1) * 2 })) : null,
    group_id: null,
    required_statuses: [],
    is_deletable: !opts.predefined,
    is_predefined: !!opts.predefined,
    entity_type: entity,
    tracking_callback: null,
    remind: null,
    triggers: [],
    currency: null,
    hidden_statuses: [],
    chained_lists: null,
  });
}

const enums = (start: number, values: string[]): Array<[number, string]> => values.map((v, i) => [start + i, v]);
// §6: enum codes of the predefined multitext fields.
const PHONE_ENUMS = ['WORK', 'WORKDD', 'MOB', 'FAX', 'HOME', 'OTHER'];
const EMAIL_ENUMS = ['WORK', 'PRIV', 'OTHER'];

function seedFields(s: KommoState): void {
  const L = DEMO.leadFields;
  field(s, 'leads', L.source, 'Source', 'select', { enums: enums(1510001, ['Website', 'Referral', 'Cold call', 'Exhibition', 'Partner']), sort: 502 });
  field(s, 'leads', L.orderNumber, 'Order number', 'text', { sort: 504 });
  field(s, 'leads', L.discount, 'Discount, %', 'numeric', { sort: 506 });
  field(s, 'leads', L.deliveryDate, 'Delivery date', 'date', { sort: 508 });
  field(s, 'leads', L.services, 'Services', 'multiselect', { enums: enums(1510011, ['Delivery', 'Installation', 'Training', 'Extended warranty']), sort: 510 });
  field(s, 'leads', L.paid, 'Paid', 'checkbox', { sort: 512 });
  const C = DEMO.contactFields;
  field(s, 'contacts', C.phone, 'Phone', 'multitext', { code: 'PHONE', enums: enums(1510101, PHONE_ENUMS), predefined: true, sort: 4 });
  field(s, 'contacts', C.email, 'Email', 'multitext', { code: 'EMAIL', enums: enums(1510111, EMAIL_ENUMS), predefined: true, sort: 6 });
  field(s, 'contacts', C.position, 'Position', 'text', { code: 'POSITION', predefined: true, sort: 2 });
  field(s, 'contacts', C.channel, 'Preferred channel', 'select', { enums: enums(1510121, ['Phone', 'Email', 'Messenger']), sort: 502 });
  const K = DEMO.companyFields;
  field(s, 'companies', K.phone, 'Phone', 'multitext', { code: 'PHONE', enums: enums(1510201, PHONE_ENUMS), predefined: true, sort: 4 });
  field(s, 'companies', K.email, 'Email', 'multitext', { code: 'EMAIL', enums: enums(1510211, EMAIL_ENUMS), predefined: true, sort: 6 });
  field(s, 'companies', K.web, 'Web', 'url', { code: 'WEB', predefined: true, sort: 8 });
  field(s, 'companies', K.address, 'Address', 'textarea', { code: 'ADDRESS', predefined: true, sort: 10 });
  field(s, 'companies', K.industry, 'Industry', 'select', {
    enums: enums(1510221, ['Retail', 'Manufacturing', 'Logistics', 'IT', 'Food & beverage', 'Construction']),
    sort: 502,
  });
  field(s, 'companies', K.employees, 'Employees', 'numeric', { sort: 504 });
}

/** Builds a stored value in the read shape (§8): field_name/field_type added, enum codes for multitext. */
export function cfValue(s: KommoState, entity: EntityType, fieldId: number, values: Array<string | number | boolean>, enumCodes?: string[]): KCustomFieldValue {
  const def = s.customFields[entity].get(fieldId);
  if (!def) throw new Error(`demo data: no field ${fieldId}`);
  return {
    field_id: def.id,
    field_name: def.name,
    field_code: def.code,
    field_type: def.type,
    values: values.map((v, i) => {
      if (def.type === 'select' || def.type === 'multiselect') {
        const e = def.enums!.find((x) => x.value === v)!;
        return { value: e.value, enum_id: e.id };
      }
      if (def.type === 'multitext') {
        const code = enumCodes?.[i] ?? 'WORK';
        return { value: v, enum_id: def.enums!.find((x) => x.value === code)!.id, enum: code };
      }
      // Numeric values are stored as strings, like the write path does.
      return { value: def.type === 'numeric' ? String(v) : v };
    }),
  };
}

function tag(s: KommoState, entity: EntityType, id: number, name: string, color: string | null = null): void {
  s.tags[entity].set(id, { id, name, color, entity });
}

function seedTags(s: KommoState): void {
  ['website', 'vip', 'repeat', 'wholesale', 'urgent', 'b2b', 'promo', 'exhibition'].forEach((n, i) =>
    tag(s, 'leads', 40001 + i, n, i === 1 ? '#ff8f92' : null),
  );
  ['newsletter', 'vip', 'partner', 'decision maker'].forEach((n, i) => tag(s, 'contacts', 41001 + i, n));
  ['key account', 'supplier', 'reseller'].forEach((n, i) => tag(s, 'companies', 42001 + i, n));
}

/** Metadata every emulator has, demo or not: account, users, pipelines, custom fields, tags. */
export function seedMetadata(s: KommoState): void {
  seedUsers(s);
  seedPipelines(s);
  seedFields(s);
  seedTags(s);
}

// ---------------------------------------------------------------- records (demo only)

const FIRST = [
  'Anna',
  'Alexei',
  'Dmitry',
  'Elena',
  'Olga',
  'Sergei',
  'Maria',
  'Natalia',
  'Pavel',
  'Yulia',
  'Igor',
  'Tatiana',
  'Mikhail',
  'Irina',
  'Andrei',
  'Ivan',
  'James',
  'Emily',
  'Oliver',
  'Sophie',
  'Liam',
  'Chloe',
  'Noah',
  'Jack',
  'Mia',
  'Lucas',
  'Hannah',
  'Viktor',
  'Ksenia',
  'Roman',
];
const LAST = [
  'Ivanov',
  'Smirnov',
  'Kuznetsov',
  'Popov',
  'Sokolov',
  'Lebedev',
  'Kozlov',
  'Novikov',
  'Morozov',
  'Petrov',
  'Volkov',
  'Fedorov',
  'Pavlov',
  'Semenov',
  'Egorov',
  'Smith',
  'Jones',
  'Taylor',
  'Brown',
  'Wilson',
  'Evans',
  'Walker',
  'Wright',
  'Harris',
  'Clarke',
  'Baker',
];
const FEMALE = new Set(['Anna', 'Elena', 'Olga', 'Maria', 'Natalia', 'Yulia', 'Tatiana', 'Irina', 'Ksenia']);
const RU_LAST = new Set(LAST.slice(0, 15));
const CO_A = [
  'Nordwind',
  'Volga',
  'Baltic',
  'Ural',
  'Polar',
  'Aurora',
  'Granite',
  'Blue River',
  'Redstone',
  'Kestrel',
  'Meridian',
  'Harbor',
  'Summit',
  'Orion',
  'Atlas',
  'Cedar',
  'Falcon',
  'Vega',
  'Delta',
  'Taiga',
  'Amber',
  'Sibir',
];
const CO_B = ['Logistics', 'Trading', 'Foods', 'Systems', 'Retail', 'Engineering', 'Textiles', 'Pharma', 'Media', 'Construction'];
const CO_C = ['LLC', 'Ltd', 'JSC', 'GmbH', 'Inc.'];
const PRODUCTS = [
  'Office chairs',
  'Standing desks',
  'Laptop fleet',
  'Website redesign',
  'CRM setup',
  'Annual support',
  'Printer paper (bulk)',
  'Coffee machines',
  'Warehouse shelving',
  'Van lease',
  'Security audit',
  'Cloud backup',
  'LED lighting',
  'Meeting room AV',
  'Staff training',
  'Spare parts',
];
const POSITIONS = ['CEO', 'Procurement manager', 'Office manager', 'CFO', 'Head of IT', 'Logistics lead', 'Owner'];
const STREETS = ['Tverskaya St 12, Moscow', 'Nevsky Prospekt 28, St Petersburg', '221B Baker St, London', 'Lenina St 5, Kazan', 'Market St 100, Manchester'];
const NOTE_TEXTS = [
  'Asked for a detailed quote.',
  'Client prefers delivery on Mondays.',
  'Sent the price list by email.',
  'Discussed payment terms: 50% upfront.',
  'Decision expected next week.',
  'Competitor offered 5% less.',
  'Needs approval from the CFO.',
];
const TASK_TEXTS = [
  'Call back about the quote',
  'Send the contract draft',
  'Meeting at the client office',
  'Confirm delivery date',
  'Follow up on the invoice',
  'Prepare a demo',
];

export function seedDemo(s: KommoState, seed: number, now: number): void {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const digitsN = (n: number) => Array.from({ length: n }, () => String(int(0, 9))).join('');
  const anchor = Math.floor(now / DAY) * DAY; // stable within a day
  const users = DEMO.userIds;
  const usedPhones = new Set<string>(['79123456789']);
  const usedEmails = new Set<string>([DEMO.ivanEmail.toLowerCase()]);
  const account_id = s.account.id;
  const groupOf = (u: number) => s.users.get(u)?.rights.group_id ?? 0;

  // §6: stored phone strings are whatever people typed. Ranges avoid the well-known test numbers.
  const phone = (): string => {
    for (;;) {
      const kind = rnd();
      let stored: string;
      if (kind < 0.75) {
        const n = `9${int(0, 8)}${digitsN(8)}`;
        if (n.startsWith('99') || n === '9123456789') continue;
        const [a, b, c, d] = [n.slice(0, 3), n.slice(3, 6), n.slice(6, 8), n.slice(8)];
        stored = pick([`+7 ${a} ${b}-${c}-${d}`, `8 (${a}) ${b} ${c} ${d}`, `7${n}`, `+7${n}`, `8${n}`, `8-${a}-${b}-${c}-${d}`, `+7 (${a}) ${b}-${c}-${d}`]);
      } else if (kind < 0.9) {
        const t = String(int(500, 999)); // Ofcom drama range 020 7946 0xxx
        stored = pick([`+44 20 7946 0${t}`, `+442079460${t}`, `020 7946 0${t}`]);
      } else {
        const t = String(int(10, 99)); // fictional 555-01xx
        stored = pick([`+1 (312) 555-01${t}`, `+131255501${t}`, `+1 312 555 01${t}`]);
      }
      const key = stored.replace(/\D/g, '').slice(-10);
      if (usedPhones.has(key)) continue;
      usedPhones.add(key);
      return stored;
    }
  };
  const email = (first: string, last: string, domain: string): string => {
    for (let n = 0; ; n++) {
      const local =
        pick([`${first}.${last}`, `${first}.${last}`.toLowerCase(), `${first}.${last}`.toUpperCase(), `${first[0]}.${last}`.toLowerCase(), `${first}${last}`]) +
        (n ? String(n) : '');
      const e = `${local}@${domain}`;
      if (!usedEmails.has(e.toLowerCase())) {
        usedEmails.add(e.toLowerCase());
        return e;
      }
    }
  };
  const past = (maxDays: number) => anchor - int(3600, maxDays * DAY);
  const tagRefs = (entity: EntityType, max: number): KTagRef[] => {
    const all = [...s.tags[entity].values()];
    const out = new Map<number, KTagRef>();
    for (let i = int(0, max); i > 0; i--) {
      const t = pick(all);
      out.set(t.id, { id: t.id, name: t.name, color: t.color });
    }
    return [...out.values()];
  };

  // Companies (Petrov Logistics first: a stable id).
  const coNames = new Set<string>();
  const K = DEMO.companyFields;
  for (let i = 0; i < DEMO.counts.companies; i++) {
    let name: string = DEMO.ivanCompanyName;
    while (i > 0 && (coNames.has(name) || name === DEMO.ivanCompanyName)) name = `${pick(CO_A)} ${pick(CO_B)} ${pick(CO_C)}`;
    coNames.add(name);
    const slug = name
      .toLowerCase()
      .replace(/[^a-z]+/g, '-')
      .replace(/^-|-$/g, '');
    const cf: KCustomFieldValue[] = [];
    if (i === 0 || rnd() < 0.6) cf.push(cfValue(s, 'companies', K.phone, [phone()]));
    if (rnd() < 0.5) cf.push(cfValue(s, 'companies', K.email, [pick(['info', 'Sales', 'OFFICE']) + `@${slug}.example`]));
    if (rnd() < 0.5) cf.push(cfValue(s, 'companies', K.web, [`https://${slug}.example`]));
    if (rnd() < 0.4) cf.push(cfValue(s, 'companies', K.address, [pick(STREETS)]));
    if (rnd() < 0.7) cf.push(cfValue(s, 'companies', K.industry, [pick(['Retail', 'Manufacturing', 'Logistics', 'IT', 'Food & beverage', 'Construction'])]));
    if (rnd() < 0.5) cf.push(cfValue(s, 'companies', K.employees, [int(3, 2500)]));
    const created = i === 0 ? anchor - 40 * DAY : past(365);
    const resp = pick(users);
    const id = s.nextId.company++;
    s.companies.set(id, {
      id,
      name,
      responsible_user_id: resp,
      group_id: groupOf(resp),
      created_by: resp,
      updated_by: resp,
      created_at: created,
      updated_at: created + int(0, anchor - created),
      closest_task_at: null,
      custom_fields_values: cf.length ? cf : null,
      account_id,
      _embedded: { tags: i === 0 ? [] : tagRefs('companies', rnd() < 0.8 ? 0 : 1) },
    } satisfies KCompany);
  }
  const companyIds = [...s.companies.keys()];

  // Contacts (Ivan first).
  const C = DEMO.contactFields;
  for (let i = 0; i < DEMO.counts.contacts; i++) {
    let first = 'Ivan';
    let last = 'Petrov';
    while (i > 0 && first === 'Ivan' && last === 'Petrov') {
      first = pick(FIRST);
      last = pick(LAST);
    }
    if (i > 0 && FEMALE.has(first) && RU_LAST.has(last)) last = `${last}a`;
    const cf: KCustomFieldValue[] = [];
    let companyId: number | undefined;
    if (i === 0) {
      cf.push(cfValue(s, 'contacts', C.phone, [DEMO.ivanPhone], ['MOB']));
      cf.push(cfValue(s, 'contacts', C.email, [DEMO.ivanEmail], ['WORK']));
      cf.push(cfValue(s, 'contacts', C.position, ['Procurement manager']));
      companyId = DEMO.ivanCompanyId;
    } else {
      const nPhones = rnd() < 0.15 ? 0 : rnd() < 0.2 ? 2 : 1;
      if (nPhones)
        cf.push(
          cfValue(
            s,
            'contacts',
            C.phone,
            Array.from({ length: nPhones }, phone),
            Array.from({ length: nPhones }, () => pick(['WORK', 'MOB', 'MOB', 'HOME'])),
          ),
        );
      if (rnd() < 0.75)
        cf.push(
          cfValue(s, 'contacts', C.email, [email(first, last, pick(['example.com', 'example.org', 'example.net', 'mail.example']))], [pick(['WORK', 'PRIV'])]),
        );
      if (rnd() < 0.4) cf.push(cfValue(s, 'contacts', C.position, [pick(POSITIONS)]));
      if (rnd() < 0.3) cf.push(cfValue(s, 'contacts', C.channel, [pick(['Phone', 'Email', 'Messenger'])]));
      if (rnd() < 0.7) companyId = pick(companyIds.slice(1));
    }
    const created = i === 0 ? anchor - 12 * DAY : past(365);
    const resp = i === 0 ? DEMO.adminUserId : pick(users);
    const id = s.nextId.contact++;
    s.contacts.set(id, {
      id,
      name: `${first} ${last}`,
      first_name: first,
      last_name: last,
      responsible_user_id: resp,
      group_id: groupOf(resp),
      created_by: resp,
      updated_by: resp,
      created_at: created,
      updated_at: i === 0 ? created : created + int(0, anchor - created),
      closest_task_at: null,
      custom_fields_values: cf.length ? cf : null,
      account_id,
      _embedded: { tags: i === 0 ? [] : tagRefs('contacts', rnd() < 0.85 ? 0 : 1), companies: companyId ? [{ id: companyId }] : [] },
    } satisfies KContact);
  }
  const contactIds = [...s.contacts.keys()].slice(1);

  // Leads (Ivan's first).
  const L = DEMO.leadFields;
  const pipelines = [...s.pipelines.values()];
  for (let i = 0; i < DEMO.counts.leads; i++) {
    const id = s.nextId.lead++;
    if (i === 0) {
      const created = anchor - 12 * DAY + 600;
      s.leads.set(id, {
        ...baseLead(id, account_id),
        name: DEMO.ivanLeadName,
        price: 48500,
        responsible_user_id: DEMO.adminUserId,
        status_id: DEMO.mainFirstStatusId,
        pipeline_id: DEMO.mainPipelineId,
        created_by: DEMO.adminUserId,
        updated_by: DEMO.adminUserId,
        created_at: created,
        updated_at: created + 3 * DAY,
        custom_fields_values: [cfValue(s, 'leads', L.source, ['Website']), cfValue(s, 'leads', L.orderNumber, ['WEB-2024-0001'])],
        _embedded: {
          tags: [{ id: 40001, name: 'website', color: null }],
          contacts: [{ id: DEMO.ivanContactId, is_main: true }],
          companies: [{ id: DEMO.ivanCompanyId }],
        },
      });
      continue;
    }
    const r = rnd();
    const p = r < 0.6 ? pipelines[0]! : r < 0.8 ? pipelines[1]! : pipelines[2]!;
    const statuses = p._embedded.statuses;
    const sr = rnd();
    // ~8% incoming, ~22% won, ~15% lost, the rest spread over the regular stages.
    const byId = (id: number) => statuses.find((x) => x.id === id)!;
    const status = sr < 0.08 ? statuses[0]! : sr < 0.3 ? byId(142) : sr < 0.45 ? byId(143) : pick(statuses.filter((x) => x.type === 0 && x.id > 143));
    const main = pick(contactIds);
    const contacts = [{ id: main, is_main: true }];
    if (rnd() < 0.25) {
      const other = pick(contactIds);
      if (other !== main) contacts.push({ id: other, is_main: false });
    }
    const mainCompany = s.contacts.get(main)!._embedded.companies[0]?.id ?? (rnd() < 0.15 ? pick(companyIds.slice(1)) : undefined);
    const counterpart = mainCompany ? s.companies.get(mainCompany)!.name : s.contacts.get(main)!.name;
    const cf: KCustomFieldValue[] = [];
    if (rnd() < 0.6) cf.push(cfValue(s, 'leads', L.source, [pick(['Website', 'Referral', 'Cold call', 'Exhibition', 'Partner'])]));
    if (rnd() < 0.3) cf.push(cfValue(s, 'leads', L.orderNumber, [`SO-${2024 + int(0, 1)}-${String(int(1, 9999)).padStart(4, '0')}`]));
    if (rnd() < 0.2) cf.push(cfValue(s, 'leads', L.discount, [pick([5, 10, 15])]));
    if (rnd() < 0.2)
      cf.push(cfValue(s, 'leads', L.services, [...new Set([pick(['Delivery', 'Installation']), pick(['Training', 'Extended warranty', 'Delivery'])])]));
    if (rnd() < 0.1) cf.push(cfValue(s, 'leads', L.deliveryDate, [anchor + int(-60, 60) * DAY]));
    const created = past(365);
    const updated = created + int(0, anchor - created);
    const resp = pick(users);
    const closed = status.id === 142 || status.id === 143;
    s.leads.set(id, {
      ...baseLead(id, account_id),
      name: `${pick(PRODUCTS)} — ${counterpart}`,
      price: rnd() < 0.1 ? 0 : int(50, 5000) * 100,
      responsible_user_id: resp,
      group_id: groupOf(resp),
      status_id: status.id,
      pipeline_id: p.id,
      created_by: pick([resp, DEMO.adminUserId]),
      updated_by: resp,
      created_at: created,
      updated_at: updated,
      closed_at: closed ? updated : null,
      custom_fields_values: cf.length ? cf : null,
      _embedded: { tags: tagRefs('leads', 2), contacts, companies: mainCompany ? [{ id: mainCompany }] : [] },
    });
  }
  const leadIds = [...s.leads.keys()];

  // Notes and tasks.
  for (let i = 0; i < 90; i++) {
    const entity: EntityType = i < 60 ? 'leads' : i < 80 ? 'contacts' : 'companies';
    const ids = entity === 'leads' ? leadIds : entity === 'contacts' ? [...s.contacts.keys()] : companyIds;
    const entityId = i === 0 ? DEMO.ivanLeadId : pick(ids);
    const created = past(200);
    const resp = pick(users);
    const call = entity !== 'companies' && rnd() < 0.25;
    const id = s.nextId.note++;
    s.notes[entity].set(id, {
      id,
      entity_id: entityId,
      created_by: resp,
      updated_by: resp,
      created_at: created,
      updated_at: created,
      responsible_user_id: resp,
      group_id: groupOf(resp),
      account_id,
      note_type: i === 0 ? 'common' : call ? pick(['call_in', 'call_out']) : 'common',
      params:
        i === 0
          ? { text: 'Ordered via the website; wants delivery before the end of the month.' }
          : call
            ? { uniq: `call-${id}`, duration: int(20, 900), source: 'Sandbox PBX', link: `https://pbx.example/rec/${id}.mp3`, phone: phone() }
            : { text: pick(NOTE_TEXTS) },
    } satisfies KNote);
  }
  for (let i = 0; i < 60; i++) {
    const onLead = i === 0 || rnd() < 0.8;
    const entityId = i === 0 ? DEMO.ivanLeadId : onLead ? pick(leadIds) : pick([...s.contacts.keys()]);
    const due = i === 0 ? anchor + 2 * DAY + 36000 : anchor + int(-30, 30) * DAY + int(9, 18) * 3600;
    const done = i > 0 && due < anchor && rnd() < 0.7;
    const resp = pick(users);
    const created = due - int(1, 20) * DAY;
    const id = s.nextId.task++;
    s.tasks.set(id, {
      id,
      created_by: resp,
      updated_by: resp,
      created_at: created,
      updated_at: done ? due : created,
      responsible_user_id: resp,
      group_id: groupOf(resp),
      entity_id: entityId,
      entity_type: onLead ? 'leads' : 'contacts',
      duration: 0,
      is_completed: done,
      task_type_id: rnd() < 0.7 ? 1 : 2,
      text: i === 0 ? 'Confirm delivery date with Ivan' : pick(TASK_TEXTS),
      ...(done ? { result: { text: 'Done' } } : {}),
      complete_till: due,
      account_id,
    } satisfies KTask);
  }
  for (const t of s.tasks.values()) if (t.entity_type && t.entity_id) refreshClosestTask(s, t.entity_type, t.entity_id);

  // §9 events: the history a real account would have for these records.
  for (const c of s.companies.values()) recordEvent(s, 'company_added', 'companies', c.id, c.created_by, c.created_at);
  for (const c of s.contacts.values()) recordEvent(s, 'contact_added', 'contacts', c.id, c.created_by, c.created_at);
  for (const l of s.leads.values()) {
    recordEvent(s, 'lead_added', 'leads', l.id, l.created_by, l.created_at);
    if (l.closed_at)
      recordEvent(s, 'lead_status_changed', 'leads', l.id, l.updated_by, l.closed_at, [{ lead_status: { id: l.status_id, pipeline_id: l.pipeline_id } }]);
  }
  s.events.sort((a, b) => a.created_at - b.created_at);
  seedCustomers(s, anchor);
  seedIncoming(s, anchor);
}

/** §12: one customer with bonus points to spend; seeded last, without the PRNG, so the other records do not move. */
function seedCustomers(s: KommoState, anchor: number): void {
  const id = s.nextId.customer++;
  s.customers.set(id, {
    id,
    name: 'Loyal Buyer',
    responsible_user_id: DEMO.adminUserId,
    created_by: DEMO.adminUserId,
    updated_by: DEMO.adminUserId,
    created_at: anchor - 90 * DAY,
    updated_at: anchor - 10 * DAY,
    is_deleted: false,
    ltv: 0,
    purchases_count: 0,
    bonus_points: 100,
    account_id: s.account.id,
  });
}

function baseLead(id: number, account_id: number): KLead {
  return {
    id,
    name: '',
    price: 0,
    responsible_user_id: DEMO.adminUserId,
    group_id: 0,
    status_id: DEMO.mainFirstStatusId,
    pipeline_id: DEMO.mainPipelineId,
    loss_reason_id: null,
    source_id: null,
    created_by: 0,
    updated_by: 0,
    created_at: 0,
    updated_at: 0,
    closed_at: null,
    closest_task_at: null,
    is_deleted: false,
    custom_fields_values: null,
    score: null,
    account_id,
    is_price_modified_by_robot: false,
    _embedded: { tags: [], contacts: [], companies: [] },
  };
}

/**
 * §12: three incoming leads waiting in the main pipeline (a call from an unknown number, a form, a chat);
 * seeded after everything else, without the PRNG, so the other records keep their ids.
 */
function seedIncoming(s: KommoState, anchor: number): void {
  const at = Math.floor(anchor) - 3600;
  addUnsorted(s, {
    uid: 'demo0sip0000000000000000000000000000001',
    source_uid: 'demo-call-1',
    source_name: 'Office line',
    category: 'sip',
    created_at: at,
    metadata: {
      uniq: 'demo-call-1',
      duration: 42,
      service_code: 'demo',
      phone: '+79990001122',
      called_at: at,
      from: '+79990001122',
      is_call_event_needed: true,
    },
    contact: { name: '+79990001122', phone: '+79990001122' },
    lead_name: 'Call from +79990001122',
    responsible: DEMO.adminUserId,
  });
  addUnsorted(s, {
    uid: 'demo0forms00000000000000000000000000002',
    source_uid: 'demo-form-1',
    source_name: 'Website',
    category: 'forms',
    created_at: at + 600,
    metadata: {
      form_id: 'contact',
      form_name: 'Contact us',
      form_page: 'https://example.com/contact',
      form_sent_at: at + 600,
      ip: '203.0.113.7',
      referer: 'https://example.com/',
    },
    contact: { name: 'Olga Smirnova', phone: '+79990003344' },
    lead_name: 'Website request: Olga Smirnova',
    responsible: DEMO.adminUserId,
  });
  addUnsorted(s, {
    uid: 'demo0chats00000000000000000000000000003',
    source_uid: 'demo-chat-1',
    source_name: 'WhatsApp',
    category: 'chats',
    created_at: at + 1200,
    metadata: { from: 'Pavel', service: 'whatsapp', client: { name: 'Pavel' } },
    contact: { name: 'Pavel' },
    lead_name: 'Chat: Pavel',
    responsible: DEMO.adminUserId,
  });
}
