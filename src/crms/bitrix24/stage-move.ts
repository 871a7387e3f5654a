/**
 * move_lead on Bitrix24: `crm.deal.update` with `fields: {STAGE_ID}` or `crm.lead.update` with
 * `fields: {STATUS_ID}` and nothing else, the narrow update CRM_SAFE_UPDATES=stage admits (call-effects.ts
 * narrowUpdateOf reads the same shape at the HTTP core). Won and lost are the stages whose semantics are
 * success and failure (§7.6: deal `S`/`F` in the deal's own pipeline; lead `CONVERTED`/`JUNK`).
 * A deal does not change pipelines through `crm.deal.update` (§7.2), and the portal has no standard
 * loss-reason field: both are refused before anything is sent.
 */
import { validationError } from '../../domain/errors.js';
import type { MoveLeadInput } from '../../domain/inputs.js';
import type { MoveLeadResult, StagePoint } from '../capabilities.js';
import type { CallContext } from '../call-context.js';
import { bxId } from './ids.js';
import { LEAD_PIPELINE, mapDeal, mapLeadRow, stageType, type BStatus } from './map.js';
import type { BitrixParts } from './metadata.js';
import { getRow } from './records.js';

const list = (xs: BStatus[]) => xs.map((s) => `${s.NAME} (${s.STATUS_ID})`).join(', ');
const bySort = (xs: BStatus[]) => xs.slice().sort((a, b) => Number(a.SORT) - Number(b.SORT));

export async function moveLead(b: BitrixParts, ctx: CallContext, input: MoveLeadInput): Promise<MoveLeadResult> {
  const given = [input.stage_id !== undefined && 'stage_id', input.won && 'won', input.lost && 'lost'].filter(Boolean);
  if (given.length !== 1)
    throw validationError(`Give exactly one of stage_id, won: true and lost: true (got ${given.length ? given.join(', ') : 'none'}). Nothing was sent.`);
  if (input.loss_reason_id !== undefined) {
    throw validationError(
      'loss_reason_id: Bitrix24 deals and leads have no standard loss-reason field; move with lost: true and record the reason with add_note. Nothing was sent.',
    );
  }
  const entity = await b.meta.defaultEntity(ctx, input.entity);
  const id = bxId(input.id);
  const [current, l] = await Promise.all([getRow(b, ctx, entity, id), b.meta.lookups(ctx)]);
  let pipeline: StagePoint['pipeline'];
  let stages: BStatus[];
  if (entity === 'deal') {
    const cat = Number(current.CATEGORY_ID ?? 0);
    if (input.pipeline_id !== undefined && Number(input.pipeline_id) !== cat) {
      // §7.2: crm.deal.update does not change CATEGORY_ID (crm.item.update would, but is no narrow stage move).
      throw validationError(
        `pipeline_id: Bitrix24 does not move a deal to another pipeline with crm.deal.update, so move_lead cannot; deal ${id} is in pipeline ${cat}. Nothing was sent.`,
      );
    }
    pipeline = { id: cat, name: l.categories.get(cat)?.name ?? null };
    stages = bySort(l.raw.stages.filter((s) => s.ENTITY_ID === (cat === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${cat}`)));
  } else {
    if (input.pipeline_id !== undefined && String(input.pipeline_id) !== LEAD_PIPELINE.id)
      throw validationError('pipeline_id: Bitrix24 leads have no pipelines; omit it or use entity "deal". Nothing was sent.');
    pipeline = { ...LEAD_PIPELINE };
    stages = bySort(l.raw.leadStatuses);
  }
  const target = input.won
    ? stages.find((s) => stageType(s) === 'won')
    : input.lost
      ? stages.find((s) => stageType(s) === 'lost')
      : stages.find((s) => s.STATUS_ID === String(input.stage_id));
  if (!target) {
    const what = input.stage_id !== undefined ? `stage_id: "${String(input.stage_id)}" is not a stage of` : `no ${input.won ? 'won' : 'lost'} stage in`;
    throw validationError(
      `${what} ${entity === 'deal' ? `pipeline "${pipeline.name}" (${pipeline.id})` : 'the lead statuses'}. Its stages: ${list(stages)}. Nothing was sent.`,
    );
  }
  const field = entity === 'deal' ? 'STAGE_ID' : 'STATUS_ID';
  const was = typeof current[field] === 'string' ? (current[field] as string) : null;
  const from: StagePoint = { pipeline, stage: was ? { id: was, name: stages.find((s) => s.STATUS_ID === was)?.NAME ?? null } : null };
  const to: StagePoint = { pipeline, stage: { id: target.STATUS_ID, name: target.NAME } };
  const [a, z] = [from.stage?.name ?? from.stage?.id ?? 'no stage', target.NAME];
  const method = `crm.${entity}.update`;
  const params = { id, fields: { [field]: target.STATUS_ID } };
  if (ctx.dryRun) return { dry_run: true, lead: null, from, to, moved: `would move from ${a} to ${z}`, requests: [b.api.plan(method, params)] };
  const map = (r: typeof current) => (entity === 'deal' ? mapDeal(r, l) : mapLeadRow(r, l));
  if (was === target.STATUS_ID) return { lead: map(current), from, to, moved: `already at ${z}; nothing was sent` };
  await b.api.call(ctx, method, params);
  return { lead: map(await getRow(b, ctx, entity, id)), from, to, moved: `moved from ${a} to ${z}` };
}
