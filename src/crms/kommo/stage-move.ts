/**
 * move_lead on Kommo: one `PATCH /api/v4/leads/{id}` whose body is the stage alone (`status_id`, with
 * `pipeline_id` across pipelines or to won/lost, and `loss_reason_id` when lost, §5.4, §7), which is the
 * narrow update CRM_SAFE_UPDATES=stage admits (effects.ts narrowUpdateOf reads the same shape at the HTTP
 * core). Everything is checked before it is sent: the stage must be in the pipeline (cached pipelines), the
 * loss reason must exist (`GET /api/v4/leads/loss_reasons`, §12, cached).
 */
import * as z from 'zod';
import { validationError } from '../../domain/errors.js';
import type { MoveLeadInput } from '../../domain/inputs.js';
import type { MoveLeadResult, StagePoint } from '../capabilities.js';
import { TtlCache } from '../cache.js';
import type { CallContext } from '../call-context.js';
import { toId } from './ids.js';
import { LOST, WON, mapLead } from './map.js';
import type { KommoParts } from './metadata.js';
import { rawLead } from './records.js';
import type { KPipeline } from './schemas.js';

/** `GET /api/v4/leads/loss_reasons` rows (§12): id, name, sort. */
const KLossReason = z.looseObject({ id: z.number(), name: z.string(), sort: z.number().optional() });
type KLossReason = z.infer<typeof KLossReason>;

/** Loss reasons change as rarely as pipelines: cached per account for five minutes. */
const lossReasons = new TtlCache<KLossReason[]>(5 * 60_000, 50);

async function reasons(k: KommoParts, ctx: CallContext): Promise<KLossReason[]> {
  return lossReasons.get(k.conn.baseUrl, () => k.api.all(ctx, '/api/v4/leads/loss_reasons', 'loss_reasons', KLossReason));
}

const list = (xs: Array<{ id: number; name: string }>) => xs.map((x) => `${x.name} (${x.id})`).join(', ');

/** The one target of a move: exactly one of stage_id, won and lost; a loss reason only with lost. */
export function targetOf(input: Pick<MoveLeadInput, 'stage_id' | 'won' | 'lost' | 'loss_reason_id'>): 'stage' | 'won' | 'lost' {
  const given = [input.stage_id !== undefined && 'stage_id', input.won && 'won', input.lost && 'lost'].filter(Boolean);
  if (given.length !== 1)
    throw validationError(`Give exactly one of stage_id, won: true and lost: true (got ${given.length ? given.join(', ') : 'none'}). Nothing was sent.`);
  if (input.loss_reason_id !== undefined && !input.lost) throw validationError('loss_reason_id goes with lost: true. Nothing was sent.');
  return input.stage_id !== undefined ? 'stage' : input.won ? 'won' : 'lost';
}

function point(p: KPipeline | undefined, statusId: number | null | undefined): StagePoint {
  const s = p?._embedded?.statuses?.find((x) => x.id === statusId);
  const fallback = statusId === WON ? 'Closed - won' : statusId === LOST ? 'Closed - lost' : null;
  return {
    pipeline: p ? { id: p.id, name: p.name } : null,
    stage: statusId ? { id: statusId, name: s?.name ?? fallback } : null,
  };
}

/** The two ends in words: the pipeline named only across pipelines ("Sales › Qualification" to "Partners › New"). */
export function stageWords(from: StagePoint, to: StagePoint): [string, string] {
  const across = from.pipeline?.id !== to.pipeline?.id;
  const w = (p: StagePoint) => `${across && p.pipeline ? `${p.pipeline.name} › ` : ''}${p.stage?.name ?? p.stage?.id ?? 'no stage'}`;
  return [w(from), w(to)];
}

export async function moveLead(k: KommoParts, ctx: CallContext, input: MoveLeadInput): Promise<MoveLeadResult> {
  if (input.entity === 'deal') throw validationError('Kommo has no separate deals: omit `entity`.');
  const target = targetOf(input);
  const id = toId(input.id, 'id');
  const current = await rawLead(k, ctx, id);
  const pipelines = await k.meta.pipelines(ctx);
  const pid = input.pipeline_id !== undefined ? toId(input.pipeline_id, 'pipeline_id') : current.pipeline_id;
  const pipeline = pipelines.find((p) => p.id === pid);
  if (!pipeline) throw validationError(`pipeline_id: no pipeline ${String(pid)}. Pipelines: ${list(pipelines)}. Nothing was sent.`);
  const stages = pipeline._embedded?.statuses ?? [];
  const statusId = target === 'won' ? WON : target === 'lost' ? LOST : toId(input.stage_id!, 'stage_id');
  // Won and lost are in every pipeline (ids shared, §7), listed or not.
  if (target === 'stage' && !stages.some((s) => s.id === statusId)) {
    throw validationError(`stage_id: stage ${statusId} is not in pipeline "${pipeline.name}" (${pipeline.id}). Its stages: ${list(stages)}. Nothing was sent.`);
  }
  let lossReason: number | undefined;
  if (input.loss_reason_id !== undefined) {
    lossReason = toId(input.loss_reason_id, 'loss_reason_id');
    const known = await reasons(k, ctx);
    if (!known.some((r) => r.id === lossReason)) {
      throw validationError(
        `loss_reason_id: no loss reason ${lossReason}. ${known.length ? `Loss reasons: ${list(known)}` : 'This account has no loss reasons'}. Nothing was sent.`,
      );
    }
  }
  const from = point(
    pipelines.find((p) => p.id === current.pipeline_id),
    current.status_id,
  );
  const to = point(pipeline, statusId);
  // Only the stage: the pipeline too when it changes, or for won/lost, whose ids every pipeline shares (§7).
  const body: Record<string, number> = { status_id: statusId };
  if (pipeline.id !== current.pipeline_id || statusId === WON || statusId === LOST) body.pipeline_id = pipeline.id;
  if (lossReason !== undefined) body.loss_reason_id = lossReason;
  const path = `/api/v4/leads/${id}`;
  const [a, b] = stageWords(from, to);
  if (ctx.dryRun) return { dry_run: true, lead: null, from, to, moved: `would move from ${a} to ${b}`, requests: [k.api.plan('PATCH', path, body)] };
  const l = await k.meta.lookups(ctx);
  if (pipeline.id === current.pipeline_id && statusId === current.status_id && lossReason === undefined) {
    return { lead: mapLead(current, l), from, to, moved: `already at ${b}; nothing was sent` };
  }
  await k.api.call(ctx, 'PATCH', path, { body, op: 'idempotent' });
  return { lead: mapLead(await rawLead(k, ctx, id), l), from, to, moved: `moved from ${a} to ${b}` };
}
