/**
 * Customers and their transactions (§13). Where the sources stop (the transaction body, §13.2) the shapes follow
 * the leads' conventions, §4, §5.3. `POST /customers/{id}/transactions?accrue_bonus=true` also credits the
 * customer's loyalty bonus points: the parameter is the API's (§13.2); the rate is this emulator's loyalty
 * programme.
 */
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, requestIdOf, selfLink } from './context.js';
import { onlyParams } from './list.js';
import { E, type FieldError, hal, noContent, notFound, Validation } from './responses.js';
import type { KCustomer, KTransaction } from './types.js';
import { BodyReader } from './write.js';

/** The emulated loyalty programme (§13.3): a transaction with `accrue_bonus` earns 10 % of its price in points. */
export const BONUS_RATE = 0.1;

function customerOr404(ctx: Ctx, id: number): KCustomer {
  const c = ctx.state.customers.get(id);
  if (!c || c.is_deleted) throw notFound('Customer not found');
  return c;
}

const renderCustomer = (ctx: Ctx, c: KCustomer) => ({ ...c, _links: selfLink(ctx, `/api/v4/customers/${c.id}`) });

const renderTransaction = (ctx: Ctx, t: KTransaction) => ({ ...t, _links: selfLink(ctx, `/api/v4/customers/${t.customer_id}/transactions/${t.id}`) });

/** A missing customer answers 204, like the other single-entity reads (§4). */
export function getCustomer(ctx: Ctx, id: number): EmuResponse {
  onlyParams(ctx, []);
  const c = ctx.state.customers.get(id);
  return c && !c.is_deleted ? hal(renderCustomer(ctx, c)) : noContent();
}

/** One customer's transactions (§13.2); 204 when there are none, as every empty list (§4). */
export function listTransactions(ctx: Ctx, customerId: number): EmuResponse {
  onlyParams(ctx, []);
  customerOr404(ctx, customerId);
  const items = [...ctx.state.transactions.values()].filter((t) => t.customer_id === customerId);
  if (!items.length) return noContent();
  return hal({
    _links: selfLink(ctx, `/api/v4/customers/${customerId}/transactions`),
    _embedded: { transactions: items.map((t) => renderTransaction(ctx, t)) },
  });
}

/** A truthy query flag as PHP's filter_var reads one. */
function flag(v: unknown): boolean {
  return typeof v === 'string' && ['1', 'true', 'on', 'yes'].includes(v.trim().toLowerCase());
}

/** `[{price, comment?, completed_at?, request_id?}]` (§13.2); answers the new ids. With `accrue_bonus` the customer earns points. */
export function createTransactions(ctx: Ctx, customerId: number): EmuResponse {
  onlyParams(ctx, ['accrue_bonus']);
  const customer = customerOr404(ctx, customerId);
  const accrue = flag(ctx.params.accrue_bonus);
  const items = arrayBody(ctx);
  const v = new Validation();
  const plans = items.map((item, i) => {
    const errs: FieldError[] = [];
    let plan: { price: number; comment: string | null; completedAt: number } | undefined;
    if (!isObject(item)) errs.push(E.type('', 'object'));
    else {
      const r = new BodyReader(item, '', errs, ['price', 'comment', 'completed_at', 'request_id']);
      const price = r.int('price', { min: 0 });
      const comment = r.str('comment');
      const completedAt = r.int('completed_at', { min: 0 });
      r.str('request_id');
      if (!r.has('price')) errs.push(E.blank('price'));
      if (typeof price === 'number') plan = { price, comment: comment ?? null, completedAt: typeof completedAt === 'number' ? completedAt : ctx.now };
    }
    v.add(requestIdOf(item, i), errs);
    return plan;
  });
  v.throwIfFailed();
  const out = plans.map((p, i) => {
    const id = ctx.state.nextId.transaction++;
    const accrued = accrue ? Math.floor(p!.price * BONUS_RATE) : 0;
    ctx.state.transactions.set(id, {
      id,
      customer_id: customer.id,
      price: p!.price,
      comment: p!.comment,
      completed_at: p!.completedAt,
      created_by: ctx.userId,
      created_at: ctx.now,
      updated_at: ctx.now,
      accrued_bonus: accrued,
      account_id: ctx.state.account.id,
    });
    customer.ltv += p!.price;
    customer.purchases_count += 1;
    customer.bonus_points += accrued;
    customer.updated_at = ctx.now;
    customer.updated_by = ctx.userId;
    return { id, customer_id: customer.id, request_id: requestIdOf(items[i], i), _links: selfLink(ctx, `/api/v4/customers/${customer.id}/transactions/${id}`) };
  });
  return hal({ _links: selfLink(ctx, `/api/v4/customers/${customer.id}/transactions`), _embedded: { transactions: out } });
}

/** Removes a transaction and what it credited (§13.2); 204 like the other deletes. */
export function deleteTransaction(ctx: Ctx, customerId: number, id: number): EmuResponse {
  onlyParams(ctx, []);
  const customer = customerOr404(ctx, customerId);
  const t = ctx.state.transactions.get(id);
  if (!t || t.customer_id !== customerId) throw notFound('Transaction not found');
  ctx.state.transactions.delete(id);
  customer.ltv -= t.price;
  customer.purchases_count -= 1;
  customer.bonus_points -= t.accrued_bonus;
  customer.updated_at = ctx.now;
  return noContent();
}
