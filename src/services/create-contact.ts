/**
 * Dedupe-then-create for contacts, written once over provider primitives: check the input → a contact with
 * the same email or phone is returned instead of a second one → the company must exist → build and send →
 * when the answer was lost, look (by email/phone) before sending again; without either we cannot tell, and
 * the error stands. From the lookup until the create is confirmed it holds the person's lock
 * (store/identity-lock.ts), so callers racing on one person create one contact.
 */
import { CrmError, validationError } from '../domain/errors.js';
import type { CallContext, CreateContactInput, CreateContactResult, Id } from '../crms/types.js';
import type { ContactPrimitives, NewContact } from '../crms/create-steps.js';
import { splitName } from '../domain/names.js';
import { checkEmail, checkPhone, requirePersonName } from '../domain/validate.js';
import { personKeys, processIdentityLocks, type PersonLock } from '../store/identity-lock.js';
import { NO_DUPLICATE_CHECK, type DuplicateCheck } from './create-lead.js';

export type { ContactPrimitives, NewContact } from '../crms/create-steps.js';

const EXISTS = 'A contact with this email/phone already exists: returning it instead of creating a duplicate.';

const localLock = processIdentityLocks.for({ kind: 'local', connection: 'default' });

export async function createContact<D, R>(
  p: ContactPrimitives<D, R>,
  ctx: CallContext,
  input: CreateContactInput,
  lock: PersonLock = localLock,
): Promise<CreateContactResult & { duplicate_check: DuplicateCheck }> {
  const country = await p.country(ctx);
  const phone = checkPhone('phone', input.phone, country);
  checkEmail('email', input.email);
  p.refuse?.(input);
  const person = splitName(input);
  const name = requirePersonName(person.full);
  const draft = await p.prepare(ctx, input);
  const keys = personKeys({ e164: phone?.e164, email: input.email });
  const duplicate_check: DuplicateCheck = keys.length ? 'done' : NO_DUPLICATE_CHECK;
  const r = await lock(keys, () => lookThenCreate(p, ctx, input, { draft, person, name, phone }));
  return { ...r, duplicate_check };
}

/** The part under the person's lock: the lookup, then the create and its confirmation. */
async function lookThenCreate<D, R>(
  p: ContactPrimitives<D, R>,
  ctx: CallContext,
  input: CreateContactInput,
  known: Omit<NewContact<D>, 'input' | 'companyId'>,
): Promise<CreateContactResult> {
  const q = { email: input.email, phone: input.phone };
  if (input.email || input.phone) {
    const existing = await p.findExisting(ctx, q);
    if (existing) return { created: false, contact: existing, reason: EXISTS };
  }
  let companyId: number | undefined;
  if (input.company_name) {
    companyId = await p.findCompany(ctx, input.company_name);
    if (companyId === undefined)
      throw validationError(`company_name: no company named "${input.company_name}".${p.noCompanyHint ? ` ${p.noCompanyHint}` : ''}`);
  }
  const request = p.build({ ...known, input, companyId });
  if (ctx.dryRun) return { created: false, dry_run: true, contact: null, requests: [p.plan(request)] };
  let id: Id;
  try {
    id = await p.send(ctx, request);
  } catch (e) {
    // The response was lost: look before creating again (by email/phone; without them we cannot tell).
    if (!(e instanceof CrmError && e.ambiguous) || !(input.email || input.phone)) throw e;
    const landed = await p.findJustCreated(ctx, q);
    if (landed) return { created: true, contact: landed };
    id = await p.send(ctx, request);
  }
  return { created: true, contact: await p.getContact(ctx, id) };
}
