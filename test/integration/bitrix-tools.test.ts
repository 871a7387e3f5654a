/** The shared tools on Bitrix24 through a real MCP Client against the emulator. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { FULL, bitrixMethods, connectBitrix, errorOf, startBitrix, structured, text, type ConnectedBitrix, bitrixSession, closeAll } from '../helpers/index.js';

interface LeadOut {
  id: number;
  entity: string;
  name: string;
  stage: { id: string; name: string | null; type: string | null } | null;
  pipeline: { id: number | string; name: string | null } | null;
  contact_ids: number[];
}
interface PageOut<T> {
  items: T[];
  has_more: boolean;
  cursor: string | null;
}

let emu: BitrixEmulator;
let c: ConnectedBitrix;
beforeAll(async () => {
  ({ emu, c } = await bitrixSession({ flags: FULL }));
});
afterAll(() => closeAll(c, emu));

describe('reads', () => {
  it('get_account shows portal, mode and policy', async () => {
    const a = structured<{ provider: string; auth: { type: string }; policy: { mode: string }; details: { crm_mode: string } }>(await c.call('get_account'));
    expect(a).toMatchObject({ provider: 'bitrix24', auth: { type: 'webhook' }, policy: { mode: 'full' } });
    expect(a.details.crm_mode).toMatch(/classic/);
  });

  it('get_pipelines: deal categories with stage semantics plus the lead statuses', async () => {
    const { pipelines } = structured<{ pipelines: Array<{ id: number | string; entity: string; stages: Array<{ id: string; type: string }> }> }>(
      await c.call('get_pipelines'),
    );
    const deals = pipelines.filter((p) => p.entity === 'deal');
    expect(deals.length).toBe(3);
    for (const p of deals) {
      expect(p.stages.some((s) => s.type === 'won')).toBe(true);
      expect(p.stages.some((s) => s.type === 'lost')).toBe(true);
    }
    expect(pipelines.find((p) => p.entity === 'lead')?.stages.length).toBeGreaterThan(2);
  });

  it('a 1,000-deal listing uses batched fast paging: 4 calls, 2 list requests (reading ahead once scanning)', async () => {
    emu.harness.resetLog();
    const seen = new Set<number>();
    let cursor: string | null = null;
    let calls = 0;
    do {
      const page: PageOut<LeadOut> = structured(await c.call('list_leads', { entity: 'deal', limit: 250, ...(cursor ? { cursor } : {}) }));
      page.items.forEach((d) => seen.add(d.id));
      cursor = page.cursor;
      calls += 1;
    } while (cursor && seen.size < 1000);
    expect(seen.size).toBe(1000);
    expect(calls).toBe(4);
    // The first page is one batch of 6 chained commands (250 rows + one to know has_more); the first cursor
    // call reads ahead a full batch of 50 pages, which serves the rest. Lookups are fetched once, cached.
    const batches = emu.requests.filter((q) => q.path.endsWith('/batch.json'));
    const listBatches = batches.filter((q) => q.body.includes('crm.deal.list'));
    expect(listBatches).toHaveLength(2);
    expect((JSON.parse(listBatches[0]!.body) as { cmd: object }).cmd).toSatisfy((cmd: object) => Object.keys(cmd).length === 6);
    expect((JSON.parse(listBatches[1]!.body) as { cmd: object }).cmd).toSatisfy((cmd: object) => Object.keys(cmd).length === 50);
    expect(bitrixMethods(emu.requests).filter((m) => m === 'crm.deal.list')).toHaveLength(0);
  });

  it('a read-ahead page is exact: has_more and the last page match a direct listing', async () => {
    const ids: number[] = [];
    let cursor: string | null = null;
    let last: PageOut<LeadOut> | undefined;
    do {
      const page: PageOut<LeadOut> = structured(await c.call('list_leads', { entity: 'deal', limit: 100, pipeline_id: 1, ...(cursor ? { cursor } : {}) }));
      ids.push(...page.items.map((d) => d.id));
      cursor = page.cursor;
      last = page;
    } while (cursor);
    expect(last!.has_more).toBe(false);
    const expected = [...emu.state.deals.values()]
      .filter((d) => String(d.CATEGORY_ID) === '1')
      .map((d) => Number(d.ID))
      .sort((a, b) => b - a);
    expect(ids).toEqual(expected);
  });

  it('list_leads pages through every deal with an exact has_more', async () => {
    const seen = new Set<number>();
    let cursor: string | null = null;
    let guard = 0;
    do {
      const page: PageOut<LeadOut> = structured(await c.call('list_leads', { entity: 'deal', limit: 250, ...(cursor ? { cursor } : {}) }));
      page.items.forEach((d) => seen.add(d.id));
      if (!page.has_more) expect(page.cursor).toBeNull();
      cursor = page.cursor;
    } while (cursor && ++guard < 20);
    const total = (await c.provider.call({ grant: (await import('../../src/policy/policy.js')).Grant.readOnly() }, 'crm.deal.list', { select: ['ID'] })).total;
    expect(seen.size).toBe(total);
  });

  it('lists leads too, and filters deals by pipeline', async () => {
    const leads = structured<PageOut<LeadOut>>(await c.call('list_leads', { entity: 'lead', limit: 10 }));
    expect(leads.items.every((l) => l.entity === 'lead')).toBe(true);
    const { pipelines } = structured<{ pipelines: Array<{ id: number; entity: string }> }>(await c.call('get_pipelines'));
    const second = pipelines.filter((p) => p.entity === 'deal')[1]!;
    const deals = structured<PageOut<LeadOut>>(await c.call('list_leads', { pipeline_id: second.id, limit: 50 }));
    expect(deals.items.length).toBeGreaterThan(0);
    expect(deals.items.every((d) => d.pipeline?.id === second.id && d.stage?.name)).toBe(true);
  });

  it('get_lead with contacts; not found is clear', async () => {
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { limit: 5 }));
    // Bitrix24 list pages leave contact_ids out (get_lead lists every contact).
    expect(page.items.every((d) => (d as { contact_ids?: unknown }).contact_ids === undefined)).toBe(true);
    const withContact = page.items[0]!;
    const r = structured<{ lead: LeadOut; contacts: Array<{ id: number; phones: string[] }> }>(await c.call('get_lead', { id: withContact.id }));
    expect(r.lead.id).toBe(withContact.id);
    expect(errorOf(await c.call('get_lead', { id: 99999999 })).code).toBe('not_found');
    expect(errorOf(await c.call('get_contact', { id: 99999999 })).code).toBe('not_found');
  });

  it('contacts, companies, users, custom fields', async () => {
    const contacts = structured<PageOut<{ id: number; phones: string[] }>>(await c.call('list_contacts', { limit: 60 }));
    expect(contacts.items).toHaveLength(60);
    expect(contacts.has_more).toBe(true);
    expect(structured<{ contact: { id: number } }>(await c.call('get_contact', { id: contacts.items[0]!.id })).contact.id).toBe(contacts.items[0]!.id);
    const companies = structured<PageOut<{ id: number; name: string }>>(await c.call('list_companies', { limit: 5 }));
    expect(structured<{ company: { name: string } }>(await c.call('get_company', { id: companies.items[0]!.id })).company.name).toBe(companies.items[0]!.name);
    expect(structured<{ users: unknown[] }>(await c.call('list_users')).users.length).toBeGreaterThanOrEqual(3);
    const f = structured<{ fields: Array<{ id: string; name: string }> }>(await c.call('get_custom_fields', { entity: 'deals' }));
    expect(f.fields.every((x) => x.id.startsWith('UF_'))).toBe(true);
    expect(f.fields.length).toBeGreaterThan(0);
  });
});

describe('search_lead_by_contact', () => {
  it.each(['+7 912 345-67-89', '8 (912) 345 67 89', '79123456789'])('finds Ivan by %s in ≤ 3 HTTP requests', async (phone) => {
    await c.call('get_pipelines'); // warm the metadata cache
    emu.harness.resetLog();
    const r = structured<{ found: boolean; contacts: Array<{ name: string }>; leads: LeadOut[] }>(await c.call('search_lead_by_contact', { phone }));
    expect(r.found).toBe(true);
    expect(r.contacts.map((x) => x.name).join()).toMatch(/Ivan/);
    expect(r.leads.some((l) => l.entity === 'deal')).toBe(true);
    expect(emu.requests.length).toBeLessThanOrEqual(3);
  });

  it('by email in any case; unknown → found false', async () => {
    expect(structured<{ found: boolean }>(await c.call('search_lead_by_contact', { email: 'IVAN.PETROV@example.com' })).found).toBe(true);
    expect(structured<{ found: boolean }>(await c.call('search_lead_by_contact', { email: 'nobody@nowhere.example' })).found).toBe(false);
  });
});

describe('writes', () => {
  it('create_lead: duplicate-safe, otherwise contact + lead in one batch', async () => {
    emu.harness.resetLog();
    const dup = structured<{ created: boolean }>(await c.call('create_lead', { name: 'dup', contact: { first_name: 'Ivan', phone: '8 912 345 67 89' } }));
    expect(dup.created).toBe(false);
    expect(bitrixMethods(emu.requests).filter((m) => m.endsWith('.add'))).toHaveLength(0);
    const r = structured<{ created: boolean; lead: LeadOut; contact_id: number }>(
      await c.call('create_lead', {
        name: 'Ada deal',
        entity: 'deal',
        price: 500,
        contact: { first_name: 'Ada', last_name: 'Lovelace', email: 'ada-b24@example.com', phone: '+44 20 7946 0002' },
      }),
    );
    expect(r.created).toBe(true);
    expect(r.lead).toMatchObject({ entity: 'deal', name: 'Ada deal' });
    expect(r.lead.contact_ids).toContain(r.contact_id);
    const again = structured<{ found: boolean; leads: LeadOut[] }>(await c.call('search_lead_by_contact', { email: 'ada-b24@example.com' }));
    expect(again.leads.map((l) => l.id)).toContain(r.lead.id);
  });

  it.each(['reset-after', 'reset-before', 'timeout'] as const)('create_lead after an ambiguous %s leaves exactly one record', async (kind) => {
    const e2 = await startBitrix({ rateLimit: false });
    const c2 = await connectBitrix(e2, { flags: FULL, timeoutMs: 800, maxRetries: 2 });
    const email = `amb-${kind}@example.org`;
    e2.harness.injectFault({ kind }, { match: { path: 'batch' } });
    const r = await c2.call('create_lead', { name: `Ambiguous ${kind}`, entity: 'deal', contact: { first_name: 'Amb', email } });
    expect(r.isError, text(r)).toBeFalsy();
    expect(structured<{ created: boolean }>(r).created).toBe(true);
    const deals = [...e2.state.deals.values()].filter((d) => d.TITLE === `Ambiguous ${kind}`);
    expect(deals).toHaveLength(1);
    const contacts = [...e2.state.contacts.values()].filter((x) => JSON.stringify(x.EMAIL ?? []).includes(email));
    expect(contacts).toHaveLength(1);
    await c2.close();
    await e2.close();
  });

  it('create_lead defaults to a lead in classic mode and a deal in simple mode', async () => {
    const lead = structured<{ lead: LeadOut }>(await c.call('create_lead', { name: 'Classic lead' }));
    expect(lead.lead.entity).toBe('lead');
    const e2 = await startBitrix({ rateLimit: false, mode: 'simple' });
    const c2 = await connectBitrix(e2, { flags: FULL });
    expect(structured<{ lead: LeadOut }>(await c2.call('create_lead', { name: 'Simple deal' })).lead.entity).toBe('deal');
    expect(errorOf(await c2.call('create_lead', { name: 'x', entity: 'lead' })).message).toMatch(/simple CRM mode/);
    await c2.close();
    await e2.close();
  });

  it('update_contact keeps existing phones; explicit removal works', async () => {
    const made = structured<{ contact: { id: number; phones: string[] } }>(await c.call('create_contact', { first_name: 'Multi', phone: '+1 202 555 0101' }));
    const upd = structured<{ contact: { phones: string[] } }>(await c.call('update_contact', { id: made.contact.id, phones_to_add: ['+1 202 555 0102'] }));
    expect(upd.contact.phones.sort()).toEqual(['+12025550101', '+12025550102']);
    const rm = structured<{ contact: { phones: string[] } }>(await c.call('update_contact', { id: made.contact.id, phones_to_remove: ['+12025550101'] }));
    expect(rm.contact.phones).toEqual(['+12025550102']);
  });

  it('update_lead moves a deal to another stage of its pipeline', async () => {
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { limit: 1, pipeline_id: 0 }));
    const { pipelines } = structured<{ pipelines: Array<{ id: number; stages: Array<{ id: string; type: string }> }> }>(await c.call('get_pipelines'));
    const won = pipelines.find((p) => p.id === 0)!.stages.find((s) => s.type === 'won')!;
    const r = structured<{ lead: LeadOut }>(await c.call('update_lead', { id: page.items[0]!.id, entity: 'deal', status_id: won.id }));
    expect(r.lead.stage?.type).toBe('won');
  });

  it('add_note, create_task, delete_contact', async () => {
    const page = structured<PageOut<LeadOut>>(await c.call('list_leads', { entity: 'deal', limit: 1 }));
    const n = structured<{ note: { id: number } }>(await c.call('add_note', { entity: 'deal', entity_id: page.items[0]!.id, text: 'Spoke to client' }));
    expect(n.note.id).toBeTruthy();
    const t = structured<{ task: { id: number } }>(
      await c.call('create_task', { text: 'Follow up', complete_till: '2030-01-01T10:00:00Z', entity: 'deal', entity_id: page.items[0]!.id }),
    );
    expect(t.task.id).toBeTruthy();
    const made = structured<{ contact: { id: number } }>(await c.call('create_contact', { first_name: 'Temp', email: 'temp-delete@example.org' }));
    expect(structured<{ deleted: { id: number } }>(await c.call('delete_contact', { id: made.contact.id })).deleted.id).toBe(made.contact.id);
    expect(errorOf(await c.call('get_contact', { id: made.contact.id })).code).toBe('not_found');
  });
});

describe('limits and faults', () => {
  it('a burst of 56 calls stays inside the leaky bucket: zero QUERY_LIMIT_EXCEEDED', async () => {
    const e2 = await startBitrix({});
    const c2 = await connectBitrix(e2);
    // 56 requests against a 50-burst bucket: the client must pace the last few at ≈2/s. Use bitrix_call (uncached).
    const calls = Array.from({ length: 56 }, () => c2.call('bitrix_call', { method: 'crm.deal.list', params: { select: ['ID'], start: -1 } }));
    for (const r of await Promise.all(calls)) expect(r.isError, text(r)).toBeFalsy();
    expect(e2.stats.queryLimitExceeded).toBe(0);
    await c2.close();
    await e2.close();
  });

  it('QUERY_LIMIT_EXCEEDED (503) is retried, even for an add', async () => {
    emu.harness.resetLog();
    emu.harness.injectFault(
      { kind: 'status', status: 503, body: '{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}' },
      { match: { path: 'crm.contact.add' } },
    );
    const r = await c.call('bitrix_call', { method: 'crm.contact.add', params: { fields: { NAME: 'Retry' } } });
    expect(r.isError, text(r)).toBeFalsy();
    expect(emu.requests.filter((q) => q.path.includes('crm.contact.add'))).toHaveLength(2);
  });

  it('OPERATION_TIME_LIMIT pauses that method only, until its reset, without sending more calls', async () => {
    const e2 = await startBitrix({});
    e2.setOperatingCost('crm.deal.list', 200); // 480 s budget per 10 minutes: the 4th call is refused
    const c2 = await connectBitrix(e2);
    const list = () => c2.call('bitrix_call', { method: 'crm.deal.list', params: { select: ['ID'], start: -1 } });
    let refused: ReturnType<typeof errorOf> | undefined;
    for (let i = 0; i < 6 && !refused; i++) {
      const r = await list();
      if (r.isError) refused = errorOf(r);
    }
    expect(refused?.code).toBe('rate_limited');
    expect(refused?.retryable).toBe(true);
    expect(refused?.message).toMatch(/OPERATION_TIME_LIMIT.*retry crm\.deal\.list in about \d+ s/);
    const sent = e2.requests.length;
    expect(errorOf(await list()).code).toBe('rate_limited');
    expect(e2.requests.length, 'a paused method sends nothing').toBe(sent);
    const other = await c2.call('bitrix_call', { method: 'crm.contact.list', params: { select: ['ID'], start: -1 } });
    expect(other.isError, text(other)).toBeFalsy();
    await c2.close();
    await e2.close();
  });

  it('errors with HTTP 200 and an empty code are still errors', async () => {
    emu.harness.injectFault({ kind: 'status', status: 200, body: '{"error":"","error_description":"Not found"}' }, { match: { path: 'crm.deal.get' } });
    expect(errorOf(await c.call('bitrix_call', { method: 'crm.deal.get', params: { id: 1 } })).code).toBe('not_found');
  });

  it('a moved portal (302) is followed for the same method with the body intact', async () => {
    const target = await startBitrix({ rateLimit: false, webhookSecret: emu.webhookSecret });
    const moved = await startBitrix({ rateLimit: false, webhookSecret: emu.webhookSecret });
    moved.setMovedTo(target.url);
    const c2 = await connectBitrix(moved);
    const r = structured<{ result: Array<{ ID: string }> }>(
      await c2.call('bitrix_call', { method: 'crm.deal.list', params: { select: ['ID'], filter: { '>ID': 5 } } }),
    );
    expect(r.result.length).toBeGreaterThan(0);
    const seen = target.requests.find((q) => q.path.includes('crm.deal.list'))!;
    expect(seen.body).toContain('>ID');
    // Followed for this request only (issue 9): the configured origin is kept and the move is reported.
    expect(c2.provider.http.origin).toBe(moved.url);
    expect(c2.provider.pendingMove?.to).toBe(target.url);
    await c2.close();
    await target.close();
    await moved.close();
  });

  it('OAuth: expired_token triggers one single-flight refresh and the rotated token is persisted', async () => {
    const e2 = await startBitrix({ rateLimit: false, oauth: { clientId: 'app.1', clientSecret: 'app-secret-123456' } });
    const t = await e2.issueOAuthTokens();
    const c2 = await connectBitrix(e2, {
      connection: { oauth: { clientId: 'app.1', clientSecret: 'app-secret-123456', refreshToken: t.refresh_token, portal: e2.url, oauthServer: e2.url } },
    });
    expect((await c2.call('list_users')).isError).toBeFalsy();
    const before = e2.stats.refreshes;
    e2.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 10 }, () => c2.call('bitrix_call', { method: 'crm.deal.list', params: { select: ['ID'] } })));
    for (const r of results) expect(r.isError, text(r)).toBeFalsy();
    expect(e2.stats.refreshes - before).toBe(1);
    expect(c2.provider.kind).toBe('bitrix24');
    await c2.close();
    await e2.close();
  });
});
