/**
 * The prior values update_lead and update_contact leave in the audit log: for each argument the call sets, the
 * field it changes and that field's value on the record as read just before the update (ToolAudit `prior`).
 * The audit log keeps ids, prices, phones, emails and tags as they are and digests names (audit-entry.ts).
 */
import { digestText } from '../audit/audit-log.js';
import type { Contact, CustomFieldValue, Lead } from '../domain/records.js';

type Fields<R> = Record<string, (record: R, args: Record<string, unknown>) => [string, unknown]>;

function priorCustomFields(have: CustomFieldValue[], wanted: unknown): unknown[] {
  const list = Array.isArray(wanted) ? (wanted as Array<Record<string, unknown>>) : [];
  return list.map((w) => {
    const match = have.find(
      (f) =>
        (w.field_id !== undefined && String(f.id) === String(w.field_id)) ||
        (typeof w.field_code === 'string' && f.code === w.field_code) ||
        (typeof w.field_name === 'string' && f.name.toLowerCase() === w.field_name.toLowerCase()),
    );
    return {
      field: match?.id ?? w.field_id ?? w.field_code ?? (typeof w.field_name === 'string' ? digestText(w.field_name) : null),
      values: match ? match.values : [],
    };
  });
}

const LEAD_FIELDS: Fields<Lead> = {
  name: (l) => ['name', l.name],
  price: (l) => ['price', l.price],
  status_id: (l) => ['status_id', l.stage?.id ?? null],
  pipeline_id: (l) => ['pipeline_id', l.pipeline?.id ?? null],
  responsible_user_id: (l) => ['responsible_user_id', l.responsible?.id ?? null],
  tags_to_add: (l) => ['tags', l.tags],
  tags_to_delete: (l) => ['tags', l.tags],
  custom_fields: (l, a) => ['custom_fields', priorCustomFields(l.custom_fields, a.custom_fields)],
};

const CONTACT_FIELDS: Fields<Contact> = {
  name: (c) => ['name', c.name],
  first_name: (c) => ['first_name', c.first_name],
  last_name: (c) => ['last_name', c.last_name],
  responsible_user_id: (c) => ['responsible_user_id', c.responsible?.id ?? null],
  phones_to_add: (c) => ['phones', c.phones],
  phones_to_remove: (c) => ['phones', c.phones],
  emails_to_add: (c) => ['emails', c.emails],
  emails_to_remove: (c) => ['emails', c.emails],
  tags_to_add: (c) => ['tags', c.tags],
  tags_to_delete: (c) => ['tags', c.tags],
  custom_fields: (c, a) => ['custom_fields', priorCustomFields(c.custom_fields, a.custom_fields)],
};

function priorOf<R>(fields: Fields<R>, record: R, args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(args)) {
    const read = fields[k];
    if (!read) continue;
    const [field, value] = read(record, args);
    out[field] = value;
  }
  return out;
}

export const leadPrior = (lead: Lead, args: Record<string, unknown>) => priorOf(LEAD_FIELDS, lead, args);
export const contactPrior = (contact: Contact, args: Record<string, unknown>) => priorOf(CONTACT_FIELDS, contact, args);
