/**
 * Capabilities: providers declare what they can do, tools declare what they require, and registration lists a
 * tool for a connection only when its provider meets the requirements. The expected tool lists are written by
 * hand (what each CRM listed before capabilities existed), not computed the way server.ts computes them.
 * Everything runs in-process: real providers built from an env configuration (no request is sent to list
 * tools), the real server, and an SDK client over InMemoryTransport.
 */
import { describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { parseConfig } from '../../src/config/config.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import { buildProviders } from '../../src/crms/registry.js';
import { DEFAULT_MODULES, ProviderRegistry, type ProviderModule } from '../../src/crms/registry.js';
import {
  CAPABILITIES,
  type AccountInfo,
  type CallContext,
  type Capability,
  type ContactItem,
  type ContactsApi,
  type CrmProvider,
  type LeadFilter,
  type LeadsApi,
  type Page,
  type Lead,
} from '../../src/crms/types.js';
import { createServer, planTools, policyReport } from '../../src/server.js';
import { defineTool } from '../../src/tools/define.js';
import { ALL_TOOLS } from '../../src/crms/registry.js';
import { openStore } from '../../src/store/store.js';
import * as z from 'zod';

const EVERYTHING: PolicyFlags = { allowWrites: true, safeMode: false, allowDelete: true, allowAdmin: true };
const READ_ONLY: PolicyFlags = { allowWrites: false, safeMode: true, allowDelete: false, allowAdmin: false };

/** What each CRM listed before capabilities (with every toolset on and every effect allowed), in registry order. */
const KOMMO_TOOLS = [
  'get_account',
  'get_pipelines',
  'search_lead_by_contact',
  'list_leads',
  'get_lead',
  'list_contacts',
  'get_contact',
  'list_companies',
  'get_company',
  'create_lead',
  'create_contact',
  'update_lead',
  'move_lead',
  'update_contact',
  'add_note',
  'create_task',
  'get_custom_fields',
  'list_users',
  'list_tags',
  'get_audit_log',
  'kommo_request',
];
const BITRIX_TOOLS = [
  'get_account',
  'get_pipelines',
  'search_lead_by_contact',
  'list_leads',
  'get_lead',
  'list_contacts',
  'get_contact',
  'list_companies',
  'get_company',
  'create_lead',
  'create_contact',
  'update_lead',
  'move_lead',
  'update_contact',
  'delete_lead',
  'delete_contact',
  'add_note',
  'create_task',
  'get_custom_fields',
  'list_users',
  'get_audit_log',
  'bitrix_call',
];
/** A CRM with leads and contacts only: no pipelines, companies, notes, tasks, metadata, deletes or raw API. */
const LEADS_AND_CONTACTS_TOOLS = [
  'get_account',
  'search_lead_by_contact',
  'list_leads',
  'get_lead',
  'list_contacts',
  'get_contact',
  'create_lead',
  'create_contact',
  'update_lead',
  'move_lead',
  'update_contact',
  'get_audit_log',
];

const ENV = {
  KOMMO_SUBDOMAIN: 'acme',
  KOMMO_ACCESS_TOKEN: 'long-lived-token-for-listing-only',
  BITRIX_WEBHOOK_BASE: 'https://acme.bitrix24.com/rest/1/abcdef123/',
};

async function shippedProviders(flags: PolicyFlags): Promise<CrmProvider[]> {
  const config = parseConfig({ env: ENV });
  // The flags are the operator's; set them on the parsed connections as the env table would.
  for (const c of config.connections) c.policy = flags;
  return buildProviders(config, { store: await openStore('memory') });
}

async function listed(providers: CrmProvider[], toolsets = ['core', 'activity', 'metadata', 'audit', 'raw']) {
  const server = createServer({ config: { tools: { toolsets } }, providers });
  const client = new Client({ name: 'capabilities-test', version: '0.0.0' });
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(st), client.connect(ct)]);
  const { tools } = await client.listTools();
  return { client, tools, close: () => client.close() };
}

/** A third CRM that only has leads and contacts. It records what the tools hand it. */
class AcmeProvider implements CrmProvider, LeadsApi, ContactsApi {
  readonly kind = 'acme';
  readonly connection = 'acme';
  readonly capabilities: ReadonlySet<Capability> = new Set<Capability>(['leads', 'contacts']);
  readonly received: Array<{ method: string; input: unknown }> = [];
  constructor(readonly policy: PolicyFlags) {}
  async account(): Promise<AccountInfo> {
    return {
      provider: this.kind,
      id: 1,
      name: 'Acme',
      address: 'https://crm.acme.test',
      current_user: null,
      auth: { type: 'token', expires_at: null, scopes: null },
    };
  }
  async listLeads(_ctx: CallContext, f: LeadFilter): Promise<Page<Lead>> {
    this.received.push({ method: 'listLeads', input: f });
    return { items: [], has_more: false, cursor: null, total: null };
  }
  async listContacts(_ctx: CallContext, q: unknown): Promise<Page<ContactItem>> {
    this.received.push({ method: 'listContacts', input: q });
    return { items: [], has_more: false, cursor: null, total: null };
  }
  getLead = notUsed;
  updateLead = notUsed;
  moveLead = notUsed;
  searchLeadByContact = notUsed;
  getContact = notUsed;
  updateContact = notUsed;
  readonly createLeadSteps = {
    prepare: notUsed,
    searchByContact: notUsed,
    findCompany: notUsed,
    build: notUsedSync,
    plan: notUsedSync,
    send: notUsed,
    findJustCreated: notUsed,
    getLead: notUsed,
  };
  readonly createContactSteps = {
    country: notUsed,
    prepare: notUsed,
    findExisting: notUsed,
    findCompany: notUsed,
    build: notUsedSync,
    plan: notUsedSync,
    send: notUsed,
    findJustCreated: notUsed,
    getContact: notUsed,
  };
}

async function notUsed(): Promise<never> {
  throw new Error('not called by these tests');
}

function notUsedSync(): never {
  throw new Error('not called by these tests');
}

function acmeModule(make: (flags: PolicyFlags) => CrmProvider, capabilities: Capability[] = ['leads', 'contacts']): ProviderModule {
  return { kind: 'acme', label: 'Acme CRM', capabilities: new Set(capabilities), build: async () => make(EVERYTHING) };
}

const NO_DEPS = { store: undefined as never, http: { timeoutMs: 1000, maxRetries: 0 } };

describe('capabilities and requirements', () => {
  it('every tool requires only known capabilities, and a shipped CRM meets its requirements', () => {
    for (const t of ALL_TOOLS) {
      for (const c of t.requires) expect(CAPABILITIES, `${t.name} requires ${c}`).toContain(c);
      expect(
        DEFAULT_MODULES.some((m) => t.requires.every((c: Capability) => m.capabilities.has(c))),
        `${t.name} (requires ${t.requires.join(', ')}) runs on no shipped CRM`,
      ).toBe(true);
    }
  });

  it('Kommo lists no delete tools and no bitrix_call; Bitrix24 no list_tags and no kommo_request (as before)', async () => {
    const [kommo, bitrix] = await shippedProviders(EVERYTHING);
    expect([kommo!.kind, bitrix!.kind]).toEqual(['kommo', 'bitrix24']);
    const k = await listed([kommo!]);
    expect(k.tools.map((t) => t.name)).toEqual(KOMMO_TOOLS);
    await k.close();
    const b = await listed([bitrix!]);
    expect(b.tools.map((t) => t.name)).toEqual(BITRIX_TOOLS);
    await b.close();
  });

  it('with both CRMs, each tool offers exactly the connections that can run it', async () => {
    const both = await listed(await shippedProviders(EVERYTHING));
    const crmOf = (name: string) => (both.tools.find((t) => t.name === name)?.inputSchema.properties?.crm as { enum?: string[] } | undefined)?.enum;
    expect(crmOf('list_tags')).toEqual(['kommo']);
    expect(crmOf('kommo_request')).toEqual(['kommo']);
    expect(crmOf('delete_lead')).toEqual(['bitrix24']);
    expect(crmOf('bitrix_call')).toEqual(['bitrix24']);
    expect(crmOf('list_leads')).toEqual(['kommo', 'bitrix24']);
    await both.close();
  });

  it('a third CRM with only leads and contacts gets exactly the tools it can serve, and they reach it', async () => {
    let acme: AcmeProvider | undefined;
    const registry = new ProviderRegistry([...DEFAULT_MODULES, acmeModule(() => (acme = new AcmeProvider(EVERYTHING)))]);
    const provider = await registry.build({ provider: 'acme', name: 'acme' }, NO_DEPS);
    expect(provider).toBe(acme);

    const alone = await listed([provider]);
    expect(alone.tools.map((t) => t.name)).toEqual(LEADS_AND_CONTACTS_TOOLS);
    // A listed tool runs on it, with the arguments as zod parsed them (defaults applied, tool-only switches left out).
    const r = await alone.client.callTool({ name: 'list_leads', arguments: { query: 'x', with_custom_fields: true } });
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    expect(acme!.received).toEqual([{ method: 'listLeads', input: { query: 'x', sort: 'created_desc', limit: 50 } }]);
    await alone.close();

    // Beside Kommo, the tools Acme lacks offer Kommo only.
    const [kommo] = await shippedProviders(EVERYTHING);
    const mixed = await listed([provider, kommo!]);
    const crmOf = (name: string) => (mixed.tools.find((t) => t.name === name)?.inputSchema.properties?.crm as { enum?: string[] } | undefined)?.enum;
    expect(crmOf('list_contacts')).toEqual(['acme', 'kommo']);
    expect(crmOf('list_companies')).toEqual(['kommo']);
    expect(crmOf('add_note')).toEqual(['kommo']);
    await mixed.close();
  });

  it("a third CRM's policy report names only tools it could run", async () => {
    const acme = new AcmeProvider(READ_ONLY);
    const plan = planTools({ config: { tools: { toolsets: ['core', 'activity'] } }, providers: [acme] });
    const report = policyReport(acme, plan);
    // Read-only hides its write tools; notes and tasks (activity) are not its to report.
    expect(report.disabled_tools.map((d) => d.name).sort()).toEqual(['create_contact', 'create_lead', 'move_lead', 'update_contact', 'update_lead']);
    // Of the toolsets that are off, only audit and the change feed have a tool it could run (both need no capability).
    expect(report.toolsets_off.map((t) => [t.name, t.tools])).toEqual([
      ['audit', ['get_audit_log']],
      ['events', ['list_changes']],
    ]);
  });

  it('the registry refuses a provider that declares what it does not implement, or what its module does not declare', async () => {
    const liar = new AcmeProvider(EVERYTHING);
    (liar as { capabilities: ReadonlySet<Capability> }).capabilities = new Set<Capability>(['leads', 'contacts', 'tags']);
    const lying = new ProviderRegistry([acmeModule(() => liar, ['leads', 'contacts', 'tags'])]);
    await expect(lying.build({ provider: 'acme', name: 'acme' }, NO_DEPS)).rejects.toThrow(/declares capabilities it does not implement: tags\.tags/);

    const mismatched = new ProviderRegistry([acmeModule(() => new AcmeProvider(EVERYTHING), ['leads'])]);
    await expect(mismatched.build({ provider: 'acme', name: 'acme' }, NO_DEPS)).rejects.toThrow(/not what its module declares/);

    await expect(new ProviderRegistry(DEFAULT_MODULES).build({ provider: 'acme', name: 'x' }, NO_DEPS)).rejects.toThrow(
      /no provider "acme" is registered \(known: kommo, bitrix24\)/,
    );
    expect(() => new ProviderRegistry([...DEFAULT_MODULES, DEFAULT_MODULES[0]!])).toThrow(/registered twice/);
  });

  it('the shipped providers have every member their capabilities promise', async () => {
    // buildProviders goes through the registry, which checks; this says which capabilities each declares.
    const [kommo, bitrix] = await shippedProviders(READ_ONLY);
    expect([...kommo!.capabilities].sort()).toEqual(
      ['bulk', 'calls', 'contacts', 'companies', 'custom_fields', 'history', 'incoming', 'leads', 'notes', 'pipelines', 'tags', 'tasks', 'users'].sort(),
    );
    expect([...bitrix!.capabilities].sort()).toEqual(
      ['bulk', 'calls', 'companies', 'contacts', 'custom_fields', 'deals', 'delete', 'history', 'leads', 'notes', 'pipelines', 'tasks', 'users'].sort(),
    );
    expect(typeof kommo!.tags).toBe('function');
    expect(kommo!.deleteRecord).toBeUndefined();
    expect(bitrix!.tags).toBeUndefined();
  });

  it("a handler sees only the members its tool's requirements guarantee (checked by tsc)", () => {
    const t = defineTool({
      name: 'count_contacts',
      title: 'Count contacts',
      description: 'Type check only. Not registered.',
      effect: 'read',
      toolset: 'core',
      requires: ['contacts'],
      input: z.object({}),
      output: z.object({ n: z.number() }),
      async handler(_a, { provider, ctx }) {
        const page = await provider.listContacts(ctx, { limit: 1, sort: 'created_desc' });
        // @ts-expect-error listLeads comes with 'leads', which this tool does not require
        await provider.listLeads(ctx, { limit: 1, sort: 'created_desc' });
        return { n: page.items.length };
      },
    });
    expect(t.requires).toEqual(['contacts']);
  });
});
