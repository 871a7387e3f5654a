import * as z from 'zod';
import { defineTool } from './define.js';
import { Id, Ref } from '../providers/types.js';

export const getAccount = defineTool({
  name: 'get_account',
  title: 'Get account and safety mode',
  description:
    'Shows the connected CRM account (name, address, current user, token expiry) and the active safety mode: which effects are allowed and which tools are disabled and why. Call it first when a write tool you expect is missing.',
  effect: 'read',
  providers: ['kommo', 'bitrix24'],
  input: z.object({}),
  output: z.object({
    provider: z.enum(['kommo', 'bitrix24']),
    connection: z.string(),
    id: Id.nullable(),
    name: z.string().nullable(),
    address: z.string(),
    current_user: Ref.nullable(),
    country: z.string().nullable().optional(),
    currency: z.string().nullable().optional(),
    auth: z.object({ type: z.string(), expires_at: z.string().nullable(), scopes: z.array(z.string()).nullable() }),
    policy: z.object({
      mode: z.string().describe('read-only | create-only | write | full'),
      allowed_effects: z.array(z.string()),
      disabled_tools: z.array(z.object({ name: z.string(), reason: z.string() })),
    }),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  async handler(_args, { provider, ctx, policy }) {
    const a = await provider.account(ctx);
    return {
      ...a,
      connection: provider.connection,
      policy: { mode: policy.mode, allowed_effects: policy.allowed_effects, disabled_tools: policy.disabled_tools },
    };
  },
});
