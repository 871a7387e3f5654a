/**
 * Field definitions of the CRM compat entities (fact sheet §7.2, §7.4, §7.5; fixture crm.lead.fields.json):
 * what `crm.*.fields` describes, what `crm.*.get`/`list` return, and how written values are stored.
 */

export type EntityKind = 'lead' | 'deal' | 'contact' | 'company';

export interface FieldDef {
  name: string;
  type: string;
  title: string;
  readOnly?: boolean;
  immutable?: boolean;
  multiple?: boolean;
  required?: boolean;
  statusType?: string;
  settings?: Record<string, unknown>;
  deprecated?: boolean;
  /** Not part of `get`/`list` rows (e.g. CONTACT_IDS, multi-fields: those are only shown when set). */
  hidden?: boolean;
}

export const MULTI_FIELDS = ['PHONE', 'EMAIL', 'WEB', 'IM', 'LINK'] as const;
export type MultiType = (typeof MULTI_FIELDS)[number];

/** Default VALUE_TYPE when a write omits it (§7.4). */
export const MULTI_DEFAULT_TYPE: Record<MultiType, string> = { PHONE: 'WORK', EMAIL: 'WORK', WEB: 'WORK', IM: 'OTHER', LINK: 'USER' };

const MULTI_TITLES: Record<MultiType, string> = { PHONE: 'Phone', EMAIL: 'E-mail', WEB: 'Website', IM: 'Messenger', LINK: 'LINK' };

function f(name: string, type: string, title: string, extra: Partial<FieldDef> = {}): FieldDef {
  return { name, type, title, ...extra };
}

const RO = { readOnly: true };

const ADDRESS: FieldDef[] = [
  f('ADDRESS', 'string', 'Address'),
  f('ADDRESS_2', 'string', 'Address (Line 2)'),
  f('ADDRESS_CITY', 'string', 'City'),
  f('ADDRESS_POSTAL_CODE', 'string', 'Postal Code'),
  f('ADDRESS_REGION', 'string', 'Region'),
  f('ADDRESS_PROVINCE', 'string', 'Province'),
  f('ADDRESS_COUNTRY', 'string', 'Country'),
  f('ADDRESS_COUNTRY_CODE', 'string', 'Country Code'),
  f('ADDRESS_LOC_ADDR_ID', 'integer', 'Location Address ID'),
];

const UTM: FieldDef[] = [
  f('UTM_SOURCE', 'string', 'Advertising System'),
  f('UTM_MEDIUM', 'string', 'Traffic Type'),
  f('UTM_CAMPAIGN', 'string', 'Campaign Identifier'),
  f('UTM_CONTENT', 'string', 'Campaign Content'),
  f('UTM_TERM', 'string', 'Campaign Search Term'),
];

const MULTI: FieldDef[] = MULTI_FIELDS.map((m) => f(m, 'crm_multifield', MULTI_TITLES[m], { multiple: true, hidden: true }));

/** Lead fields in the order of fixture crm.lead.fields.json. */
const LEAD: FieldDef[] = [
  f('ID', 'integer', 'ID', RO),
  f('TITLE', 'string', 'Lead Title'),
  f('HONORIFIC', 'crm_status', 'Salutation', { statusType: 'HONORIFIC' }),
  f('NAME', 'string', 'First Name'),
  f('SECOND_NAME', 'string', 'Middle Name'),
  f('LAST_NAME', 'string', 'Last Name'),
  f('BIRTHDATE', 'date', 'Birthdate'),
  f('COMPANY_TITLE', 'string', 'Company Name'),
  f('SOURCE_ID', 'crm_status', 'Source', { statusType: 'SOURCE' }),
  f('SOURCE_DESCRIPTION', 'string', 'Source Description'),
  f('STATUS_ID', 'crm_status', 'Stage', { statusType: 'STATUS' }),
  f('STATUS_DESCRIPTION', 'string', 'Stage Description'),
  f('STATUS_SEMANTIC_ID', 'string', 'Status Semantic', RO),
  f('POST', 'string', 'Position'),
  ...ADDRESS,
  f('CURRENCY_ID', 'crm_currency', 'Currency'),
  f('OPPORTUNITY', 'double', 'Amount'),
  f('IS_MANUAL_OPPORTUNITY', 'char', 'IS_MANUAL_OPPORTUNITY'),
  f('OPENED', 'char', 'Available to All'),
  f('COMMENTS', 'string', 'Comments'),
  f('HAS_PHONE', 'char', 'Phone Provided', RO),
  f('HAS_EMAIL', 'char', 'Email Provided', RO),
  f('HAS_IMOL', 'char', 'Open Line Assigned', RO),
  f('ASSIGNED_BY_ID', 'user', 'Responsible User'),
  f('CREATED_BY_ID', 'user', 'Created By', RO),
  f('MODIFY_BY_ID', 'user', 'Modified By', RO),
  f('MOVED_BY_ID', 'user', 'MOVED_BY_ID', RO),
  f('DATE_CREATE', 'datetime', 'Creation Date', RO),
  f('DATE_MODIFY', 'datetime', 'Modification Date', RO),
  f('MOVED_TIME', 'datetime', 'MOVED_TIME', RO),
  f('COMPANY_ID', 'crm_company', 'Company', { settings: { parentEntityTypeId: 4 } }),
  f('CONTACT_ID', 'crm_contact', 'Contact', { deprecated: true }),
  f('CONTACT_IDS', 'crm_contact', 'CONTACT_IDS', { multiple: true, hidden: true }),
  f('IS_RETURN_CUSTOMER', 'char', 'Returning Lead', RO),
  f('DATE_CLOSED', 'datetime', 'Closing Date', RO),
  f('ORIGINATOR_ID', 'string', 'External Source'),
  f('ORIGIN_ID', 'string', 'Identifier in External Source'),
  ...UTM,
  f('LAST_ACTIVITY_TIME', 'datetime', 'LAST_ACTIVITY_TIME', RO),
  f('LAST_ACTIVITY_BY', 'user', 'LAST_ACTIVITY_BY', RO),
  ...MULTI,
];

/** Row order of `crm.lead.get`/`list` (fixtures crm.lead.get.json, crm.lead.list.json). */
const LEAD_ROW = [
  'ID',
  'TITLE',
  'HONORIFIC',
  'NAME',
  'SECOND_NAME',
  'LAST_NAME',
  'COMPANY_TITLE',
  'COMPANY_ID',
  'CONTACT_ID',
  'IS_RETURN_CUSTOMER',
  'BIRTHDATE',
  'SOURCE_ID',
  'SOURCE_DESCRIPTION',
  'STATUS_ID',
  'STATUS_DESCRIPTION',
  'POST',
  'COMMENTS',
  'CURRENCY_ID',
  'OPPORTUNITY',
  'IS_MANUAL_OPPORTUNITY',
  'HAS_PHONE',
  'HAS_EMAIL',
  'HAS_IMOL',
  'ASSIGNED_BY_ID',
  'CREATED_BY_ID',
  'MODIFY_BY_ID',
  'DATE_CREATE',
  'DATE_MODIFY',
  'DATE_CLOSED',
  'STATUS_SEMANTIC_ID',
  'OPENED',
  'ORIGINATOR_ID',
  'ORIGIN_ID',
  'MOVED_BY_ID',
  'MOVED_TIME',
  'ADDRESS',
  'ADDRESS_2',
  'ADDRESS_CITY',
  'ADDRESS_POSTAL_CODE',
  'ADDRESS_REGION',
  'ADDRESS_PROVINCE',
  'ADDRESS_COUNTRY',
  'ADDRESS_COUNTRY_CODE',
  'ADDRESS_LOC_ADDR_ID',
  'UTM_SOURCE',
  'UTM_MEDIUM',
  'UTM_CAMPAIGN',
  'UTM_CONTENT',
  'UTM_TERM',
  'LAST_ACTIVITY_BY',
  'LAST_ACTIVITY_TIME',
];

const DEAL: FieldDef[] = [
  f('ID', 'integer', 'ID', RO),
  f('TITLE', 'string', 'Name'),
  f('TYPE_ID', 'crm_status', 'Type', { statusType: 'DEAL_TYPE' }),
  f('CATEGORY_ID', 'crm_category', 'Pipeline', { immutable: true }),
  f('STAGE_ID', 'crm_status', 'Stage', { statusType: 'DEAL_STAGE' }),
  f('STAGE_SEMANTIC_ID', 'string', 'Stage group', RO),
  f('IS_NEW', 'char', 'New deal', RO),
  f('IS_RECURRING', 'char', 'Recurring deal'),
  f('IS_RETURN_CUSTOMER', 'char', 'Repeat deal', RO),
  f('IS_REPEATED_APPROACH', 'char', 'Repeat inquiry', RO),
  f('PROBABILITY', 'integer', 'Probability'),
  f('CURRENCY_ID', 'crm_currency', 'Currency'),
  f('OPPORTUNITY', 'double', 'Amount'),
  f('IS_MANUAL_OPPORTUNITY', 'char', 'IS_MANUAL_OPPORTUNITY'),
  f('TAX_VALUE', 'double', 'Tax rate'),
  f('COMPANY_ID', 'crm_company', 'Company'),
  f('CONTACT_ID', 'crm_contact', 'Contact', { deprecated: true }),
  f('CONTACT_IDS', 'crm_contact', 'Contacts', { multiple: true, hidden: true }),
  f('QUOTE_ID', 'crm_quote', 'Quote', RO),
  f('BEGINDATE', 'date', 'Start date'),
  f('CLOSEDATE', 'date', 'End date'),
  f('OPENED', 'char', 'Available to everyone'),
  f('CLOSED', 'char', 'Closed'),
  f('COMMENTS', 'string', 'Comment'),
  f('ASSIGNED_BY_ID', 'user', 'Responsible person'),
  f('CREATED_BY_ID', 'user', 'Created by', RO),
  f('MODIFY_BY_ID', 'user', 'Modified by', RO),
  f('MOVED_BY_ID', 'user', 'MOVED_BY_ID', RO),
  f('DATE_CREATE', 'datetime', 'Created on', RO),
  f('DATE_MODIFY', 'datetime', 'Modified on', RO),
  f('MOVED_TIME', 'datetime', 'MOVED_TIME', RO),
  f('SOURCE_ID', 'crm_status', 'Source', { statusType: 'SOURCE' }),
  f('SOURCE_DESCRIPTION', 'string', 'Source information'),
  f('LEAD_ID', 'crm_lead', 'Lead', RO),
  f('ADDITIONAL_INFO', 'string', 'Additional information'),
  f('LOCATION_ID', 'location', 'Location'),
  f('ORIGINATOR_ID', 'string', 'External source'),
  f('ORIGIN_ID', 'string', 'Item ID in data source'),
  ...UTM,
  f('LAST_ACTIVITY_TIME', 'datetime', 'LAST_ACTIVITY_TIME', RO),
  f('LAST_ACTIVITY_BY', 'user', 'LAST_ACTIVITY_BY', RO),
];

const CONTACT: FieldDef[] = [
  f('ID', 'integer', 'ID', RO),
  f('HONORIFIC', 'crm_status', 'Salutation', { statusType: 'HONORIFIC' }),
  f('NAME', 'string', 'First name'),
  f('SECOND_NAME', 'string', 'Second name'),
  f('LAST_NAME', 'string', 'Last name'),
  f('PHOTO', 'file', 'Photo'),
  f('BIRTHDATE', 'date', 'Date of birth'),
  f('TYPE_ID', 'crm_status', 'Contact type', { statusType: 'CONTACT_TYPE' }),
  f('SOURCE_ID', 'crm_status', 'Source', { statusType: 'SOURCE' }),
  f('SOURCE_DESCRIPTION', 'string', 'Source information'),
  f('POST', 'string', 'Position'),
  ...ADDRESS,
  f('COMMENTS', 'string', 'Comment'),
  f('OPENED', 'char', 'Available to everyone'),
  f('EXPORT', 'char', 'Included in export'),
  f('HAS_PHONE', 'char', 'Has phone', RO),
  f('HAS_EMAIL', 'char', 'Has email', RO),
  f('HAS_IMOL', 'char', 'Has Open Channel', RO),
  f('ASSIGNED_BY_ID', 'user', 'Responsible person'),
  f('CREATED_BY_ID', 'user', 'Created by', RO),
  f('MODIFY_BY_ID', 'user', 'Modified by', RO),
  f('DATE_CREATE', 'datetime', 'Created on', RO),
  f('DATE_MODIFY', 'datetime', 'Modified on', RO),
  f('COMPANY_ID', 'crm_company', 'Company', { deprecated: true }),
  f('COMPANY_IDS', 'crm_company', 'COMPANY_IDS', { multiple: true, hidden: true }),
  f('LEAD_ID', 'crm_lead', 'Lead', RO),
  f('ORIGINATOR_ID', 'string', 'External source'),
  f('ORIGIN_ID', 'string', 'Item ID in data source'),
  f('ORIGIN_VERSION', 'string', 'Original version'),
  f('FACE_ID', 'integer', 'Face ID'),
  ...UTM,
  f('LAST_ACTIVITY_TIME', 'datetime', 'LAST_ACTIVITY_TIME', RO),
  f('LAST_ACTIVITY_BY', 'user', 'LAST_ACTIVITY_BY', RO),
  ...MULTI,
];

const COMPANY: FieldDef[] = [
  f('ID', 'integer', 'ID', RO),
  f('TITLE', 'string', 'Company name'),
  f('COMPANY_TYPE', 'crm_status', 'Company type', { statusType: 'COMPANY_TYPE' }),
  f('LOGO', 'file', 'Logo'),
  ...ADDRESS,
  f('ADDRESS_LEGAL', 'string', 'Legal address'),
  f('BANKING_DETAILS', 'string', 'Payment details'),
  f('INDUSTRY', 'crm_status', 'Industry', { statusType: 'INDUSTRY' }),
  f('EMPLOYEES', 'crm_status', 'Employees', { statusType: 'EMPLOYEES' }),
  f('CURRENCY_ID', 'crm_currency', 'Currency'),
  f('REVENUE', 'double', 'Annual revenue'),
  f('OPENED', 'char', 'Available to everyone'),
  f('COMMENTS', 'string', 'Comment'),
  f('HAS_PHONE', 'char', 'Has phone', RO),
  f('HAS_EMAIL', 'char', 'Has email', RO),
  f('HAS_IMOL', 'char', 'Has Open Channel', RO),
  f('IS_MY_COMPANY', 'char', 'My company'),
  f('ASSIGNED_BY_ID', 'user', 'Responsible person'),
  f('CREATED_BY_ID', 'user', 'Created by', RO),
  f('MODIFY_BY_ID', 'user', 'Modified by', RO),
  f('DATE_CREATE', 'datetime', 'Created on', RO),
  f('DATE_MODIFY', 'datetime', 'Modified on', RO),
  f('CONTACT_ID', 'crm_contact', 'Contact', { multiple: true, hidden: true }),
  f('LEAD_ID', 'crm_lead', 'Lead', RO),
  f('ORIGINATOR_ID', 'string', 'External source'),
  f('ORIGIN_ID', 'string', 'Item ID in data source'),
  f('ORIGIN_VERSION', 'string', 'Original version'),
  ...UTM,
  f('LAST_ACTIVITY_TIME', 'datetime', 'LAST_ACTIVITY_TIME', RO),
  f('LAST_ACTIVITY_BY', 'user', 'LAST_ACTIVITY_BY', RO),
  ...MULTI,
];

export const ENTITY_FIELDS: Record<EntityKind, FieldDef[]> = { lead: LEAD, deal: DEAL, contact: CONTACT, company: COMPANY };

/** Standard (non-UF, non-multi) fields of a `get`/`list` row, in row order. */
export const ENTITY_ROW: Record<EntityKind, string[]> = {
  lead: LEAD_ROW,
  deal: DEAL.filter((d) => !d.hidden).map((d) => d.name),
  contact: CONTACT.filter((d) => !d.hidden).map((d) => d.name),
  company: COMPANY.filter((d) => !d.hidden).map((d) => d.name),
};

export const ENTITY_TYPE_ID: Record<EntityKind, number> = { lead: 1, deal: 2, contact: 3, company: 4 };
export const ENTITY_BY_TYPE_ID: Record<number, EntityKind> = { 1: 'lead', 2: 'deal', 3: 'contact', 4: 'company' };
/** `ENTITY_ID` of user fields (§7.1). */
export const UF_ENTITY: Record<EntityKind, string> = { lead: 'CRM_LEAD', deal: 'CRM_DEAL', contact: 'CRM_CONTACT', company: 'CRM_COMPANY' };

export function fieldMap(kind: EntityKind): Map<string, FieldDef> {
  return new Map(ENTITY_FIELDS[kind].map((d) => [d.name, d]));
}

/** `crm.*.fields` descriptor shape (fixture crm.lead.fields.json). */
export function describeField(d: FieldDef): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: d.type,
    isRequired: !!d.required,
    isReadOnly: !!d.readOnly,
    isImmutable: !!d.immutable,
    isMultiple: !!d.multiple,
    isDynamic: false,
  };
  if (d.statusType) out.statusType = d.statusType;
  if (d.deprecated) out.isDeprecated = true;
  out.title = d.title;
  if (d.settings) out.settings = d.settings;
  return out;
}

/** Types whose stored value is an id or a number and compares numerically. */
export function isNumericType(t: string): boolean {
  return ['integer', 'double', 'user', 'crm_company', 'crm_contact', 'crm_lead', 'crm_deal', 'crm_quote', 'crm_category', 'location', 'file'].includes(t);
}

export function isDateType(t: string): boolean {
  return t === 'date' || t === 'datetime';
}
