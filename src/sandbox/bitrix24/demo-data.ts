/**
 * Deterministic demo portal: 3 deal pipelines, 1,200 deals, 120 leads, 160 contacts with phones in mixed
 * formats, 60 companies, 75 users (5 well-known), user fields (one enumeration per entity type that has one), timeline
 * comments, activities and tasks. The well-known records in DEMO are placed the same way for every seed.
 */
import { seededRandom } from '../harness.js';
import { createRecord } from './crm.js';
import { emptyState, makeStatus, nextId, type BCategory, type BRecord, type BUser, type BUserField, type BitrixState } from './state.js';
import { phpDate } from './time.js';

/** Well-known demo records (ids are stable across seeds). */
export const DEMO = {
  /** Webhook owner / default user (admin). */
  userId: 1,
  users: { anna: 1, boris: 2, maria: 3, dmitry: 4, emily: 5 },
  /** Deal pipelines (0 = default "General"). */
  categories: { general: 0, wholesale: 1, partners: 3 },
  ivan: {
    contactId: 1,
    name: 'Ivan Petrov',
    /** Stored exactly like this (E.164); other formats of it match through the core's phone match code (phone.ts). */
    phone: '+79123456789',
    email: 'ivan.petrov@example.com',
    companyId: 1,
    leadId: 1,
    /** Open deal in the default pipeline. */
    dealId: 1,
    /** Won deal in the Wholesale pipeline. */
    wonDealId: 2,
  },
  /** Two contacts for the same person: same number in different formats, same email in different case. */
  olga: {
    contactIds: [2, 3] as const,
    phones: ['+7 916 555-12-34', '89165551234'] as const,
    emails: ['Olga.Smirnova@Example.com', 'olga.smirnova@example.com'] as const,
  },
  userFields: {
    lead: { comment: 'UF_CRM_1700000001', quality: 'UF_CRM_1700000002', newsletter: 'UF_CRM_1700000003' },
    deal: { delivery: 'UF_CRM_1700000101', contract: 'UF_CRM_1700000102', discount: 'UF_CRM_1700000103' },
    contact: { messenger: 'UF_CRM_1700000201' },
    company: { taxId: 'UF_CRM_1700000301' },
  },
  /** Enumeration options: lead quality and deal delivery type. */
  enums: { quality: { hot: '41', warm: '42', cold: '43' }, delivery: { pickup: '51', courier: '52', post: '53' } },
  counts: { deals: 1200, leads: 120, contacts: 160, companies: 60, users: 75 },
} as const;

/** The demo "today": records are spread over the two years before it. */
export const DEMO_NOW = Date.UTC(2025, 5, 30, 9, 0, 0);

// ---------------------------------------------------------------- directories

function addStatuses(s: BitrixState): void {
  const push = (...rows: ReturnType<typeof makeStatus>[]) => s.statuses.push(...rows);
  // Lead statuses (§7.2): NEW … CONVERTED (success) / JUNK (failure).
  push(
    makeStatus(s, 'STATUS', 'NEW', 'Unprocessed', 10, { system: true, color: '#39A8EF', extra: 'process' }),
    makeStatus(s, 'STATUS', 'IN_PROCESS', 'In progress', 20, { color: '#2FC6F6', extra: 'process' }),
    makeStatus(s, 'STATUS', 'PROCESSED', 'Processed', 30, { color: '#55D0E0', extra: 'process' }),
    makeStatus(s, 'STATUS', 'CONVERTED', 'Good lead', 40, { system: true, color: '#7BD500', semantics: 'S', extra: 'success' }),
    makeStatus(s, 'STATUS', 'JUNK', 'Junk lead', 50, { system: true, color: '#FF5752', semantics: 'F', extra: 'failure' }),
  );
  const sources: Array<[string, string]> = [
    ['CALL', 'Call'],
    ['EMAIL', 'E-Mail'],
    ['WEB', 'Website'],
    ['ADVERTISING', 'Advertising'],
    ['PARTNER', 'Partner'],
    ['RECOMMENDATION', 'Recommendation'],
    ['TRADE_SHOW', 'Trade show'],
    ['WEBFORM', 'CRM form'],
    ['CALLBACK', 'Callback'],
    ['OTHER', 'Other'],
  ];
  sources.forEach(([id, name], i) => push(makeStatus(s, 'SOURCE', id, name, (i + 1) * 10, { system: true })));
  // Deal stages (§7.6): the default pipeline without a prefix, others `C{n}:`.
  push(
    makeStatus(s, 'DEAL_STAGE', 'NEW', 'New', 10, { system: true, color: '#39A8EF', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE', 'PREPARATION', 'Document preparation', 20, { color: '#2FC6F6', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE', 'PREPAYMENT_INVOICE', 'Invoice', 30, { color: '#55D0E0', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE', 'EXECUTING', 'In progress', 40, { color: '#47E4C2', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE', 'FINAL_INVOICE', 'Final invoice', 50, { color: '#FFA900', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE', 'WON', 'Deal won', 60, { system: true, color: '#7BD500', semantics: 'S', extra: 'success' }),
    makeStatus(s, 'DEAL_STAGE', 'LOSE', 'Deal lost', 70, { system: true, color: '#FF5752', semantics: 'F', extra: 'failure' }),
  );
  const DT: Array<[string, string]> = [
    ['SALE', 'Sales'],
    ['COMPLEX', 'Complex sale'],
    ['GOODS', 'Merchandise sales'],
    ['SERVICES', 'Services'],
    ['SERVICE', 'After-sales service'],
  ];
  DT.forEach(([id, name], i) => push(makeStatus(s, 'DEAL_TYPE', id, name, (i + 1) * 10, { system: true })));
  const CT: Array<[string, string]> = [
    ['CLIENT', 'Clients'],
    ['SUPPLIER', 'Suppliers'],
    ['PARTNER', 'Partners'],
    ['OTHER', 'Other'],
  ];
  CT.forEach(([id, name], i) => push(makeStatus(s, 'CONTACT_TYPE', id, name, (i + 1) * 10, { system: true })));
  const CO: Array<[string, string]> = [
    ['CUSTOMER', 'Client'],
    ['SUPPLIER', 'Supplier'],
    ['COMPETITOR', 'Competitor'],
    ['PARTNER', 'Partner'],
    ['OTHER', 'Other'],
  ];
  CO.forEach(([id, name], i) => push(makeStatus(s, 'COMPANY_TYPE', id, name, (i + 1) * 10, { system: true })));
  const IN: Array<[string, string]> = [
    ['IT', 'Information Technology'],
    ['TELECOM', 'Telecommunication'],
    ['MANUFACTURING', 'Manufacturing'],
    ['BANKING', 'Banking Services'],
    ['CONSULTING', 'Consulting'],
    ['DELIVERY', 'Delivery'],
    ['ENTERTAINMENT', 'Entertainment'],
    ['OTHER', 'Other'],
  ];
  IN.forEach(([id, name], i) => push(makeStatus(s, 'INDUSTRY', id, name, (i + 1) * 10, { system: true })));
  const EM: Array<[string, string]> = [
    ['EMPLOYEES_1', 'fewer than 50'],
    ['EMPLOYEES_2', '50-250'],
    ['EMPLOYEES_3', '250-500'],
    ['EMPLOYEES_4', 'over 500'],
  ];
  EM.forEach(([id, name], i) => push(makeStatus(s, 'EMPLOYEES', id, name, (i + 1) * 10, { system: true })));
  const HN: Array<[string, string]> = [
    ['HNR_EN_1', 'Mr.'],
    ['HNR_EN_2', 'Mrs.'],
    ['HNR_EN_3', 'Ms.'],
    ['HNR_EN_4', 'Dr.'],
  ];
  HN.forEach(([id, name], i) => push(makeStatus(s, 'HONORIFIC', id, name, (i + 1) * 10, { system: true })));
}

function addPipelines(s: BitrixState, all: boolean): void {
  const general: BCategory = { id: 0, name: 'General', sort: 100, entityTypeId: 2, isDefault: 'Y' };
  s.categories.push(general);
  if (!all) return;
  s.categories.push(
    { id: 1, name: 'Wholesale', sort: 200, entityTypeId: 2, isDefault: 'N', originId: '', originatorId: '' },
    { id: 3, name: 'Partners', sort: 300, entityTypeId: 2, isDefault: 'N', originId: '', originatorId: '' },
  );
  s.statuses.push(
    makeStatus(s, 'DEAL_STAGE_1', 'C1:NEW', 'New request', 10, { system: true, categoryId: 1, color: '#39A8EF', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE_1', 'C1:PREPARATION', 'Price agreed', 20, { categoryId: 1, color: '#2FC6F6', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE_1', 'C1:EXECUTING', 'Shipping', 30, { categoryId: 1, color: '#47E4C2', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE_1', 'C1:WON', 'Paid', 40, { system: true, categoryId: 1, color: '#7BD500', semantics: 'S', extra: 'success' }),
    makeStatus(s, 'DEAL_STAGE_1', 'C1:LOSE', 'Lost', 50, { system: true, categoryId: 1, color: '#FF5752', semantics: 'F', extra: 'failure' }),
    makeStatus(s, 'DEAL_STAGE_3', 'C3:NEW', 'Introduction', 10, { system: true, categoryId: 3, color: '#39A8EF', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE_3', 'C3:UC_MEETING', 'Meeting', 20, { categoryId: 3, color: '#2FC6F6', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE_3', 'C3:UC_PROPOSAL', 'Proposal sent', 30, { categoryId: 3, color: '#FFA900', extra: 'process' }),
    makeStatus(s, 'DEAL_STAGE_3', 'C3:WON', 'Signed', 40, { system: true, categoryId: 3, color: '#7BD500', semantics: 'S', extra: 'success' }),
    makeStatus(s, 'DEAL_STAGE_3', 'C3:LOSE', 'Declined', 50, { system: true, categoryId: 3, color: '#FF5752', semantics: 'F', extra: 'failure' }),
    makeStatus(s, 'DEAL_STAGE_3', 'C3:APOLOGY', 'Failure analysis', 60, { categoryId: 3, color: '#FF5752', semantics: 'F', extra: 'apology' }),
  );
}

function user(id: number, name: string, last: string, email: string, dept: number, gender: 'M' | 'F'): BUser {
  return {
    ID: String(id),
    ACTIVE: true,
    NAME: name,
    LAST_NAME: last,
    EMAIL: email,
    LAST_LOGIN: phpDate(DEMO_NOW - id * 3600_000),
    DATE_REGISTER: phpDate(Date.UTC(2023, 0, 10 + id)),
    IS_ONLINE: id === 1 ? 'Y' : 'N',
    TIMESTAMP_X: '10.01.2023 12:00:00',
    LAST_ACTIVITY_DATE: '2025-06-30 12:00:00',
    PERSONAL_GENDER: gender,
    PERSONAL_BIRTHDAY: '',
    UF_EMPLOYMENT_DATE: '',
    UF_DEPARTMENT: [dept],
  };
}

function addUsers(s: BitrixState, ownerId: number, all: boolean, total: number): void {
  s.departments.push(
    { ID: '1', NAME: 'Northwind Trading', SORT: 500 },
    { ID: '2', NAME: 'Sales', SORT: 500, PARENT: '1', UF_HEAD: '1' },
    { ID: '3', NAME: 'Customer Support', SORT: 500, PARENT: '1', UF_HEAD: '5' },
  );
  s.users.push(user(1, 'Anna', 'Kuznetsova', 'anna.kuznetsova@example.com', 1, 'F'));
  if (all) {
    s.users.push(
      user(2, 'Boris', 'Sokolov', 'boris.sokolov@example.com', 2, 'M'),
      user(3, 'Maria', 'Lopez', 'maria.lopez@example.com', 2, 'F'),
      user(4, 'Dmitry', 'Orlov', 'dmitry.orlov@example.com', 2, 'M'),
      user(5, 'Emily', 'Clark', 'emily.clark@example.com', 3, 'F'),
    );
    // More staff than one `user.get` page (50), so clients must page (§4.1); records stay with users 1–5.
    for (let id = 6; id <= total; id++) {
      const female = id % 2 === 0;
      const name = (female ? FIRST_F : FIRST_M)[id % (female ? FIRST_F.length : FIRST_M.length)]!;
      const last = (female ? LAST_F : LAST_M)[(id * 7) % (female ? LAST_F.length : LAST_M.length)]!;
      s.users.push(user(id, name, last, `${translit(name)}.${translit(last)}.${id}@example.com`, id % 3 === 0 ? 3 : 2, female ? 'F' : 'M'));
    }
  }
  s.adminIds.push(1);
  if (!s.users.some((u) => Number(u.ID) === ownerId)) {
    s.users.push(user(ownerId, 'Webhook', 'Owner', `owner${ownerId}@example.com`, 1, 'M'));
    s.adminIds.push(ownerId);
  }
}

function uf(
  id: number,
  entity: string,
  name: string,
  type: BUserField['USER_TYPE_ID'],
  label: string,
  sort: number,
  list?: Array<[string, string]>,
): BUserField {
  const labels = { en: label };
  const field: BUserField = {
    ID: String(id),
    ENTITY_ID: entity,
    FIELD_NAME: name,
    USER_TYPE_ID: type,
    XML_ID: null,
    SORT: String(sort),
    MULTIPLE: 'N',
    MANDATORY: 'N',
    SHOW_FILTER: 'E',
    SHOW_IN_LIST: 'Y',
    EDIT_IN_LIST: 'Y',
    IS_SEARCHABLE: 'N',
    SETTINGS:
      type === 'enumeration'
        ? { DISPLAY: 'LIST', LIST_HEIGHT: 1 }
        : type === 'boolean'
          ? { DEFAULT_VALUE: 0, DISPLAY: 'CHECKBOX' }
          : type === 'double'
            ? { PRECISION: 2, DEFAULT_VALUE: null }
            : { SIZE: 20, ROWS: 1, DEFAULT_VALUE: '' },
    EDIT_FORM_LABEL: labels,
    LIST_COLUMN_LABEL: { ...labels },
    LIST_FILTER_LABEL: { ...labels },
  };
  if (list) field.LIST = list.map(([oid, value], i) => ({ ID: oid, SORT: String((i + 1) * 10), VALUE: value, DEF: 'N', XML_ID: `opt_${oid}` }));
  return field;
}

function addUserFields(s: BitrixState): void {
  const U = DEMO.userFields;
  const E = DEMO.enums;
  s.userFields.push(
    uf(101, 'CRM_LEAD', U.lead.comment, 'string', 'Budget comment', 100),
    uf(102, 'CRM_LEAD', U.lead.quality, 'enumeration', 'Lead quality', 110, [
      [E.quality.hot, 'Hot'],
      [E.quality.warm, 'Warm'],
      [E.quality.cold, 'Cold'],
    ]),
    uf(103, 'CRM_LEAD', U.lead.newsletter, 'boolean', 'Newsletter consent', 120),
    uf(104, 'CRM_DEAL', U.deal.delivery, 'enumeration', 'Delivery type', 100, [
      [E.delivery.pickup, 'Pickup'],
      [E.delivery.courier, 'Courier'],
      [E.delivery.post, 'Post'],
    ]),
    uf(105, 'CRM_DEAL', U.deal.contract, 'string', 'Contract number', 110),
    uf(106, 'CRM_DEAL', U.deal.discount, 'double', 'Discount, %', 120),
    uf(107, 'CRM_CONTACT', U.contact.messenger, 'string', 'Preferred messenger', 100),
    uf(108, 'CRM_COMPANY', U.company.taxId, 'string', 'Tax ID', 100),
  );
}

// ---------------------------------------------------------------- records

const FIRST_M = ['Alexey', 'Sergey', 'Mikhail', 'Andrey', 'Pavel', 'Nikolai', 'Artem', 'Oleg', 'Roman', 'Viktor', 'James', 'Thomas', 'Lukas', 'Marco', 'David'];
const FIRST_F = ['Elena', 'Tatiana', 'Natalia', 'Irina', 'Svetlana', 'Ekaterina', 'Yulia', 'Anastasia', 'Sophie', 'Laura', 'Emma', 'Giulia', 'Hanna'];
const LAST_M = [
  'Ivanov',
  'Smirnov',
  'Kuznetsov',
  'Popov',
  'Vasiliev',
  'Novikov',
  'Fedorov',
  'Morozov',
  'Volkov',
  'Alekseev',
  'Lebedev',
  'Miller',
  'Schmidt',
  'Rossi',
  'Brown',
];
const LAST_F = [
  'Ivanova',
  'Smirnova',
  'Kuznetsova',
  'Popova',
  'Vasilieva',
  'Novikova',
  'Fedorova',
  'Morozova',
  'Volkova',
  'Lebedeva',
  'Miller',
  'Schmidt',
  'Rossi',
  'Brown',
];
const CO_A = ['Northern', 'Blue River', 'Vector', 'Polar', 'Atlas', 'Granite', 'Silver Line', 'Orion', 'Baltic', 'Taiga', 'Pioneer', 'Summit'];
const CO_B = ['Logistics', 'Systems', 'Foods', 'Trading', 'Media', 'Engineering', 'Textiles', 'Pharma', 'Motors', 'Energy'];
const CO_FORM = ['LLC', 'Ltd', 'GmbH', 'JSC', 'Inc.'];
const DOMAINS = ['example.com', 'example.org', 'example.net', 'mail.example', 'corp.example.com'];
const DEAL_WORDS = [
  'Supply contract',
  'Annual license',
  'Equipment order',
  'Consulting package',
  'Installation',
  'Service renewal',
  'Pilot project',
  'Bulk order',
  'Website redesign',
  'Training course',
];
const LEAD_WORDS = [
  'Website inquiry',
  'Price request',
  'Callback request',
  'Trade show contact',
  'Partner referral',
  'Demo request',
  'Newsletter signup',
  'Quote request',
];

type Rng = () => number;

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[Math.floor(rng() * list.length)]!;
}

function weighted<T>(rng: Rng, items: Array<[T, number]>): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let r = rng() * total;
  for (const [v, w] of items) {
    r -= w;
    if (r < 0) return v;
  }
  return items[items.length - 1]![0];
}

/** A Russian mobile number (10 national digits, never Ivan's or Olga's). */
function ruNational(rng: Rng): string {
  for (;;) {
    const n = `9${pick(rng, ['12', '16', '03', '05', '26', '85', '99'])}${String(Math.floor(rng() * 10_000_000)).padStart(7, '0')}`;
    if (n !== '9123456789' && n !== '9165551234') return n;
  }
}

/** The same number the way people type it: `+7 912 345-67-89`, `89123456789`, `+79123456789`, `8 (912) 345 67 89`… */
function ruFormatted(n: string, style: number): string {
  const [a, b, c, d] = [n.slice(0, 3), n.slice(3, 6), n.slice(6, 8), n.slice(8, 10)];
  switch (style % 6) {
    case 0:
      return `+7 ${a} ${b}-${c}-${d}`;
    case 1:
      return `8${n}`;
    case 2:
      return `+7${n}`;
    case 3:
      return `8 (${a}) ${b} ${c} ${d}`;
    case 4:
      return `+7 (${a}) ${b}-${c}-${d}`;
    default:
      return `7${n}`;
  }
}

/** Foreign numbers from ranges reserved for fiction/examples. */
function foreignPhone(rng: Rng, i: number): string {
  const k = String(Math.floor(rng() * 100)).padStart(2, '0');
  switch (i % 4) {
    case 0:
      return `+44 20 7946 00${k}`;
    case 1:
      return `+1 (202) 555-01${k}`;
    case 2:
      return `+49 30 901820${k}`;
    default:
      return `+33 1 99 00 00 ${k}`;
  }
}

function mixedCase(rng: Rng, email: string): string {
  const r = rng();
  if (r < 0.6) return email;
  const [local, domain] = email.split('@') as [string, string];
  if (r < 0.8) return `${local.replace(/(^|\.)([a-z])/g, (_m, p: string, ch: string) => p + ch.toUpperCase())}@${domain}`;
  if (r < 0.9) return `${local}@${domain.toUpperCase()}`;
  return email.toUpperCase();
}

function translit(s: string): string {
  return s.toLowerCase().replace(/[^a-z]/g, '');
}

export interface DemoOptions {
  seed: number;
  userId: number;
  demo: boolean;
  mode: 'classic' | 'simple';
  /** Users on a demo portal (at least the 5 well-known ones). */
  users?: number;
}

/** Builds the portal: directories always; the demo records when `demo` is set. */
export function buildState(o: DemoOptions): BitrixState {
  const s = emptyState();
  s.mode = o.mode;
  addStatuses(s);
  addPipelines(s, o.demo);
  addUsers(s, o.userId, o.demo, o.users ?? 5);
  if (!o.demo) return s;
  addUserFields(s);
  const rng = seededRandom(o.seed);
  const userIds = [1, 2, 3, 4, 5];
  const span = 2 * 365 * 86_400_000;
  const start = DEMO_NOW - span;
  const at = (i: number, n: number) => start + Math.floor((span * (i + 0.5)) / n + rng() * 3600_000);
  const touch = (rec: BRecord | undefined, ms: number) => {
    if (!rec) return;
    const modified = Math.min(DEMO_NOW, ms + Math.floor(rng() * 30 * 86_400_000));
    rec.DATE_MODIFY = phpDate(modified);
    rec.LAST_ACTIVITY_TIME = rec.DATE_MODIFY;
  };

  // Companies.
  const C = DEMO.counts;
  for (let i = 0; i < C.companies; i++) {
    const when = at(i, C.companies);
    const by = i === 0 ? 1 : pick(rng, userIds);
    const title =
      i === 0 ? 'Petrov & Partners LLC' : `${CO_A[i % CO_A.length]} ${CO_B[Math.floor(i / CO_A.length) % CO_B.length]} ${CO_FORM[i % CO_FORM.length]}`;
    const slug = translit(title.split(' ')[0]!);
    createRecord(
      s,
      'company',
      {
        TITLE: title,
        COMPANY_TYPE: pick(rng, ['CUSTOMER', 'CUSTOMER', 'PARTNER', 'SUPPLIER', 'OTHER']),
        INDUSTRY: pick(rng, ['IT', 'TELECOM', 'MANUFACTURING', 'BANKING', 'CONSULTING', 'DELIVERY', 'OTHER']),
        EMPLOYEES: pick(rng, ['EMPLOYEES_1', 'EMPLOYEES_2', 'EMPLOYEES_3', 'EMPLOYEES_4']),
        REVENUE: Math.round(rng() * 500) * 100_000,
        ASSIGNED_BY_ID: by,
        ADDRESS_CITY: pick(rng, ['Moscow', 'Saint Petersburg', 'Kazan', 'Berlin', 'London', 'Yekaterinburg']),
        PHONE:
          rng() < 0.8
            ? [{ VALUE: i % 3 === 0 ? foreignPhone(rng, i) : ruFormatted(`4${String(Math.floor(rng() * 1e9)).padStart(9, '0')}`, i), VALUE_TYPE: 'WORK' }]
            : [],
        EMAIL: rng() < 0.7 ? [{ VALUE: mixedCase(rng, `info@${slug}${i}.example.com`), VALUE_TYPE: 'WORK' }] : [],
        WEB: rng() < 0.5 ? [{ VALUE: `https://${slug}${i}.example.com`, VALUE_TYPE: 'WORK' }] : [],
        [DEMO.userFields.company.taxId]: rng() < 0.6 ? String(7700000000 + Math.floor(rng() * 99_999_999)) : null,
      },
      { by, at: when },
    );
    touch(s.companies.get(i + 1), when);
  }

  // Contacts: Ivan (1), the two Olgas (2, 3), then generated people.
  for (let i = 0; i < C.contacts; i++) {
    const when = at(i, C.contacts);
    const by = pick(rng, userIds);
    let fields: Record<string, unknown>;
    if (i === 0) {
      fields = {
        NAME: 'Ivan',
        LAST_NAME: 'Petrov',
        HONORIFIC: 'HNR_EN_1',
        POST: 'Procurement manager',
        TYPE_ID: 'CLIENT',
        SOURCE_ID: 'CALL',
        COMPANY_ID: DEMO.ivan.companyId,
        ASSIGNED_BY_ID: 1,
        PHONE: [{ VALUE: DEMO.ivan.phone, VALUE_TYPE: 'MOBILE' }],
        EMAIL: [{ VALUE: DEMO.ivan.email, VALUE_TYPE: 'WORK' }],
        IM: [{ VALUE: 'ivan_petrov', VALUE_TYPE: 'TELEGRAM' }],
        [DEMO.userFields.contact.messenger]: 'Telegram',
      };
    } else if (i === 1 || i === 2) {
      fields = {
        NAME: 'Olga',
        LAST_NAME: 'Smirnova',
        TYPE_ID: 'CLIENT',
        SOURCE_ID: i === 1 ? 'WEB' : 'EMAIL',
        ASSIGNED_BY_ID: 2,
        PHONE: [{ VALUE: DEMO.olga.phones[i - 1], VALUE_TYPE: 'MOBILE' }],
        EMAIL: [{ VALUE: DEMO.olga.emails[i - 1], VALUE_TYPE: 'HOME' }],
      };
    } else {
      const female = rng() < 0.5;
      const name = pick(rng, female ? FIRST_F : FIRST_M);
      const last = pick(rng, female ? LAST_F : LAST_M);
      const phones: Array<Record<string, string>> = [];
      const pr = rng();
      if (pr < 0.15) phones.push({ VALUE: foreignPhone(rng, i), VALUE_TYPE: 'WORK' });
      else if (pr < 0.9) phones.push({ VALUE: ruFormatted(ruNational(rng), i), VALUE_TYPE: pick(rng, ['MOBILE', 'WORK', 'HOME']) });
      if (rng() < 0.1) phones.push({ VALUE: ruFormatted(ruNational(rng), i + 3), VALUE_TYPE: 'WORK' });
      const emails =
        rng() < 0.8
          ? [{ VALUE: mixedCase(rng, `${translit(name)}.${translit(last)}${i}@${pick(rng, DOMAINS)}`), VALUE_TYPE: pick(rng, ['WORK', 'HOME']) }]
          : [];
      fields = {
        NAME: name,
        LAST_NAME: last,
        HONORIFIC: female ? pick(rng, ['HNR_EN_2', 'HNR_EN_3']) : 'HNR_EN_1',
        TYPE_ID: pick(rng, ['CLIENT', 'CLIENT', 'CLIENT', 'SUPPLIER', 'PARTNER']),
        SOURCE_ID: pick(rng, ['CALL', 'EMAIL', 'WEB', 'ADVERTISING', 'RECOMMENDATION']),
        POST: rng() < 0.5 ? pick(rng, ['Director', 'Buyer', 'Accountant', 'CTO', 'Office manager']) : null,
        COMPANY_ID: rng() < 0.55 ? 1 + Math.floor(rng() * C.companies) : null,
        ASSIGNED_BY_ID: by,
        PHONE: phones,
        EMAIL: emails,
        [DEMO.userFields.contact.messenger]: rng() < 0.3 ? pick(rng, ['Telegram', 'WhatsApp', 'Viber']) : null,
      };
    }
    createRecord(s, 'contact', fields, { by, at: when });
    touch(s.contacts.get(i + 1), when);
  }

  // Leads: Ivan's (1), then generated ones; CONVERTED/JUNK ones are closed.
  const leadStatus: Array<[string, number]> = [
    ['NEW', 30],
    ['IN_PROCESS', 25],
    ['PROCESSED', 15],
    ['CONVERTED', 18],
    ['JUNK', 12],
  ];
  const U = DEMO.userFields;
  for (let i = 0; i < C.leads; i++) {
    const when = at(i, C.leads);
    const by = pick(rng, userIds);
    let fields: Record<string, unknown>;
    if (i === 0) {
      fields = {
        TITLE: 'Ivan Petrov: website inquiry',
        NAME: 'Ivan',
        LAST_NAME: 'Petrov',
        STATUS_ID: 'IN_PROCESS',
        SOURCE_ID: 'WEB',
        CONTACT_ID: DEMO.ivan.contactId,
        COMPANY_ID: DEMO.ivan.companyId,
        OPPORTUNITY: 120000,
        ASSIGNED_BY_ID: 1,
        PHONE: [{ VALUE: DEMO.ivan.phone, VALUE_TYPE: 'WORK' }],
        EMAIL: [{ VALUE: DEMO.ivan.email, VALUE_TYPE: 'WORK' }],
        [U.lead.quality]: DEMO.enums.quality.hot,
        [U.lead.newsletter]: true,
      };
    } else {
      const female = rng() < 0.5;
      const name = pick(rng, female ? FIRST_F : FIRST_M);
      const last = pick(rng, female ? LAST_F : LAST_M);
      const withContact = rng() < 0.3;
      fields = {
        TITLE: `${pick(rng, LEAD_WORDS)} — ${name} ${last}`,
        NAME: name,
        LAST_NAME: last,
        STATUS_ID: weighted(rng, leadStatus),
        SOURCE_ID: pick(rng, ['CALL', 'EMAIL', 'WEB', 'ADVERTISING', 'PARTNER', 'WEBFORM', 'CALLBACK']),
        OPPORTUNITY: Math.round(rng() * 200) * 1000,
        CURRENCY_ID: rng() < 0.85 ? 'RUB' : pick(rng, ['USD', 'EUR']),
        ASSIGNED_BY_ID: by,
        CONTACT_ID: withContact ? 4 + Math.floor(rng() * (C.contacts - 3)) : null,
        COMPANY_TITLE: rng() < 0.3 ? `${pick(rng, CO_A)} ${pick(rng, CO_B)}` : null,
        PHONE: rng() < 0.6 ? [{ VALUE: rng() < 0.15 ? foreignPhone(rng, i) : ruFormatted(ruNational(rng), i), VALUE_TYPE: 'WORK' }] : [],
        EMAIL: rng() < 0.6 ? [{ VALUE: mixedCase(rng, `${translit(name)}${i}@${pick(rng, DOMAINS)}`), VALUE_TYPE: 'WORK' }] : [],
        UTM_SOURCE: rng() < 0.3 ? pick(rng, ['google', 'yandex', 'newsletter']) : null,
        [U.lead.comment]: rng() < 0.3 ? pick(rng, ['Budget approved', 'Needs a discount', 'Decision in Q3']) : null,
        [U.lead.quality]: rng() < 0.7 ? pick(rng, [DEMO.enums.quality.hot, DEMO.enums.quality.warm, DEMO.enums.quality.cold]) : null,
        [U.lead.newsletter]: rng() < 0.4,
      };
    }
    createRecord(s, 'lead', fields, { by, at: when });
    touch(s.leads.get(i + 1), when);
  }

  // Deals: Ivan's open (1) and won (2) deals, then 1,198 generated across pipelines, stages and users.
  const catWeights: Array<[number, number]> = [
    [0, 60],
    [1, 25],
    [3, 15],
  ];
  const stageWeights: Record<number, Array<[string, number]>> = {
    0: [
      ['NEW', 20],
      ['PREPARATION', 14],
      ['PREPAYMENT_INVOICE', 10],
      ['EXECUTING', 12],
      ['FINAL_INVOICE', 6],
      ['WON', 24],
      ['LOSE', 14],
    ],
    1: [
      ['C1:NEW', 20],
      ['C1:PREPARATION', 15],
      ['C1:EXECUTING', 15],
      ['C1:WON', 35],
      ['C1:LOSE', 15],
    ],
    3: [
      ['C3:NEW', 20],
      ['C3:UC_MEETING', 20],
      ['C3:UC_PROPOSAL', 15],
      ['C3:WON', 25],
      ['C3:LOSE', 12],
      ['C3:APOLOGY', 8],
    ],
  };
  for (let i = 0; i < C.deals; i++) {
    const when = at(i, C.deals);
    const by = pick(rng, userIds);
    let fields: Record<string, unknown>;
    if (i === 0 || i === 1) {
      fields = {
        TITLE: i === 0 ? 'Ivan Petrov: annual supply contract' : 'Ivan Petrov: pilot order',
        CATEGORY_ID: i === 0 ? 0 : 1,
        STAGE_ID: i === 0 ? 'EXECUTING' : 'C1:WON',
        TYPE_ID: 'SALE',
        OPPORTUNITY: i === 0 ? 250000 : 48000,
        CONTACT_ID: DEMO.ivan.contactId,
        COMPANY_ID: DEMO.ivan.companyId,
        ASSIGNED_BY_ID: 1,
        SOURCE_ID: 'WEB',
        [U.deal.delivery]: DEMO.enums.delivery.courier,
        [U.deal.contract]: i === 0 ? 'CN-2025-001' : 'CN-2024-117',
      };
    } else {
      const cat = weighted(rng, catWeights);
      const contact = rng() < 0.8 ? 4 + Math.floor(rng() * (C.contacts - 3)) : null;
      const contacts = contact && rng() < 0.1 ? [contact, 4 + Math.floor(rng() * (C.contacts - 3))] : contact ? [contact] : [];
      fields = {
        TITLE: `${pick(rng, DEAL_WORDS)} #${1000 + i}`,
        CATEGORY_ID: cat,
        STAGE_ID: weighted(rng, stageWeights[cat]!),
        TYPE_ID: pick(rng, ['SALE', 'COMPLEX', 'GOODS', 'SERVICES', 'SERVICE']),
        OPPORTUNITY: Math.round(rng() * 1000) * 500,
        CURRENCY_ID: rng() < 0.9 ? 'RUB' : pick(rng, ['USD', 'EUR']),
        PROBABILITY: rng() < 0.5 ? pick(rng, [10, 25, 50, 75, 90]) : null,
        CONTACT_IDS: contacts,
        COMPANY_ID: rng() < 0.5 ? 1 + Math.floor(rng() * C.companies) : null,
        ASSIGNED_BY_ID: by,
        SOURCE_ID: rng() < 0.7 ? pick(rng, ['CALL', 'EMAIL', 'WEB', 'ADVERTISING', 'PARTNER', 'RECOMMENDATION']) : null,
        COMMENTS: rng() < 0.2 ? pick(rng, ['Urgent', 'Repeat customer', 'Waiting for the signed contract']) : null,
        [U.deal.delivery]: rng() < 0.6 ? pick(rng, [DEMO.enums.delivery.pickup, DEMO.enums.delivery.courier, DEMO.enums.delivery.post]) : null,
        [U.deal.contract]: rng() < 0.4 ? `CN-${2023 + Math.floor(i / 600)}-${String(i).padStart(4, '0')}` : null,
        [U.deal.discount]: rng() < 0.3 ? pick(rng, [5, 7.5, 10, 15]) : null,
      };
    }
    createRecord(s, 'deal', fields, { by, at: when });
    touch(s.deals.get(i + 1), when);
  }

  // Timeline comments, activities and tasks on a handful of records.
  const comment = (type: 'deal' | 'lead' | 'contact', entityId: number, text: string, ms: number, author: number) => {
    const id = nextId(s, 'comment');
    s.timelineComments.set(id, {
      ID: String(id),
      CREATED: phpDate(ms),
      ENTITY_ID: String(entityId),
      ENTITY_TYPE: type,
      AUTHOR_ID: String(author),
      COMMENT: text,
    });
  };
  comment('deal', DEMO.ivan.dealId, 'Ivan asked for a revised delivery schedule.', DEMO_NOW - 5 * 86_400_000, 1);
  comment('lead', DEMO.ivan.leadId, 'Called back, interested in the annual plan.', DEMO_NOW - 40 * 86_400_000, 1);
  for (let i = 0; i < 40; i++) {
    const type = pick(rng, ['deal', 'deal', 'lead', 'contact'] as const);
    const max = type === 'deal' ? C.deals : type === 'lead' ? C.leads : C.contacts;
    comment(
      type,
      1 + Math.floor(rng() * max),
      pick(rng, ['Sent the offer.', 'Client asked to call next week.', 'Meeting scheduled.', 'Invoice paid.', 'Waiting for approval.']),
      DEMO_NOW - Math.floor(rng() * span),
      pick(rng, userIds),
    );
  }
  for (let i = 0; i < 50; i++) {
    const id = nextId(s, 'activity');
    const ownerType = i === 0 ? 2 : pick(rng, [2, 2, 1, 3]);
    const max = ownerType === 2 ? C.deals : ownerType === 1 ? C.leads : C.contacts;
    const ownerId = i === 0 ? DEMO.ivan.dealId : 1 + Math.floor(rng() * max);
    const typeId = pick(rng, [1, 2, 4, 6]);
    const created = DEMO_NOW - Math.floor(rng() * 120 * 86_400_000);
    const completed = i !== 0 && rng() < 0.6;
    s.activities.set(id, {
      ID: String(id),
      OWNER_ID: String(ownerId),
      OWNER_TYPE_ID: String(ownerType),
      TYPE_ID: String(typeId),
      PROVIDER_ID: typeId === 2 ? 'VOXIMPLANT_CALL' : typeId === 4 ? 'CRM_EMAIL' : typeId === 1 ? 'CRM_MEETING' : 'CRM_TODO',
      PROVIDER_TYPE_ID: typeId === 2 ? 'CALL' : typeId === 4 ? 'EMAIL' : typeId === 1 ? 'MEETING' : 'TODO',
      SUBJECT:
        i === 0 ? 'Call Ivan about the delivery schedule' : pick(rng, ['Follow-up call', 'Send the contract', 'Meeting at the office', 'Email the price list']),
      DESCRIPTION: '',
      DESCRIPTION_TYPE: '1',
      DIRECTION: String(pick(rng, [1, 2])),
      PRIORITY: '2',
      RESPONSIBLE_ID: String(i === 0 ? 1 : pick(rng, userIds)),
      AUTHOR_ID: '1',
      EDITOR_ID: '1',
      CREATED: phpDate(created),
      LAST_UPDATED: phpDate(created),
      START_TIME: phpDate(created + 86_400_000),
      END_TIME: phpDate(created + 86_400_000 + 1800_000),
      DEADLINE: phpDate(created + 86_400_000),
      COMPLETED: completed ? 'Y' : 'N',
      STATUS: completed ? '2' : '1',
    });
  }
  for (let i = 0; i < 12; i++) {
    const id = nextId(s, 'task');
    const created = phpDate(DEMO_NOW - (12 - i) * 86_400_000);
    const dealId = i === 0 ? DEMO.ivan.dealId : 1 + Math.floor(rng() * C.deals);
    s.tasks.set(id, {
      id: String(id),
      title:
        i === 0 ? 'Prepare the contract for Ivan Petrov' : pick(rng, ['Call the client', 'Prepare an offer', 'Check the payment', 'Update the price list']),
      description: '',
      responsibleId: String(i === 0 ? 1 : pick(rng, userIds)),
      createdBy: '1',
      createdDate: created,
      changedDate: created,
      deadline: phpDate(DEMO_NOW + (i + 1) * 86_400_000),
      status: i % 4 === 3 ? '5' : '2',
      priority: '1',
      groupId: '0',
      closedDate: i % 4 === 3 ? created : null,
      ufCrmTask: [`D_${dealId}`],
    });
  }
  return s;
}
