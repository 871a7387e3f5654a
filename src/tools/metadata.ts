import * as z from 'zod';
import { defineTool, UNTRUSTED } from './define.js';
import { CustomFieldDef, Pipeline, Tag, User } from '../crms/types.js';

export const getPipelines = defineTool({
  name: 'get_pipelines',
  title: 'List pipelines and stages',
  description:
    'Lists the sales pipelines with their stages (id, name, order, and whether a stage is incoming, open, won or lost). Use the ids with list_leads, create_lead and update_lead. Cached for a few minutes.',
  effect: 'read',
  toolset: 'core',
  requires: ['pipelines'],
  input: z.object({}),
  output: z.object({ pipelines: z.array(Pipeline) }),
  async handler(_a, { provider, ctx }) {
    return { pipelines: await provider.pipelines(ctx) };
  },
});

export const getCustomFields = defineTool({
  name: 'get_custom_fields',
  title: 'List custom fields',
  description:
    'Lists the custom fields of leads, contacts or companies (id, name, code, type, and the options of select fields). Use it to fill `custom_fields` in create and update tools by id, code or name.',
  effect: 'read',
  toolset: 'metadata',
  requires: ['custom_fields'],
  input: z.object({
    entity: z.enum(['leads', 'contacts', 'companies', 'deals']).default('leads').describe('Whose fields; "deals" exists on Bitrix24 only.'),
  }),
  output: z.object({ entity: z.string(), fields: z.array(CustomFieldDef) }),
  async handler({ entity }, { provider, ctx }) {
    return { entity, fields: await provider.customFields(ctx, entity) };
  },
});

export const listUsers = defineTool({
  name: 'list_users',
  title: 'List users',
  description: 'Lists the CRM users (id, name, email, admin/active flags), e.g. to pick a responsible user. On Kommo this needs an admin token.',
  effect: 'read',
  toolset: 'metadata',
  requires: ['users'],
  input: z.object({}),
  output: z.object({ users: z.array(User) }),
  async handler(_a, { provider, ctx }) {
    return { users: await provider.users(ctx) };
  },
});

export const listTags = defineTool({
  name: 'list_tags',
  title: 'List tags',
  description: `Lists the tags used on leads, contacts or companies, optionally filtered by a search text. ${UNTRUSTED}`,
  effect: 'read',
  toolset: 'metadata',
  requires: ['tags'],
  input: z.object({
    entity: z.enum(['leads', 'contacts', 'companies']).default('leads').describe('Whose tags.'),
    query: z.string().max(100).optional().describe('Only tags whose name contains this text.'),
  }),
  output: z.object({ tags: z.array(Tag) }),
  async handler({ entity, query }, { provider, ctx }) {
    return { tags: await provider.tags(ctx, entity, query) };
  },
});
