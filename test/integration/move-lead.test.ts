/**
 * move_lead and CRM_SAFE_UPDATES=stage through a real MCP client on both emulators: what the emulator
 * received (the stage alone, or nothing at all) is the assertion, with the expected bodies written by hand.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PolicyFlags } from '../../src/policy/policy.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { RecordedRequest } from '../../src/sandbox/harness.js';
import { CREATE_ONLY, WRITE, bitrixMethods, connectBitrix, connectKommo, errorOf, startBitrix, startKommo, structured, writesTo } from '../helpers/index.js';

const STAGE: PolicyFlags = { ...CREATE_ONLY, safeUpdates: ['stage'] };

interface Moved {
  moved: string;
  lead: { id: number | string; stage: { id: number | string; name: string | null } | null } | null;
  from: { stage: { id: number | string; name: string | null } | null };
  to: { stage: { id: number | string; name: string | null } | null };
  requests?: Array<{ method: string; url: string; body: unknown }>;
  dry_run?: boolean;
}

/** A call that may not be listed at all: its error (tool not found) or its result. */
async function attempt(c: { call: (n: string, a: Record<string, unknown>) => Promise<unknown> }, name: string, args: Record<string, unknown>) {
  try {
    return { res: (await c.call(name, args)) as { isError?: boolean; content?: Array<{ type: string; text?: string }> } };
  } catch (e) {
    return { thrown: String(e) };
  }
}

// ---------------------------------------------------------------- Kommo

describe('move_lead on Kommo', () => {
  let emu: KommoEmulator;
  let leadId: number;
  let pipelineId: number;
  let from: { id: number; name: string };
  let to: { id: number; name: string };
  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false });
  });
  afterAll(() => emu.close());
  beforeEach(() => {
    // An open lead and another open stage of its pipeline, read from the emulator's own state.
    const lead = [...emu.state.leads.values()].find((l) => {
      const p = emu.state.pipelines.get(l.pipeline_id);
      const s = p?._embedded.statuses.find((x) => x.id === l.status_id);
      return !l.is_deleted && s && s.type === 0 && s.id !== 142 && s.id !== 143;
    })!;
    const p = emu.state.pipelines.get(lead.pipeline_id)!;
    leadId = lead.id;
    pipelineId = p.id;
    from = p._embedded.statuses.find((s) => s.id === lead.status_id)!;
    to = p._embedded.statuses.find((s) => s.type === 0 && s.id !== lead.status_id && s.id !== 142 && s.id !== 143)!;
    emu.requests.length = 0;
  });
  const patches = () => writesTo(emu.requests).map((r: RecordedRequest) => ({ method: r.method, path: r.path, body: JSON.parse(r.body) as unknown }));

  it('write mode: sends the stage alone and answers with both stage names', async () => {
    const c = await connectKommo(emu, { flags: WRITE });
    const r = structured<Moved>(await c.call('move_lead', { id: leadId, stage_id: to.id }));
    expect(r.moved).toBe(`moved from ${from.name} to ${to.name}`);
    expect(r.lead?.stage?.id).toBe(to.id);
    expect(patches()).toEqual([{ method: 'PATCH', path: `/api/v4/leads/${leadId}`, body: { status_id: to.id } }]);
    expect(emu.state.leads.get(leadId)!.status_id).toBe(to.id);
    await c.close();
  });

  it('a CRM failure is a clear, retryable error and the lead keeps its stage', async () => {
    emu.injectFault(
      { kind: 'status', status: 500, body: '{"title":"ErrInternalServer","status":500}' },
      { match: { method: 'PATCH', path: `/api/v4/leads/${leadId}` }, times: 10 },
    );
    const c = await connectKommo(emu, { flags: WRITE, maxRetries: 0 });
    const e = errorOf(await c.call('move_lead', { id: leadId, stage_id: to.id }));
    expect(e.code).toBe('upstream');
    expect(e.retryable).toBe(true);
    expect(emu.state.leads.get(leadId)!.status_id).toBe(from.id);
    emu.harness.clearFaults();
    await c.close();
  });

  it('create-only: not listed without CRM_SAFE_UPDATES=stage, nothing sent; get_account says which setting admits it', async () => {
    const c = await connectKommo(emu, { flags: CREATE_ONLY });
    const a = await attempt(c, 'move_lead', { id: leadId, stage_id: to.id });
    expect(a.thrown ?? JSON.stringify(a.res)).toMatch(/move_lead/);
    expect(a.res?.isError ?? true).toBe(true);
    const acc = structured<{ policy: { mode: string; disabled_tools: Array<{ name: string; reason: string }> } }>(await c.call('get_account', {}));
    expect(acc.policy.mode).toBe('create-only');
    expect(acc.policy.disabled_tools.find((d) => d.name === 'move_lead')?.reason).toContain('CRM_SAFE_UPDATES=stage');
    expect(writesTo(emu.requests)).toEqual([]);
    await c.close();
  });

  it('create-only + CRM_SAFE_UPDATES=stage: move_lead is allowed; update_lead still is not', async () => {
    const c = await connectKommo(emu, { flags: STAGE });
    const r = structured<Moved>(await c.call('move_lead', { id: leadId, stage_id: to.id }));
    expect(r.to.stage).toEqual({ id: to.id, name: to.name });
    expect(patches()).toEqual([{ method: 'PATCH', path: `/api/v4/leads/${leadId}`, body: { status_id: to.id } }]);
    const acc = structured<{ policy: { mode: string } }>(await c.call('get_account', {}));
    expect(acc.policy.mode).toBe('create-only+stage');
    emu.requests.length = 0;
    const u = await attempt(c, 'update_lead', { id: leadId, status_id: from.id });
    expect(u.thrown ?? JSON.stringify(u.res)).toMatch(/update_lead/);
    expect(writesTo(emu.requests)).toEqual([]);
    await c.close();
  });

  it('create-only + stage: kommo_request sends a stage-only body, and refuses one with anything else (nothing sent)', async () => {
    const c = await connectKommo(emu, { flags: STAGE });
    const ok = await c.call('kommo_request', { method: 'PATCH', path: `/api/v4/leads/${leadId}`, body: { status_id: to.id } });
    expect(ok.isError).toBeFalsy();
    expect(patches()).toEqual([{ method: 'PATCH', path: `/api/v4/leads/${leadId}`, body: { status_id: to.id } }]);
    emu.requests.length = 0;
    for (const body of [
      { status_id: from.id, price: 1 },
      { status_id: from.id, custom_fields_values: [{ field_id: 1, values: [{ value: 'x' }] }] },
      { status_id: from.id, _embedded: { tags: [{ id: 1 }] } },
    ]) {
      const e = errorOf(await c.call('kommo_request', { method: 'PATCH', path: `/api/v4/leads/${leadId}`, body }));
      expect(e.code).toBe('policy_denied');
      expect(e.message).toContain('CRM_SAFE_MODE=false');
    }
    const two = errorOf(
      await c.call('kommo_request', {
        method: 'PATCH',
        path: '/api/v4/leads',
        body: [
          { id: leadId, status_id: from.id },
          { id: leadId + 1, name: 'wide' },
        ],
      }),
    );
    expect(two.code).toBe('policy_denied');
    expect(writesTo(emu.requests)).toEqual([]);
    expect(emu.state.leads.get(leadId)!.status_id).toBe(to.id);
    await c.close();
  });

  it('won, and lost with a loss reason (checked against GET /api/v4/leads/loss_reasons)', async () => {
    const c = await connectKommo(emu, { flags: STAGE });
    const won = structured<Moved>(await c.call('move_lead', { id: leadId, won: true }));
    expect(won.to.stage).toEqual({ id: 142, name: 'Closed - won' });
    expect(patches()).toEqual([{ method: 'PATCH', path: `/api/v4/leads/${leadId}`, body: { status_id: 142, pipeline_id: pipelineId } }]);
    emu.requests.length = 0;
    const lost = structured<Moved>(await c.call('move_lead', { id: leadId, lost: true, loss_reason_id: 8002 }));
    expect(lost.moved).toBe('moved from Closed - won to Closed - lost');
    expect(patches()).toEqual([{ method: 'PATCH', path: `/api/v4/leads/${leadId}`, body: { status_id: 143, pipeline_id: pipelineId, loss_reason_id: 8002 } }]);
    expect(emu.state.leads.get(leadId)!.loss_reason_id).toBe(8002);
    expect(emu.requests.some((r) => r.method === 'GET' && r.path === '/api/v4/leads/loss_reasons')).toBe(true);
    await c.close();
  });

  it('bad input sends nothing: an unknown stage names the valid ones; an unknown loss reason names them; two targets', async () => {
    const c = await connectKommo(emu, { flags: STAGE });
    const bad = errorOf(await c.call('move_lead', { id: leadId, stage_id: 999999 }));
    expect(bad.code).toBe('validation');
    expect(bad.message).toContain(`${to.name} (${to.id})`);
    const reason = errorOf(await c.call('move_lead', { id: leadId, lost: true, loss_reason_id: 9999 }));
    expect(reason.message).toContain('Too expensive (8001)');
    expect(errorOf(await c.call('move_lead', { id: leadId, won: true, lost: true })).code).toBe('validation');
    expect(errorOf(await c.call('move_lead', { id: leadId, stage_id: to.id, loss_reason_id: 8001 })).code).toBe('validation');
    expect(writesTo(emu.requests)).toEqual([]);
    await c.close();
  });

  it('dry run: the exact request, nothing sent', async () => {
    const c = await connectKommo(emu, { flags: STAGE });
    const r = structured<Moved>(await c.call('move_lead', { id: leadId, stage_id: to.id, dry_run: true }));
    expect(r.dry_run).toBe(true);
    expect(r.requests).toEqual([{ method: 'PATCH', url: `${emu.url}/api/v4/leads/${leadId}`, body: { status_id: to.id } }]);
    expect(writesTo(emu.requests)).toEqual([]);
    await c.close();
  });
});

// ---------------------------------------------------------------- Bitrix24

describe('move_lead on Bitrix24', () => {
  let emu: BitrixEmulator;
  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false });
  });
  afterAll(() => emu.close());
  beforeEach(() => {
    emu.requests.length = 0;
  });
  const stagesOf = (cat: number) => emu.state.statuses.filter((s) => s.ENTITY_ID === (cat === 0 ? 'DEAL_STAGE' : `DEAL_STAGE_${cat}`));
  const openDeal = () =>
    [...emu.state.deals.values()].find((d) => {
      const s = stagesOf(Number(d.CATEGORY_ID ?? 0)).find((x) => x.STATUS_ID === d.STAGE_ID);
      return s && !s.SEMANTICS;
    })!;
  const updates = () =>
    emu.requests
      .filter((r) => /crm\.(deal|lead)\.update/.test(r.path) || (/batch/.test(r.path) && /\.update/.test(r.body)))
      .map((r) => ({ method: bitrixMethods([r])[0], body: JSON.parse(r.body) as unknown }));

  it('write mode: crm.deal.update with STAGE_ID alone', async () => {
    const deal = openDeal();
    const cat = Number(deal.CATEGORY_ID ?? 0);
    const target = stagesOf(cat).find((s) => !s.SEMANTICS && s.STATUS_ID !== deal.STAGE_ID)!;
    const c = await connectBitrix(emu, { flags: WRITE });
    const r = structured<Moved>(await c.call('move_lead', { id: deal.ID, entity: 'deal', stage_id: target.STATUS_ID }));
    expect(r.to.stage).toEqual({ id: target.STATUS_ID, name: target.NAME });
    expect(updates()).toEqual([{ method: 'crm.deal.update', body: { id: Number(deal.ID), fields: { STAGE_ID: target.STATUS_ID } } }]);
    expect(emu.state.deals.get(Number(deal.ID))!.STAGE_ID).toBe(target.STATUS_ID);
    await c.close();
  });

  it('a CRM failure is a clear error and the deal keeps its stage', async () => {
    const deal = openDeal();
    const target = stagesOf(Number(deal.CATEGORY_ID ?? 0)).find((s) => !s.SEMANTICS && s.STATUS_ID !== deal.STAGE_ID)!;
    emu.harness.injectFault(
      { kind: 'status', status: 400, body: '{"error":"","error_description":"Access denied."}', contentType: 'application/json' },
      { match: { path: 'crm.deal.update' }, times: 1 },
    );
    const c = await connectBitrix(emu, { flags: WRITE, maxRetries: 0 });
    const e = errorOf(await c.call('move_lead', { id: deal.ID, entity: 'deal', stage_id: target.STATUS_ID }));
    expect(e.message).toMatch(/Access denied/);
    expect(emu.state.deals.get(Number(deal.ID))!.STAGE_ID).toBe(deal.STAGE_ID);
    await c.close();
  });

  it('create-only: not listed without the setting; with it, won is the pipeline’s success stage and a lead’s lost is JUNK', async () => {
    const off = await connectBitrix(emu, { flags: CREATE_ONLY });
    const deal = openDeal();
    const a = await attempt(off, 'move_lead', { id: deal.ID, entity: 'deal', won: true });
    expect(a.thrown ?? JSON.stringify(a.res)).toMatch(/move_lead/);
    expect(updates()).toEqual([]);
    await off.close();
    const c = await connectBitrix(emu, { flags: STAGE });
    const cat = Number(deal.CATEGORY_ID ?? 0);
    const success = stagesOf(cat).find((s) => s.SEMANTICS === 'S')!;
    const won = structured<Moved>(await c.call('move_lead', { id: deal.ID, entity: 'deal', won: true }));
    expect(won.to.stage?.id).toBe(success.STATUS_ID);
    expect(updates()).toEqual([{ method: 'crm.deal.update', body: { id: Number(deal.ID), fields: { STAGE_ID: success.STATUS_ID } } }]);
    emu.requests.length = 0;
    const lead = [...emu.state.leads.values()].find((l) => l.STATUS_ID !== 'JUNK' && l.STATUS_ID !== 'CONVERTED')!;
    const lost = structured<Moved>(await c.call('move_lead', { id: lead.ID, entity: 'lead', lost: true }));
    expect(lost.to.stage?.id).toBe('JUNK');
    expect(updates()).toEqual([{ method: 'crm.lead.update', body: { id: Number(lead.ID), fields: { STATUS_ID: 'JUNK' } } }]);
    await c.close();
  });

  it('create-only + stage: bitrix_call sends a stage-only update (also in a batch), refuses STAGE_ID plus TITLE (nothing sent)', async () => {
    const deal = openDeal();
    const target = stagesOf(Number(deal.CATEGORY_ID ?? 0)).find((s) => !s.SEMANTICS && s.STATUS_ID !== deal.STAGE_ID)!;
    const c = await connectBitrix(emu, { flags: STAGE });
    const ok = await c.call('bitrix_call', { method: 'crm.deal.update', params: { id: deal.ID, fields: { STAGE_ID: target.STATUS_ID } } });
    expect(ok.isError).toBeFalsy();
    expect(updates()).toHaveLength(1);
    emu.requests.length = 0;
    const wide = errorOf(
      await c.call('bitrix_call', { method: 'crm.deal.update', params: { id: deal.ID, fields: { STAGE_ID: target.STATUS_ID, TITLE: 'x' } } }),
    );
    expect(wide.code).toBe('policy_denied');
    const batch = errorOf(
      await c.call('bitrix_call', {
        method: 'batch',
        params: { cmd: { a: `crm.deal.update?id=${deal.ID}&fields[STAGE_ID]=${target.STATUS_ID}`, b: `crm.deal.update?id=${deal.ID}&fields[TITLE]=x` } },
      }),
    );
    expect(batch.code).toBe('policy_denied');
    expect(updates()).toEqual([]);
    const narrowBatch = await c.call('bitrix_call', {
      method: 'batch',
      params: { cmd: { a: `crm.deal.update?id=${deal.ID}&fields[STAGE_ID]=${target.STATUS_ID}` } },
    });
    expect(narrowBatch.isError).toBeFalsy();
    expect(updates().map((u) => u.method)).toEqual(['batch']);
    await c.close();
  });

  it('refused before anything is sent: a loss reason, another pipeline, an unknown stage (naming the valid ones); dry run', async () => {
    const deal = openDeal();
    const cat = Number(deal.CATEGORY_ID ?? 0);
    const c = await connectBitrix(emu, { flags: STAGE });
    const reason = errorOf(await c.call('move_lead', { id: deal.ID, entity: 'deal', lost: true, loss_reason_id: 1 }));
    expect(reason.message).toContain('no standard loss-reason field');
    const other = emu.state.categories.map((x) => Number(x.id)).find((id) => id !== cat) ?? cat + 1;
    const moved = errorOf(await c.call('move_lead', { id: deal.ID, entity: 'deal', stage_id: 'NEW', pipeline_id: other }));
    expect(moved.message).toContain('does not move a deal to another pipeline');
    const bad = errorOf(await c.call('move_lead', { id: deal.ID, entity: 'deal', stage_id: 'NOPE' }));
    expect(bad.code).toBe('validation');
    expect(bad.message).toContain(stagesOf(cat)[0]!.NAME);
    const dry = structured<Moved>(await c.call('move_lead', { id: deal.ID, entity: 'deal', won: true, dry_run: true }));
    expect(dry.requests?.[0]?.body).toEqual({ id: Number(deal.ID), fields: { STAGE_ID: stagesOf(cat).find((s) => s.SEMANTICS === 'S')!.STATUS_ID } });
    expect(updates()).toEqual([]);
    await c.close();
  });
});
