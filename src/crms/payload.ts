/** Parsing a CRM's answer with its lenient schema: one that does not fit is an `upstream` error saying where, not a crash later. */
import type * as z from 'zod';
import { CrmError } from '../domain/errors.js';

export function parsePayload<S extends z.ZodType>(crm: string, schema: S, data: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const at = issue?.path.length ? issue.path.map(String).join('.') : '(root)';
  throw new CrmError({ code: 'upstream', message: `${crm} answered ${what} in an unexpected shape (at ${at}: ${issue?.message ?? 'invalid'}).` });
}
