/**
 * CRM_SAFE_UPDATES: the policy admits a narrow update under safe mode only when the operator listed it, a
 * narrowing can only take it away, and the HTTP core admits, under a narrow grant, only the requests the wing
 * classifies as exactly that update. The request tables are written out by hand, tricky shapes included.
 */
import { describe, expect, it } from 'vitest';
import { decide, Grant, isAllowed, modeOf, narrowFlags, type PolicyFlags, type SafeUpdate } from '../../src/policy/policy.js';
import { kommoAdapter } from '../../src/crms/kommo/adapter.js';
import { makeBitrixAdapter } from '../../src/crms/bitrix24/adapter.js';
import { kommoRequestEffect } from '../../src/crms/kommo/raw-tool.js';
import { bitrixCallEffect } from '../../src/crms/bitrix24/raw-tool.js';
import { HttpCore, type HttpMethod } from '../../src/http/client.js';
import { CrmError } from '../../src/domain/errors.js';
import { CREATE_ONLY, READ_ONLY, WRITE } from '../helpers/index.js';

const STAGE: PolicyFlags = { ...CREATE_ONLY, safeUpdates: ['stage'] };
const BOTH: PolicyFlags = { ...CREATE_ONLY, safeUpdates: ['stage', 'task_done'] };

describe('the policy decision', () => {
  it.each([
    // flags, effect, kind, allowed
    [CREATE_ONLY, 'update', 'stage', false],
    [STAGE, 'update', 'stage', true],
    [STAGE, 'update', 'task_done', false],
    [STAGE, 'update', undefined, false],
    [STAGE, 'delete', 'stage', false],
    [STAGE, 'admin', 'stage', false],
    [BOTH, 'update', 'task_done', true],
    [{ ...READ_ONLY, safeUpdates: ['stage'] }, 'update', 'stage', false],
    [{ ...READ_ONLY, safeUpdates: ['stage'] }, 'create', undefined, false],
    [WRITE, 'update', 'stage', true],
    [WRITE, 'update', undefined, true],
  ] as const)('%o %s (%s) → %s', (flags, effect, kind, allowed) => {
    expect(decide(flags as PolicyFlags, effect, kind).allow).toBe(allowed);
    expect(isAllowed(flags as PolicyFlags, effect, kind)).toBe(allowed);
  });

  it('a refusal names both settings that would admit the stage move, and no other', () => {
    const d = decide(CREATE_ONLY, 'update', 'stage');
    expect(d.allow).toBe(false);
    const reason = d.allow ? '' : d.reason;
    expect(reason).toContain('CRM_SAFE_UPDATES=stage');
    expect(reason).toContain('CRM_SAFE_MODE=false');
    expect(reason).not.toContain('CRM_ALLOW_WRITES');
    const ro = decide(READ_ONLY, 'update', 'task_done');
    expect(ro.allow ? '' : ro.reason).toContain('CRM_ALLOW_WRITES=true');
    expect(ro.allow ? '' : ro.reason).toContain('CRM_SAFE_UPDATES=task_done');
    // A plain update is refused as before: the safe-updates setting would not admit it.
    const plain = decide(STAGE, 'update');
    expect(plain.allow ? '' : plain.reason).not.toContain('CRM_SAFE_UPDATES');
  });

  it('the mode shows the admitted narrow updates', () => {
    expect(modeOf(CREATE_ONLY)).toBe('create-only');
    expect(modeOf(STAGE)).toBe('create-only+stage');
    expect(modeOf({ ...CREATE_ONLY, safeUpdates: ['task_done', 'stage'] })).toBe('create-only+stage+task_done');
    expect(modeOf({ ...WRITE, safeUpdates: ['stage'] })).toBe('write');
    expect(modeOf({ ...READ_ONLY, safeUpdates: ['stage'] })).toBe('read-only');
  });

  it.each([
    // operator, narrowing, safe updates after
    [BOTH, undefined, ['stage', 'task_done']],
    [BOTH, {}, ['stage', 'task_done']],
    [BOTH, { safeUpdates: ['stage'] }, ['stage']],
    [BOTH, { safeUpdates: [] }, []],
    [STAGE, { safeUpdates: ['stage', 'task_done'] }, ['stage']],
    [CREATE_ONLY, { safeUpdates: ['stage', 'task_done'] }, []],
    [STAGE, { allowWrites: false }, ['stage']],
  ] as const)('narrowing %o by %o never widens: %o', (flags, narrow, after) => {
    const n = narrowFlags(flags, narrow as Partial<PolicyFlags> | undefined);
    expect(n.safeUpdates ?? []).toEqual(after);
    for (const kind of ['stage', 'task_done'] as const) {
      if (isAllowed(n, 'update', kind)) expect(isAllowed(flags, 'update', kind)).toBe(true);
    }
  });

  it('a read-only narrowing refuses the stage move the operator admitted', () => {
    expect(decide(narrowFlags(STAGE, { allowWrites: false }), 'update', 'stage').allow).toBe(false);
  });

  it('a narrow grant admits reads and that narrow update only', () => {
    const g = Grant.narrowUpdate('stage');
    expect(g.admits('read', undefined)).toBe(true);
    expect(g.admits('update', 'stage')).toBe(true);
    expect(g.admits('update', 'task_done')).toBe(false);
    expect(g.admits('update', undefined)).toBe(false);
    expect(g.admits('create', undefined)).toBe(false);
    expect(g.admits('delete', 'stage')).toBe(false);
    expect(g.has('update')).toBe(false);
  });
});

// ---------------------------------------------------------------- request shapes → narrow kind

type KRow = [HttpMethod, string, unknown, SafeUpdate | undefined];

const KOMMO: KRow[] = [
  ['PATCH', '/api/v4/leads/42', { status_id: 100 }, 'stage'],
  ['PATCH', '/api/v4/leads/42', { status_id: 143, pipeline_id: 10, loss_reason_id: 8001 }, 'stage'],
  ['PATCH', '/api/v4/leads/42/', { status_id: 142, pipeline_id: 10 }, 'stage'],
  ['PATCH', '/api/v4/leads', [{ id: 42, status_id: 100 }], 'stage'],
  // PHP reads an object with integer keys as a list: one lead.
  ['PATCH', '/api/v4/leads', { '0': { id: 42, status_id: 100 } }, 'stage'],
  ['PATCH', '/api/v4/leads/42', { status_id: 100, price: 5 }, undefined],
  ['PATCH', '/api/v4/leads/42', { status_id: 100, _embedded: { tags: [{ id: 1 }] } }, undefined],
  ['PATCH', '/api/v4/leads/42', { status_id: 100, custom_fields_values: [{ field_id: 1, values: [{ value: 'x' }] }] }, undefined],
  ['PATCH', '/api/v4/leads/42', { status_id: 100, tags_to_add: [{ id: 1 }] }, undefined],
  ['PATCH', '/api/v4/leads/42', { status_id: 100, responsible_user_id: 7 }, undefined],
  ['PATCH', '/api/v4/leads/42', { pipeline_id: 10 }, undefined],
  ['PATCH', '/api/v4/leads/42', { status_id: '100' }, undefined],
  ['PATCH', '/api/v4/leads/42', { status_id: 100, loss_reason_id: null }, undefined],
  ['PATCH', '/api/v4/leads/42', { id: 42, status_id: 100 }, undefined],
  ['PATCH', '/api/v4/leads/42', [{ status_id: 100 }], undefined],
  ['PATCH', '/api/v4/leads', [{ status_id: 100 }], undefined],
  [
    'PATCH',
    '/api/v4/leads',
    [
      { id: 42, status_id: 100 },
      { id: 43, status_id: 100 },
    ],
    undefined,
  ],
  [
    'PATCH',
    '/api/v4/leads',
    [
      { id: 42, status_id: 100 },
      { id: 43, name: 'wide' },
    ],
    undefined,
  ],
  ['PUT', '/api/v4/leads/42', { status_id: 100 }, undefined],
  ['POST', '/api/v4/leads', [{ status_id: 100 }], undefined],
  ['PATCH', '/api/v4/contacts/42', { status_id: 100 }, undefined],
  ['PATCH', '/api/v4/leads/42/notes/1', { status_id: 100 }, undefined],
  ['PATCH', '/api/v4/tasks/5', { is_completed: true, result: { text: 'Called, agreed' } }, 'task_done'],
  ['PATCH', '/api/v4/tasks/5', { is_completed: true }, 'task_done'],
  ['PATCH', '/api/v4/tasks', [{ id: 5, is_completed: true, result: { text: 'ok' } }], 'task_done'],
  ['PATCH', '/api/v4/tasks/5', { is_completed: false }, undefined],
  ['PATCH', '/api/v4/tasks/5', { is_completed: true, text: 'rewritten' }, undefined],
  ['PATCH', '/api/v4/tasks/5', { is_completed: true, complete_till: 1 }, undefined],
  ['PATCH', '/api/v4/tasks/5', { is_completed: true, result: { text: 'x', extra: 1 } }, undefined],
  ['PATCH', '/api/v4/tasks/5', { is_completed: true, result: { text: 5 } }, undefined],
];

describe('Kommo request shapes', () => {
  it.each(KOMMO)('%s %s %j → %s', (method, path, body, kind) => {
    expect(kommoAdapter.safeUpdate!(method, path, body, new URLSearchParams())).toBe(kind);
    const raw = kommoRequestEffect({ method, path, body });
    expect(raw.safeUpdate).toBe(kind);
    if (kind) expect(raw.effect).toBe('update');
  });

  it('a query parameter makes no narrow update', () => {
    expect(kommoAdapter.safeUpdate!('PATCH', '/api/v4/leads/42', { status_id: 100 }, new URLSearchParams({ with: 'contacts' }))).toBeUndefined();
    expect(kommoAdapter.safeUpdate!('PATCH', '/api/v4/leads/42', { status_id: 100 }, new URLSearchParams({ _method: 'DELETE' }))).toBeUndefined();
  });
});

type BRow = [string, Record<string, unknown>, SafeUpdate | undefined];

const BITRIX: BRow[] = [
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON' } }, 'stage'],
  ['crm.deal.update', { id: '5', fields: { STAGE_ID: 'C1:NEW', CATEGORY_ID: 1 } }, 'stage'],
  ['crm.deal.update', { ID: 5, FIELDS: { stage_id: 'LOSE' } }, 'stage'],
  ['CRM.Deal.Update.json', { id: 5, fields: { STAGE_ID: 'WON' } }, 'stage'],
  ['crm.lead.update', { id: 5, fields: { STATUS_ID: 'JUNK' } }, 'stage'],
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON', TITLE: 'x' } }, undefined],
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON', OPPORTUNITY: 1 } }, undefined],
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON', UF_CRM_1: 'x' } }, undefined],
  // Names the portal folds to one are refused outright (ambiguous), so they are never a narrow update.
  ['crm.deal.update', { id: 5, fields: { stage_id: 'WON', STAGE_ID: 'LOSE' } }, undefined],
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON' }, FIELDS: { TITLE: 'x' } }, undefined],
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON' }, params: { REGISTER_SONET_EVENT: 'Y' } }, undefined],
  ['crm.deal.update', { id: 5, fields: { CATEGORY_ID: 1 } }, undefined],
  ['crm.deal.update', { id: 5, fields: { STATUS_ID: 'WON' } }, undefined],
  ['crm.deal.update', { id: 5, fields: { STAGE_ID: ['WON'] } }, undefined],
  ['crm.deal.update', { fields: { STAGE_ID: 'WON' } }, undefined],
  ['crm.lead.update', { id: 5, fields: { STATUS_ID: 'JUNK', OPPORTUNITY: 1 } }, undefined],
  ['crm.lead.update', { id: 5, fields: { STAGE_ID: 'JUNK' } }, undefined],
  ['crm.contact.update', { id: 5, fields: { STAGE_ID: 'WON' } }, undefined],
  ['crm.item.update', { entityTypeId: 2, id: 5, fields: { stageId: 'WON' } }, undefined],
  ['tasks.task.complete', { taskId: 7 }, 'task_done'],
  ['tasks.task.complete', { TASKID: '7' }, 'task_done'],
  ['tasks.task.complete', { taskId: 7, fields: { TITLE: 'x' } }, undefined],
  ['tasks.task.update', { taskId: 7, fields: { STATUS: 5 } }, undefined],
  ['crm.activity.update', { id: 3, fields: { COMPLETED: 'Y' } }, 'task_done'],
  ['crm.activity.update', { id: 3, fields: { COMPLETED: 'Y', SUBJECT: 'x' } }, undefined],
  ['crm.activity.update', { id: 3, fields: { COMPLETED: 'N' } }, undefined],
  ['batch', { cmd: { a: 'crm.deal.update?id=5&fields[STAGE_ID]=WON' } }, 'stage'],
  ['batch', { cmd: { a: 'crm.deal.get?id=5', b: 'crm.deal.update?id=5&fields[STAGE_ID]=WON' } }, 'stage'],
  ['batch', { cmd: ['crm.deal.update?id=5&fields[STAGE_ID]=WON', 'crm.lead.update?id=6&fields[STATUS_ID]=JUNK'] }, 'stage'],
  ['batch', { cmd: { a: 'crm.deal.update?id=5&fields[STAGE_ID]=WON', b: 'crm.deal.update?id=6&fields[TITLE]=x' } }, undefined],
  ['batch', { cmd: { a: 'crm.deal.update?id=5&fields[STAGE_ID]=WON', b: 'tasks.task.complete?taskId=7' } }, undefined],
  ['batch', { cmd: { a: 'crm.deal.update?id=5&fields[STAGE_ID]=WON', b: 'crm.deal.add?fields[TITLE]=x' } }, undefined],
  ['batch', { cmd: { a: 'crm.deal.list', b: 'crm.deal.update?id=$result[a][0][ID]&fields[STAGE_ID]=WON' } }, undefined],
  ['batch', { cmd: { a: 'crm.deal.update?id=5&fields[STAGE_ID]=$result[x]' } }, undefined],
  ['batch', { cmd: { a: 'crm.deal.update?id=5&fields[STAGE_ID]=WON&fields[stage_id]=LOSE' } }, undefined],
];

describe('Bitrix24 call shapes', () => {
  const core = makeBitrixAdapter('/rest/1/secret/');
  it.each(BITRIX)('%s %j → %s', (method, params, kind) => {
    expect(core.safeUpdate!('POST', `/rest/1/secret/${method}`, params, new URLSearchParams())).toBe(kind);
    let raw: ReturnType<typeof bitrixCallEffect> | undefined;
    try {
      raw = bitrixCallEffect(method, params);
    } catch (e) {
      // The raw tool refuses an ambiguous call before classifying it: no narrow update either.
      expect(e).toBeInstanceOf(CrmError);
    }
    expect(raw?.safeUpdate).toBe(kind);
    if (kind) expect(raw!.effect).toBe('update');
  });

  it('parameters in the query make no narrow update', () => {
    expect(core.safeUpdate!('POST', '/rest/1/secret/crm.deal.update', { id: 5, fields: { STAGE_ID: 'WON' } }, new URLSearchParams({ x: '1' }))).toBeUndefined();
  });
});

// ---------------------------------------------------------------- the HTTP core

/** A core whose origin nothing listens on: a request the grant admits fails to connect; a refused one never tries. */
function coreFor(adapter: typeof kommoAdapter) {
  let sent = 0;
  const core = new HttpCore({
    origin: 'http://127.0.0.1:9',
    adapter,
    auth: { headers: async () => ({}), onUnauthorized: async () => false },
    limiter: {
      waiting: 0,
      acquire: async () => {
        sent += 1;
        return () => {};
      },
    },
    timeoutMs: 2000,
    maxRetries: 0,
  });
  return { core, sent: () => sent };
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as CrmError).code;
  }
}

describe('the HTTP core under a narrow grant', () => {
  it.each(KOMMO.filter(([m]) => m === 'PATCH'))('Kommo %s %s %j', async (method, path, body, kind) => {
    const { core, sent } = coreFor(kommoAdapter);
    const code = await outcome(core.request({ method, path, body, op: 'idempotent', grant: Grant.narrowUpdate('stage') }));
    if (kind === 'stage') {
      expect(code).toBe('network');
      expect(sent()).toBe(1);
    } else {
      expect(code).toBe('policy_denied');
      expect(sent()).toBe(0);
    }
  });

  it.each(BITRIX)('Bitrix24 %s %j', async (method, params, kind) => {
    for (const granted of ['stage', 'task_done'] as const) {
      const { core, sent } = coreFor(makeBitrixAdapter('/rest/1/secret/'));
      const code = await outcome(
        core.request({ method: 'POST', path: `/rest/1/secret/${method}`, body: params, op: 'idempotent', grant: Grant.narrowUpdate(granted) }),
      );
      expect([granted, code, sent()]).toEqual(kind === granted ? [granted, 'network', 1] : [granted, 'policy_denied', 0]);
    }
  });

  it('the refusal names the setting', async () => {
    const { core } = coreFor(kommoAdapter);
    await expect(
      core.request({ method: 'PATCH', path: '/api/v4/leads/42', body: { status_id: 100, price: 1 }, op: 'idempotent', grant: Grant.narrowUpdate('stage') }),
    ).rejects.toThrow(/CRM_SAFE_UPDATES=stage.*nothing was sent/);
  });
});
