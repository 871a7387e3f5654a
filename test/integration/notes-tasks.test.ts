/**
 * list_notes, list_tasks and complete_task through a real MCP client against both emulators. The rows expected
 * come from hand-made seed data (tasks written into the emulators' state with deadlines around now), not from
 * the code under test; writes are checked by what each emulator received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallToolResult } from '@modelcontextprotocol/client';
import type { CrmProvider } from '../../src/crms/types.js';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import type { KommoEmulator } from '../../src/sandbox/kommo/index.js';
import type { KTask } from '../../src/sandbox/kommo/types.js';
import type { BTask } from '../../src/sandbox/bitrix24/state.js';
import { UNTRUSTED } from '../../src/tools/define.js';
import { listNotes, listTasks } from '../../src/tools/activity.js';
import {
  bitrixMethods,
  closeAll,
  CREATE_ONLY,
  connectBitrix,
  connectKommo,
  errorOf,
  linkClient,
  startBitrix,
  startKommo,
  structured,
  text,
  WRITE,
  writesTo,
} from '../helpers/index.js';

const TOOLSETS = ['core', 'activity', 'followup'];

interface Session {
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  tools(): Promise<string[]>;
  close(): Promise<void>;
}

/** A client on a server listing the followup toolset too (the helpers' servers list the defaults only). */
async function session(base: { provider: CrmProvider; close(): Promise<void> }): Promise<Session> {
  const l = await linkClient({ config: { tools: { toolsets: TOOLSETS } }, providers: [base.provider] }, 'notes-tasks', '0');
  return {
    call: l.call,
    tools: async () => (await l.client.listTools()).tools.map((t) => t.name),
    close: () => closeAll(l, base),
  };
}

interface TaskOut {
  id: number;
  text: string;
  is_completed: boolean;
  overdue: boolean;
  result: string | null;
  record: { entity: string; id: number; name: string | null; url: string | null } | null;
  url: string | null;
  responsible: { id: number; name: string | null } | null;
}
interface PageOut<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
}
const ids = (p: PageOut<{ id: number }>) => p.items.map((x) => x.id);

// ---------------------------------------------------------------- Kommo

describe('Kommo: list_notes, list_tasks, complete_task', () => {
  let emu: KommoEmulator;
  let s: Session;
  let lead: number;
  let contact: number;
  let company: number;
  let anna: number;
  let dmitry: number;
  const now = Math.floor(Date.now() / 1000);
  const D = 86_400;

  beforeAll(async () => {
    emu = await startKommo({ rateLimit: false, demo: false });
    s = await session(await connectKommo(emu, { flags: WRITE }));
    [anna, dmitry] = [...emu.state.users.keys()] as [number, number];
    const created = structured<{ lead: { id: number }; contact_id: number; company_id: number }>(
      await s.call('create_lead', {
        name: 'Website redesign',
        contact: { name: 'Olga Petrova', phone: '+7 912 000-11-22' },
        company: { name: 'Petrova & Co' },
      }),
    );
    [lead, contact, company] = [created.lead.id, created.contact_id, created.company_id];
    for (const t of ['First call', 'Sent the proposal', 'Asked for a discount']) {
      expect((await s.call('add_note', { entity: 'lead', entity_id: lead, text: t })).isError).toBeFalsy();
    }
    await s.call('add_note', { entity: 'contact', entity_id: contact, text: 'Prefers e-mail' });
    const task = (id: number, text: string, due: number, who: number, entity: KTask['entity_type'], eid: number | null, done = false): KTask => ({
      id,
      created_by: anna,
      updated_by: anna,
      created_at: now - 10 * D,
      updated_at: now - 10 * D,
      responsible_user_id: who,
      group_id: 0,
      entity_id: eid,
      entity_type: entity,
      duration: 0,
      is_completed: done,
      task_type_id: 1,
      text,
      complete_till: due,
      account_id: emu.state.account.id,
      ...(done ? { result: { text: 'Talked' } } : {}),
    });
    for (const t of [
      task(9001, 'Overdue call', now - 2 * D, anna, 'leads', lead),
      task(9002, 'Send contract', now + D, dmitry, 'leads', lead),
      task(9003, 'Done call', now - 3 * D, anna, 'contacts', contact, true),
      task(9004, 'Visit office', now + 3 * D, anna, 'companies', company),
      task(9005, 'Overdue internal', now - 3600, dmitry, null, null),
    ])
      emu.state.tasks.set(t.id, t);
  });
  afterAll(async () => {
    await s.close();
    await emu.close();
  });

  it('list_notes: one record, newest first, paged, with the record and author named', async () => {
    const p1 = structured<PageOut<{ id: number; text: string; record: unknown; author: { name: string } }>>(
      await s.call('list_notes', { entity: 'lead', entity_id: lead, limit: 2 }),
    );
    expect(p1.items.map((n) => n.text)).toEqual(['Asked for a discount', 'Sent the proposal']);
    expect(p1.items[0]!.record).toEqual({ entity: 'lead', id: lead, name: 'Website redesign', url: `${emu.url}/leads/detail/${lead}` });
    expect(p1.items[0]!.author.name).toBe(emu.state.users.get(anna)?.name ?? emu.state.users.values().next().value!.name);
    expect(p1.has_more).toBe(true);
    const p2 = structured<PageOut<{ text: string }>>(await s.call('list_notes', { entity: 'lead', entity_id: lead, limit: 2, cursor: p1.cursor }));
    expect(p2.items.map((n) => n.text)).toEqual(['First call']);
    expect(p2.has_more).toBe(false);
    // CRM text is marked untrusted the way the other read tools mark it: in the description the model reads.
    for (const t of [listNotes, listTasks]) expect(t.description).toContain(UNTRUSTED);
  });

  it('list_notes of a missing record is not_found; a deal on Kommo is a validation error', async () => {
    emu.harness.resetLog();
    expect(errorOf(await s.call('list_notes', { entity: 'lead', entity_id: 987654 })).code).toBe('not_found');
    expect(emu.requests.some((r) => r.path.includes('/notes'))).toBe(false);
    expect(errorOf(await s.call('list_notes', { entity: 'deal', entity_id: 1 })).code).toBe('validation');
  });

  it('list_tasks: earliest deadline first, filters by status, user, record and deadline, names beside ids', async () => {
    const all = structured<PageOut<TaskOut>>(await s.call('list_tasks', {}));
    expect(ids(all)).toEqual([9003, 9001, 9005, 9002, 9004]);
    const t1 = all.items.find((t) => t.id === 9001)!;
    expect(t1.record).toEqual({ entity: 'lead', id: lead, name: 'Website redesign', url: `${emu.url}/leads/detail/${lead}` });
    // Kommo has no page per task: the task links its record's.
    expect(t1.url).toBe(`${emu.url}/leads/detail/${lead}`);
    expect(t1.responsible).toEqual({ id: anna, name: emu.state.users.get(anna)!.name });
    expect(t1.overdue).toBe(true);
    expect(all.items.find((t) => t.id === 9003)!.record).toEqual({
      entity: 'contact',
      id: contact,
      name: 'Olga Petrova',
      url: `${emu.url}/contacts/detail/${contact}`,
    });
    expect(all.items.find((t) => t.id === 9004)!.record).toEqual({
      entity: 'company',
      id: company,
      name: 'Petrova & Co',
      url: `${emu.url}/companies/detail/${company}`,
    });
    expect(all.items.find((t) => t.id === 9003)!.result).toBe('Talked');
    expect(all.items.find((t) => t.id === 9005)!.record).toBeNull();
    expect(all.items.find((t) => t.id === 9005)!.url).toBeNull();

    expect(ids(structured(await s.call('list_tasks', { status: 'open' })))).toEqual([9001, 9005, 9002, 9004]);
    expect(ids(structured(await s.call('list_tasks', { status: 'overdue' })))).toEqual([9001, 9005]);
    expect(ids(structured(await s.call('list_tasks', { status: 'done' })))).toEqual([9003]);
    expect(ids(structured(await s.call('list_tasks', { responsible_user_id: dmitry })))).toEqual([9005, 9002]);
    expect(ids(structured(await s.call('list_tasks', { entity: 'lead', entity_id: lead })))).toEqual([9001, 9002]);
    const window = { due_from: new Date(now * 1000).toISOString(), due_to: new Date((now + 2 * D) * 1000).toISOString() };
    expect(ids(structured(await s.call('list_tasks', window)))).toEqual([9002]);
  });

  it('list_tasks pages with a cursor; record names come in one request per kind, not per row', async () => {
    emu.harness.resetLog();
    const p1 = structured<PageOut<TaskOut>>(await s.call('list_tasks', { limit: 2 }));
    expect([ids(p1), p1.has_more]).toEqual([[9003, 9001], true]);
    const p2 = structured<PageOut<TaskOut>>(await s.call('list_tasks', { limit: 2, cursor: p1.cursor }));
    expect([ids(p2), p2.has_more]).toEqual([[9005, 9002], true]);
    const p3 = structured<PageOut<TaskOut>>(await s.call('list_tasks', { limit: 2, cursor: p2.cursor }));
    expect([ids(p3), p3.has_more, p3.cursor]).toEqual([[9004], false, null]);
    emu.harness.resetLog();
    await s.call('list_tasks', {});
    const gets = emu.requests.filter((r) => r.method === 'GET').map((r) => r.path);
    expect(gets.filter((p) => p === '/api/v4/leads')).toHaveLength(1);
    expect(gets.filter((p) => p === '/api/v4/contacts')).toHaveLength(1);
    expect(gets.filter((p) => p === '/api/v4/companies')).toHaveLength(1);
    expect(gets.filter((p) => p === '/api/v4/tasks')).toHaveLength(1);
    const q = new URL(emu.requests.find((r) => r.path === '/api/v4/tasks')!.url, emu.url).searchParams;
    expect(q.get('order[complete_till]')).toBe('asc');
  });

  it('complete_task sends exactly {is_completed, result} and the emulator holds the task done', async () => {
    emu.harness.resetLog();
    const r = structured<{ completed: boolean; task: TaskOut }>(await s.call('complete_task', { id: 9002, result_text: 'Contract sent' }));
    expect(r.completed).toBe(true);
    expect(r.task).toMatchObject({ id: 9002, is_completed: true, result: 'Contract sent', record: { entity: 'lead', id: lead, name: 'Website redesign' } });
    const writes = writesTo(emu.requests);
    expect(writes.map((w) => `${w.method} ${w.path}`)).toEqual(['PATCH /api/v4/tasks/9002']);
    expect(JSON.parse(writes[0]!.body)).toEqual({ is_completed: true, result: { text: 'Contract sent' } });
    expect(emu.state.tasks.get(9002)).toMatchObject({ is_completed: true, result: { text: 'Contract sent' } });
  });

  it('dry run, already done, unknown id, bad input: nothing is written', async () => {
    emu.harness.resetLog();
    const dry = structured<{ dry_run: boolean; requests: Array<{ method: string; url: string; body: unknown }> }>(
      await s.call('complete_task', { id: 9004, result_text: 'Visited', dry_run: true }),
    );
    expect(dry.requests).toEqual([{ method: 'PATCH', url: `${emu.url}/api/v4/tasks/9004`, body: { is_completed: true, result: { text: 'Visited' } } }]);
    const done = structured<{ completed: boolean; reason: string }>(await s.call('complete_task', { id: 9003, result_text: 'Again' }));
    expect(done.completed).toBe(false);
    expect(done.reason).toMatch(/already completed/);
    expect(errorOf(await s.call('complete_task', { id: 424242, result_text: 'x' })).code).toBe('not_found');
    expect(errorOf(await s.call('complete_task', { id: 'abc', result_text: 'x' })).code).toBe('validation');
    expect(errorOf(await s.call('complete_task', { id: 9004 })).code).toBe('validation');
    const bad = await s.call('complete_task', { id: 9004, result_text: '' });
    expect(bad.isError).toBe(true);
    expect(writesTo(emu.requests)).toEqual([]);
    expect(emu.state.tasks.get(9004)!.is_completed).toBe(false);
  });

  it('the emulator refuses a completion without its result (§9)', async () => {
    const token = emu.createLongLivedToken();
    const res = await fetch(`${emu.url}/api/v4/tasks/9004`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ is_completed: true }),
    });
    expect(res.status).toBe(400);
    expect(emu.state.tasks.get(9004)!.is_completed).toBe(false);
  });

  it('a CRM failure is a clear error, and create-only mode does not offer complete_task (nothing sent)', async () => {
    emu.injectFault(
      { kind: 'status', status: 500, body: '{"title":"ErrInternalServer","status":500}' },
      { times: 10, match: { method: 'PATCH', path: '/api/v4/tasks/' } },
    );
    const r = await s.call('complete_task', { id: 9004, result_text: 'Visited' });
    expect(r.isError).toBe(true);
    expect(errorOf(r).code).toBe('upstream');
    emu.harness.clearFaults();
    expect(emu.state.tasks.get(9004)!.is_completed).toBe(false);

    const c = await session(await connectKommo(emu, { flags: CREATE_ONLY }));
    expect(await c.tools()).toEqual(expect.arrayContaining(['list_notes', 'list_tasks']));
    expect(await c.tools()).not.toContain('complete_task');
    emu.harness.resetLog();
    const refused = await c
      .call('complete_task', { id: 9004, result_text: 'Visited' })
      .catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
    expect(refused.isError).toBe(true);
    expect(writesTo(emu.requests)).toEqual([]);
    await c.close();
  });
});

// ---------------------------------------------------------------- Bitrix24

describe('Bitrix24: list_notes, list_tasks, complete_task', () => {
  let emu: BitrixEmulator;
  let s: Session;
  let deal: number;
  let contact: number;
  const now = Date.now();
  const H = 3_600_000;
  const at = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00');

  beforeAll(async () => {
    emu = await startBitrix({ rateLimit: false, demo: false });
    const owner = emu.state.users[0]!;
    emu.state.users.push({ ...structuredClone(owner), ID: '7', NAME: 'Boris', LAST_NAME: 'Petrov', EMAIL: 'boris@example.com' });
    s = await session(await connectBitrix(emu, { flags: WRITE }));
    const d = structured<{ lead: { id: number }; contact_id: number }>(
      await s.call('create_lead', { entity: 'deal', name: 'Website redesign', contact: { name: 'Olga Petrova', email: 'olga@example.com' } }),
    );
    [deal, contact] = [d.lead.id, d.contact_id];
    for (const t of ['First call', 'Sent the proposal', 'Asked for a discount']) await s.call('add_note', { entity: 'deal', entity_id: deal, text: t });
    const me = String(owner.ID);
    const task = (id: number, title: string, due: number | null, who: string, binding: string[], status = '2'): BTask => ({
      id: String(id),
      title,
      description: '',
      responsibleId: who,
      createdBy: me,
      createdDate: at(now - 240 * H),
      changedDate: at(now - 240 * H),
      deadline: due === null ? null : at(due),
      status,
      priority: '1',
      groupId: '0',
      closedDate: status === '5' ? at(now - 24 * H) : null,
      ufCrmTask: binding,
    });
    for (const t of [
      task(501, 'Overdue call', now - 48 * H, me, [`D_${deal}`]),
      task(502, 'Send contract', now + 24 * H, '7', [`D_${deal}`]),
      task(503, 'Done call', now - 72 * H, me, [`C_${contact}`], '5'),
      task(504, 'Overdue internal', now - H, '7', []),
    ])
      emu.state.tasks.set(Number(t.id), t);
  });
  afterAll(async () => {
    await s.close();
    await emu.close();
  });

  it('list_notes reads the timeline comments of the record, newest first, with names', async () => {
    emu.harness.resetLog();
    const p = structured<PageOut<{ text: string; record: unknown; author: { name: string } }>>(await s.call('list_notes', { entity: 'deal', entity_id: deal }));
    expect(p.items.map((n) => n.text)).toEqual(['Asked for a discount', 'Sent the proposal', 'First call']);
    expect(p.items[0]!.record).toEqual({ entity: 'deal', id: deal, name: 'Website redesign', url: `${emu.url}/crm/deal/details/${deal}/` });
    expect(p.items[0]!.author.name).toBe(`${emu.state.users[0]!.NAME} ${emu.state.users[0]!.LAST_NAME}`);
    const body = JSON.parse(emu.requests.find((r) => r.path.endsWith('crm.timeline.comment.list.json'))!.body) as Record<string, unknown>;
    expect(body.filter).toEqual({ ENTITY_ID: deal, ENTITY_TYPE: 'deal' });
    const p1 = structured<PageOut<{ text: string }>>(await s.call('list_notes', { entity: 'deal', entity_id: deal, limit: 2 }));
    const p2 = structured<PageOut<{ text: string }>>(await s.call('list_notes', { entity: 'deal', entity_id: deal, limit: 2, cursor: p1.cursor }));
    expect([p1.has_more, p2.items.map((n) => n.text), p2.has_more]).toEqual([true, ['First call'], false]);
  });

  it('list_tasks: filters by status, user, record and deadline; record and user names beside ids', async () => {
    const all = structured<PageOut<TaskOut>>(await s.call('list_tasks', {}));
    expect(ids(all)).toEqual([503, 501, 504, 502]);
    expect(all.items.find((t) => t.id === 501)).toMatchObject({ overdue: true, record: { entity: 'deal', id: deal, name: 'Website redesign' } });
    expect(all.items.find((t) => t.id === 502)!.responsible).toEqual({ id: 7, name: 'Boris Petrov' });
    // A task's page sits under its responsible user's tasks.
    expect(all.items.find((t) => t.id === 502)!.url).toBe(`${emu.url}/company/personal/user/7/tasks/task/view/502/`);
    expect(all.items.find((t) => t.id === 503)).toMatchObject({ is_completed: true, record: { entity: 'contact', id: contact, name: 'Olga Petrova' } });
    expect(ids(structured(await s.call('list_tasks', { status: 'overdue' })))).toEqual([501, 504]);
    expect(ids(structured(await s.call('list_tasks', { status: 'open' })))).toEqual([501, 504, 502]);
    expect(ids(structured(await s.call('list_tasks', { status: 'done' })))).toEqual([503]);
    expect(ids(structured(await s.call('list_tasks', { responsible_user_id: 7 })))).toEqual([504, 502]);
    expect(ids(structured(await s.call('list_tasks', { entity: 'deal', entity_id: deal })))).toEqual([501, 502]);
    expect(ids(structured(await s.call('list_tasks', { due_from: at(now), due_to: at(now + 48 * H) })))).toEqual([502]);
    const p1 = structured<PageOut<TaskOut>>(await s.call('list_tasks', { limit: 3 }));
    const p2 = structured<PageOut<TaskOut>>(await s.call('list_tasks', { limit: 3, cursor: p1.cursor }));
    expect([ids(p1), p1.has_more, ids(p2), p2.has_more]).toEqual([[503, 501, 504], true, [502], false]);
    emu.harness.resetLog();
    await s.call('list_tasks', { status: 'overdue' });
    const sent = JSON.parse(emu.requests.find((r) => r.path.endsWith('tasks.task.list.json'))!.body) as { filter: Record<string, unknown> };
    expect(Object.keys(sent.filter).sort()).toEqual(['!REAL_STATUS', '<DEADLINE']);
    // Record names in one batch per page, never one call per row.
    expect(bitrixMethods(emu.requests).filter((m) => m === 'batch')).toHaveLength(1);
    expect(bitrixMethods(emu.requests).filter((m) => m.startsWith('crm.deal.get'))).toHaveLength(0);
  });

  it('complete_task sends tasks.task.complete {taskId} only, and the portal holds it completed', async () => {
    emu.harness.resetLog();
    const r = structured<{ completed: boolean; task: TaskOut }>(await s.call('complete_task', { id: 502 }));
    expect(r).toMatchObject({ completed: true, task: { id: 502, is_completed: true } });
    const writes = emu.requests.filter((q) => q.path.endsWith('tasks.task.complete.json'));
    expect(writes).toHaveLength(1);
    expect(JSON.parse(writes[0]!.body)).toEqual({ taskId: 502 });
    expect(emu.state.tasks.get(502)!.status).toBe('5');
  });

  it('already done, unknown id, result text, bad input, dry run: nothing sent', async () => {
    emu.harness.resetLog();
    expect(structured<{ completed: boolean; reason: string }>(await s.call('complete_task', { id: 503 }))).toMatchObject({
      completed: false,
      reason: expect.stringMatching(/already completed/),
    });
    expect(errorOf(await s.call('complete_task', { id: 777 })).code).toBe('not_found');
    expect(errorOf(await s.call('complete_task', { id: 501, result_text: 'Called' })).code).toBe('validation');
    expect(errorOf(await s.call('complete_task', { id: -3 })).code).toBe('validation');
    const dry = structured<{ requests: Array<{ body: unknown }> }>(await s.call('complete_task', { id: 501, dry_run: true }));
    expect(dry.requests.map((q) => q.body)).toEqual([{ taskId: 501 }]);
    expect(bitrixMethods(emu.requests).filter((m) => m === 'tasks.task.complete')).toEqual([]);
    expect(emu.state.tasks.get(501)!.status).toBe('2');
  });

  it('a portal error is a clear error; create-only mode does not offer complete_task', async () => {
    emu.harness.injectFault(
      { kind: 'status', status: 400, body: '{"error":"ERROR_CORE","error_description":"Action is not allowed."}' },
      { match: { path: 'tasks.task.complete' } },
    );
    const r = await s.call('complete_task', { id: 501 });
    expect(r.isError).toBe(true);
    expect(text(r)).toMatch(/Action is not allowed/);
    expect(emu.state.tasks.get(501)!.status).toBe('2');

    const c = await session(await connectBitrix(emu, { flags: CREATE_ONLY }));
    expect(await c.tools()).not.toContain('complete_task');
    emu.harness.resetLog();
    const refused = await c.call('complete_task', { id: 501 }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
    expect(refused.isError).toBe(true);
    expect(bitrixMethods(emu.requests).filter((m) => m === 'tasks.task.complete')).toEqual([]);
    await c.close();
  });
});
