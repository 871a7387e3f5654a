/**
 * Loss reasons (§12: `GET /api/v4/leads/loss_reasons` and `/{id}`): the reasons a lead closed as lost
 * (status 143, §7) may carry in `loss_reason_id`. The demo account has loss reasons on
 * (`is_loss_reason_enabled`) and these three; editing them (POST/PATCH/DELETE) is configuration and is not
 * emulated. Rows are `{id, name, sort, created_at, updated_at, _links}`; the list is a HAL page like the
 * other lists (§4), and a missing id is 204 like the other single reads.
 */
import type { EmuResponse } from '../harness.js';
import { type Ctx, selfLink } from './context.js';
import { intFilter, onlyParams, runList } from './list.js';
import { hal } from './responses.js';

export interface KLossReason {
  id: number;
  name: string;
  sort: number;
  created_at: number;
  updated_at: number;
}

const AT = 1_700_000_000;

export const LOSS_REASONS: readonly KLossReason[] = [
  { id: 8001, name: 'Too expensive', sort: 1, created_at: AT, updated_at: AT },
  { id: 8002, name: 'Chose a competitor', sort: 2, created_at: AT, updated_at: AT },
  { id: 8003, name: 'No budget this year', sort: 3, created_at: AT, updated_at: AT },
];

/** True when `id` names one of the account's loss reasons (a lead's `loss_reason_id` must). */
export const isLossReason = (id: number) => LOSS_REASONS.some((r) => r.id === id);

const render = (ctx: Ctx, r: KLossReason) => ({ ...r, _links: selfLink(ctx, `/api/v4/leads/loss_reasons/${r.id}`) });

export function listLossReasons(ctx: Ctx): EmuResponse {
  return runList(ctx, '/api/v4/leads/loss_reasons', LOSS_REASONS, { key: 'loss_reasons', filters: { id: intFilter<KLossReason>((r) => r.id) } }, (r) =>
    render(ctx, r),
  );
}

export function getLossReason(ctx: Ctx, id: number): EmuResponse {
  onlyParams(ctx, []);
  const r = LOSS_REASONS.find((x) => x.id === id);
  return r ? hal(render(ctx, r)) : { status: 204 };
}
