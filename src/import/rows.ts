/**
 * One import row: create_lead's input, checked row by row (a bad row is that row's error, never the call's),
 * and the people of an import grouped by their keys (E.164 phone, lower-cased email) so two rows with the same
 * person make one contact and, unless asked otherwise, one lead.
 */
import * as z from 'zod';
import { CreateLeadArgs, ContactInput, Email, Phone, ShortText, type CreateLeadInput } from '../domain/inputs.js';

export const MAX_ROWS = 500;

/** A row as the tool and the CSV give it (the tool's schema is loose so one bad row cannot fail the call). */
export const ImportRow = CreateLeadArgs.omit({ if_open_lead_exists: true })
  .extend({
    contact: ContactInput.describe('The person; found by email/phone first (in the CRM and among the earlier rows).'),
    company: z
      .object({ name: ShortText.min(1), phone: Phone.optional(), email: Email.optional() })
      .strict()
      .optional()
      .describe('The company; one with this phone/email (as create_company finds it), else this name, is linked.'),
  })
  .strict();

export type ImportRowInput = z.output<typeof ImportRow>;

export type ImportCompany = NonNullable<ImportRowInput['company']>;

/**
 * The row as create_lead's input (whose company is a name), plus the company as given, or why it is not one
 * (zod's words, path first).
 */
export function parseRow(raw: unknown, ifOpen: 'skip' | 'create'): { input: CreateLeadInput; company?: ImportCompany } | { error: string } {
  const r = ImportRow.safeParse(raw);
  if (!r.success) return { error: r.error.issues.map((i) => `${i.path.join('.') || 'row'}: ${i.message}`).join('; ') };
  const { company, ...rest } = r.data;
  return {
    input: { ...rest, ...(company ? { company: { name: company.name } } : {}), if_open_lead_exists: ifOpen === 'create' ? 'create' : 'return' },
    ...(company ? { company } : {}),
  };
}

/**
 * Groups rows by person: rows sharing a phone or an email (transitively) are one person, listed in row order.
 * Rows without keys are each their own group.
 */
export function groupPeople(rows: ReadonlyArray<{ row: number; keys: readonly string[] }>): number[][] {
  const parent = new Map<number, number>();
  const find = (x: number): number => {
    let p = parent.get(x) ?? x;
    while (p !== (parent.get(p) ?? p)) p = parent.get(p) ?? p;
    parent.set(x, p);
    return p;
  };
  const owner = new Map<string, number>();
  for (const { row, keys } of rows) {
    parent.set(row, row);
    for (const k of keys) {
      const o = owner.get(k);
      if (o === undefined) owner.set(k, row);
      else {
        const a = find(o);
        const b = find(row);
        if (a !== b) parent.set(Math.max(a, b), Math.min(a, b));
      }
    }
  }
  const groups = new Map<number, number[]>();
  for (const { row } of rows) {
    const g = find(row);
    groups.set(g, [...(groups.get(g) ?? []), row]);
  }
  return [...groups.values()];
}
