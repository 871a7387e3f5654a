/**
 * Dedupe-then-create for companies, written once over provider primitives, the way create-contact.ts does it
 * for people: check the input → a company with the same email or phone is returned instead of a second one →
 * build and send → when the answer was lost, look (by email/phone) before sending again; without either we
 * cannot tell, and the error stands. From the lookup until the create is confirmed it holds the lock on the
 * phone and email (store/identity-lock.ts, the same keys a person's create takes), so callers racing on one
 * company create one.
 */
import { CrmError, validationError } from '../domain/errors.js';
import type { CallContext, Company, CreateCompanyInput, Id, PlannedRequest } from '../crms/types.js';
import type { CompanyPrimitives, NewCompany } from '../crms/create-steps.js';
import { checkEmail, checkPhone } from '../domain/validate.js';
import { personKeys, processIdentityLocks, type PersonLock } from '../store/identity-lock.js';
import { NO_DUPLICATE_CHECK, type DuplicateCheck } from './create-lead.js';

export type { CompanyPrimitives, NewCompany } from '../crms/create-steps.js';

const EXISTS = 'A company with this email/phone already exists: returning it instead of creating a duplicate.';

const localLock = processIdentityLocks.for({ kind: 'local', connection: 'default' });

export interface CreateCompanyResult {
  created: boolean;
  dry_run?: boolean;
  company: Company | null;
  reason?: string;
  requests?: PlannedRequest[];
  duplicate_check: DuplicateCheck;
}

export async function createCompany<D, R>(
  p: CompanyPrimitives<D, R>,
  ctx: CallContext,
  input: CreateCompanyInput,
  lock: PersonLock = localLock,
): Promise<CreateCompanyResult> {
  const name = input.name.trim();
  if (!name) throw validationError('name: give the company a name.');
  const country = await p.country(ctx);
  const phone = checkPhone('phone', input.phone, country);
  checkEmail('email', input.email);
  p.refuse?.(input);
  const draft = await p.prepare(ctx, input);
  const keys = personKeys({ e164: phone?.e164, email: input.email });
  const duplicate_check: DuplicateCheck = keys.length ? 'done' : NO_DUPLICATE_CHECK;
  const r = await lock(keys, () => lookThenCreate(p, ctx, input, { draft, name, phone }));
  return { ...r, duplicate_check };
}

/** The part under the lock: the lookup, then the create and its confirmation. */
async function lookThenCreate<D, R>(
  p: CompanyPrimitives<D, R>,
  ctx: CallContext,
  input: CreateCompanyInput,
  known: Omit<NewCompany<D>, 'input'>,
): Promise<Omit<CreateCompanyResult, 'duplicate_check'>> {
  const q = { email: input.email, phone: input.phone };
  const checkable = !!(input.email || input.phone);
  if (checkable) {
    const existing = await p.findExisting(ctx, q);
    if (existing) return { created: false, company: existing, reason: EXISTS };
  }
  const request = p.build({ ...known, input });
  if (ctx.dryRun) return { created: false, dry_run: true, company: null, requests: [p.plan(request)] };
  let id: Id;
  try {
    id = await p.send(ctx, request);
  } catch (e) {
    // The response was lost: look before creating again (by email/phone; without them we cannot tell).
    if (!(e instanceof CrmError && e.ambiguous) || !checkable) throw e;
    const landed = await p.findJustCreated(ctx, q);
    if (landed) return { created: true, company: landed };
    id = await p.send(ctx, request);
  }
  return { created: true, company: await p.getCompany(ctx, id) };
}
