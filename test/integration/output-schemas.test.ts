/**
 * Issue 16, start-up as a client sees it: the output schemas are served in a cheaper-to-compile spelling
 * (server.ts compactOutputSchema), and must still validate exactly what zod's own spelling validates. Every
 * default tool is called on both CRMs by a real SDK 1.x and 2.x client (each validates structuredContent against
 * the listed outputSchema, and fails the call when it does not match); then hand-made wrong results, and every
 * one-step mutation of the real results, must get the same verdict from the served schema as from zod's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as ClientV2, InMemoryTransport as InMemoryV2 } from '@modelcontextprotocol/client';
import { AjvJsonSchemaValidator as AjvV2 } from '@modelcontextprotocol/client/validators/ajv';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport as InMemoryV1 } from '@modelcontextprotocol/sdk/inMemory.js';
import { AjvJsonSchemaValidator as AjvV1 } from '@modelcontextprotocol/sdk/validation/ajv';
import { ALL_TOOLS } from '../../src/crms/registry.js';
import type { CrmProvider } from '../../src/crms/types.js';
import { buildBitrixProvider } from '../../src/crms/bitrix24/provider.js';
import { buildKommoProvider } from '../../src/crms/kommo/provider.js';
import { startBitrixEmulator, type BitrixEmulator } from '../../src/sandbox/bitrix24/index.js';
import { startKommoEmulator, type KommoEmulator } from '../../src/sandbox/kommo/index.js';
import { compactOutputSchema, createServer } from '../../src/server.js';
import { openStore } from '../../src/store/store.js';
import { DEFAULT_TOOLSETS } from '../../src/tools/toolsets.js';
import { FULL } from '../helpers/index.js';

type Json = Record<string, unknown>;
interface Result {
  isError?: boolean;
  structuredContent?: unknown;
  content?: Array<{ type: string; text?: string }>;
}
interface AnyClient {
  listTools(): Promise<{ tools: Array<{ name: string; outputSchema?: Json }> }>;
  callTool(p: { name: string; arguments: Json }): Promise<unknown>;
  close(): Promise<void>;
}

const GENERATIONS = {
  'SDK 1.x': { client: () => new ClientV1({ name: 't', version: '0' }), pair: () => InMemoryV1.createLinkedPair(), validator: () => new AjvV1() },
  'SDK 2.x': { client: () => new ClientV2({ name: 't', version: '0' }), pair: () => InMemoryV2.createLinkedPair(), validator: () => new AjvV2() },
} as const;

async function connect(provider: CrmProvider, gen: keyof typeof GENERATIONS): Promise<AnyClient> {
  const server = createServer({ config: { tools: { toolsets: DEFAULT_TOOLSETS } }, providers: [provider] });
  const client = GENERATIONS[gen].client();
  const [ct, st] = GENERATIONS[gen].pair();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  await Promise.all([server.connect(st as any), client.connect(ct as any)]);
  const c = client as unknown as AnyClient;
  return { listTools: () => c.listTools(), callTool: (p) => c.callTool(p), close: async () => (await c.close(), await server.close()) };
}

/**
 * Calls every listed tool once, in an order where reads give the ids the writes use, each with arguments
 * written by hand. A default tool missing from this table fails the test: add a row for it.
 */
async function callEveryTool(c: AnyClient, kind: 'kommo' | 'bitrix24', tag: string): Promise<Map<string, unknown>> {
  const listed = (await c.listTools()).tools;
  const names = new Set(listed.map((t) => t.name));
  const out = new Map<string, unknown>();
  const call = async (name: string, args: Json): Promise<Json> => {
    if (!names.has(name)) return {};
    // A structuredContent the listed outputSchema rejects makes the client throw here (both generations).
    const res = (await c.callTool({ name, arguments: args })) as Result;
    expect(res.isError, `${name}: ${(res.content ?? []).map((x) => x.text).join(' ')}`).toBeFalsy();
    expect(res.structuredContent, name).toBeTypeOf('object');
    out.set(name, res.structuredContent);
    return res.structuredContent as Json;
  };
  await call('get_account', {});
  await call('get_pipelines', {});
  const leads = await call('list_leads', { limit: 2, with_custom_fields: true });
  const lead = (leads.items as Json[])[0]!;
  await call('get_lead', { id: lead.id, ...(kind === 'bitrix24' ? { entity: lead.entity } : {}) });
  const contacts = await call('list_contacts', { limit: 2 });
  const contact = (await call('get_contact', { id: (contacts.items as Json[])[0]!.id })).contact as Json | undefined;
  const phone = ((contact ?? (contacts.items as Json[])[0]!).phones as string[])[0];
  await call('search_lead_by_contact', phone ? { phone } : { email: 'nobody@example.com' });
  const companies = await call('list_companies', { limit: 2 });
  await call('get_company', { id: (companies.items as Json[])[0]!.id });
  const made = await call('create_contact', { name: `Schema Check ${tag}`, email: `schema.${tag}@example.com` });
  const madeContact = made.contact as Json;
  const created = await call('create_lead', { name: `Schema lead ${tag}`, contact: { name: `Schema Buyer ${tag}`, email: `buyer.${tag}@example.com` } });
  const newLead = created.lead as Json;
  const entity = kind === 'bitrix24' ? { entity: newLead.entity } : {};
  await call('update_lead', { id: newLead.id, name: `Schema lead ${tag} renamed`, ...entity });
  await call('update_contact', { id: madeContact.id, last_name: 'Checked' });
  await call('add_note', { entity: newLead.entity, entity_id: newLead.id, text: 'Schema check note' });
  await call('create_task', { text: 'Call back', complete_till: '2031-01-15T10:00:00Z', entity: newLead.entity, entity_id: newLead.id });
  await call('move_lead', { id: newLead.id, won: true, ...entity });
  await call('delete_lead', { id: newLead.id, ...entity });
  await call('delete_contact', { id: madeContact.id });
  expect(
    [...names].filter((n) => !out.has(n)),
    'default tools without a row in callEveryTool',
  ).toEqual([]);
  return out;
}

/** Every one-step change of a value: each node replaced by a wrong type, each object key removed, an extra key added. */
function* mutations(root: unknown): Generator<[string, unknown]> {
  const paths: Array<Array<string | number>> = [];
  const collect = (x: unknown, p: Array<string | number>) => {
    paths.push(p);
    if (Array.isArray(x)) x.slice(0, 1).forEach((v, i) => collect(v, [...p, i]));
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) collect(v, [...p, k]);
  };
  collect(root, []);
  const edit = (p: Array<string | number>, f: (parent: Record<string | number, unknown>, key: string | number) => void) => {
    const copy = structuredClone(root) as Record<string | number, unknown>;
    let at = copy;
    for (const k of p.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
    f(at, p.at(-1)!);
    return copy;
  };
  for (const p of paths) {
    if (p.length === 0) continue;
    for (const bad of [true, 1.5, 'text', null, {}]) yield [`${p.join('.')} = ${JSON.stringify(bad)}`, edit(p, (o, k) => (o[k] = bad))];
    if (typeof p.at(-1) === 'string') yield [`${p.join('.')} removed`, edit(p, (o, k) => delete o[k])];
  }
  for (const p of paths) {
    const node = p.reduce<unknown>((x, k) => (x as Record<string | number, unknown>)[k], root);
    if (node && typeof node === 'object' && !Array.isArray(node))
      yield [`${p.join('.') || '(root)'} + extra key`, edit([...p, 'zz_extra'], (o, k) => (o[k] = 1))];
  }
}

for (const kind of ['kommo', 'bitrix24'] as const) {
  describe(`${kind}: served output schemas`, () => {
    let kommo: KommoEmulator | undefined;
    let bitrix: BitrixEmulator | undefined;
    let provider: CrmProvider;
    beforeAll(async () => {
      const store = await openStore('memory');
      if (kind === 'kommo') {
        kommo = await startKommoEmulator({ rateLimit: false });
        provider = buildKommoProvider(
          { name: 'kommo', provider: 'kommo', baseUrl: kommo.url, accessToken: kommo.createLongLivedToken(), policy: FULL },
          { store, timeoutMs: 3000, maxRetries: 1 },
        );
      } else {
        bitrix = await startBitrixEmulator({ rateLimit: false });
        provider = buildBitrixProvider(
          { name: 'bitrix24', provider: 'bitrix24', webhookUrl: bitrix.webhookUrl, plan: 'standard', policy: FULL },
          { store, timeoutMs: 3000, maxRetries: 1 },
        );
      }
      await (provider as CrmProvider & { init(): Promise<void> }).init();
    });
    afterAll(async () => {
      await kommo?.close();
      await bitrix?.close();
    });

    for (const gen of Object.keys(GENERATIONS) as Array<keyof typeof GENERATIONS>) {
      it(`${gen}: every default tool's real result passes the client's own validation; zod's spelling and the served one agree on every one-step mutation of it`, async () => {
        const c = await connect(provider, gen);
        try {
          const served = new Map((await c.listTools()).tools.map((t) => [t.name, t.outputSchema!]));
          const results = await callEveryTool(c, kind, `${kind}${gen.replace(/\W/g, '')}`);
          const v = GENERATIONS[gen].validator();
          let rejected = 0;
          for (const [name, value] of results) {
            const tool = ALL_TOOLS.find((t) => t.name === name && (t.crmKind === undefined || t.crmKind === kind))!;
            const zodSpelling = (tool.output as unknown as { '~standard': { jsonSchema: { output(o: { target: string }): Json } } })[
              '~standard'
            ].jsonSchema.output({
              target: 'draft-2020-12',
            });
            const before = v.getValidator(zodSpelling);
            const after = v.getValidator(served.get(name)!);
            expect(after(value).valid, name).toBe(true);
            for (const [what, wrong] of mutations(value)) {
              const verdict = after(wrong).valid;
              expect(verdict, `${name}: ${what}`).toBe(before(wrong).valid);
              if (!verdict) rejected++;
            }
          }
          // The mutations include plenty that no schema allows (a number for a record, a missing required field).
          expect(rejected).toBeGreaterThan(100);
        } finally {
          await c.close();
        }
      });
    }
  });
}

describe('served output schemas: wrong results fail the client-side validators', () => {
  // Hand-made: a list_leads page with one lead as the CRM-neutral record has it, then single wrong edits.
  const lead = {
    id: 7,
    entity: 'lead',
    name: 'Annual license',
    price: 1200,
    pipeline: { id: 1, name: 'Sales' },
    stage: { id: 142, name: 'Won', type: 'won' },
    responsible: null,
    tags: ['vip'],
    company: { id: '12', name: null },
    created_at: '2026-01-01T10:00:00Z',
    updated_at: null,
    url: 'https://acme.kommo.com/leads/detail/7',
  };
  const page = { items: [lead], has_more: false, cursor: null, total: null };
  const wrong: Array<[string, unknown]> = [
    ['id is a boolean', { ...page, items: [{ ...lead, id: true }] }],
    ['id is a fraction', { ...page, items: [{ ...lead, id: 1.5 }] }],
    ['pipeline is a string', { ...page, items: [{ ...lead, pipeline: 'Sales' }] }],
    ['pipeline lacks its name', { ...page, items: [{ ...lead, pipeline: { id: 1 } }] }],
    ['stage type unknown', { ...page, items: [{ ...lead, stage: { id: 1, name: 'x', type: 'closed' } }] }],
    ['entity unknown', { ...page, items: [{ ...lead, entity: 'ticket' }] }],
    ['extra key on the lead', { ...page, items: [{ ...lead, secret: 1 }] }],
    ['has_more missing', { items: [lead], cursor: null, total: null }],
    ['url missing', { ...page, items: [{ ...lead, url: undefined }] }],
    ['total missing', { items: [lead], has_more: false, cursor: null }],
    ['total is a string', { ...page, total: '12' }],
    ['cursor is a number', { ...page, cursor: 3 }],
    ['responsible is an empty object', { ...page, items: [{ ...lead, responsible: {} }] }],
  ];
  const listLeads = ALL_TOOLS.find((t) => t.name === 'list_leads')!;
  const json = (listLeads.output as unknown as { '~standard': { jsonSchema: { output(o: { target: string }): Json } } })['~standard'].jsonSchema.output({
    target: 'draft-2020-12',
  });
  const served = compactOutputSchema(json);

  for (const gen of Object.keys(GENERATIONS) as Array<keyof typeof GENERATIONS>) {
    it(`${gen}: the page is accepted, each wrong edit refused`, () => {
      const check = GENERATIONS[gen].validator().getValidator(served);
      expect(check(page).valid).toBe(true);
      expect(check({ ...page, items: [{ ...lead, pipeline: null, stage: null, id: 'L-7' }] }).valid).toBe(true);
      expect(check({ ...page, total: 12 }).valid).toBe(true);
      for (const [what, value] of wrong) expect(check(value).valid, what).toBe(false);
    });
  }

  it('the nullable unions and the id union are spelt as type lists (what a client compiles cheapest)', () => {
    const text = JSON.stringify(served);
    expect(text).not.toContain('"anyOf"');
    expect(text).toContain('"type":["integer","string"]');
    expect(text).toContain('"$ref":"#/$defs/RefOrNull"');
    expect(text).toContain('"enum":["incoming","open","won","lost",null]');
    // zod's spelling of the same schema had them.
    expect(JSON.stringify(json)).toContain('"anyOf"');
  });

  it('every output schema of every tool compacts to one both SDK validators compile', () => {
    for (const t of ALL_TOOLS) {
      const s = compactOutputSchema(
        (t.output as unknown as { '~standard': { jsonSchema: { output(o: { target: string }): Json } } })['~standard'].jsonSchema.output({
          target: 'draft-2020-12',
        }),
      );
      for (const gen of Object.keys(GENERATIONS) as Array<keyof typeof GENERATIONS>)
        expect(() => GENERATIONS[gen].validator().getValidator(s), `${t.name} (${gen})`).not.toThrow();
    }
  });
});
