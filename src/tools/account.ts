import * as z from 'zod';
import { defineTool } from './define.js';
import { Id, Ref } from '../crms/types.js';

/**
 * get_account for these CRMs (their kinds, in the registry's order): its output names which one answered. Built
 * by the registry (crms/registry.ts `allTools`), which knows the CRMs; this layer names none.
 */
export const getAccountTool = (crmKinds: readonly string[]) =>
  defineTool({
    name: 'get_account',
    title: 'Get account and safety mode',
    description:
      'Shows the connected CRM account (name, address, current user, token expiry) and the active safety mode: which effects are allowed, which tools are disabled and why, and which toolsets are off. Call it first when a tool you expect is missing.',
    effect: 'read',
    toolset: 'core',
    requires: [],
    input: z.object({}),
    output: z.object({
      // The registered CRMs: a third one shows up here (and in this tool's schema snapshot) once registered.
      provider: z.enum(crmKinds as [string, ...string[]]),
      connection: z.string(),
      id: Id.nullable(),
      name: z.string().nullable(),
      address: z.string(),
      current_user: Ref.nullable(),
      country: z.string().nullable().optional(),
      currency: z.string().nullable().optional(),
      auth: z.object({ type: z.string(), expires_at: z.string().nullable(), scopes: z.array(z.string()).nullable() }),
      policy: z.object({
        mode: z.string().describe('read-only | create-only | write | full | admin | full+admin'),
        allowed_effects: z.array(z.string()),
        disabled_tools: z.array(z.object({ name: z.string(), reason: z.string() })),
        toolsets_off: z
          .array(z.object({ name: z.string(), description: z.string(), tools: z.array(z.string()), enable: z.string() }))
          .describe('Toolsets not listed on this server, with their tools and the setting that turns each on.'),
        safe_updates: z
          .array(z.string())
          .describe('CRM_SAFE_UPDATES: the narrow updates safe mode still admits (stage, task_done); an X-CRM-Safe-Updates header can only remove some.'),
        confirmations: z
          .object({ on: z.boolean(), via: z.enum(['auto', 'client', 'operator']).nullable() })
          .describe('CRM_CONFIRM_WRITES: whether every write waits for a person; CRM_CONFIRM_VIA: who is asked.'),
      }),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
    async handler(_args, { provider, ctx, policy }) {
      const a = await provider.account(ctx);
      return {
        ...a,
        connection: provider.connection,
        policy: {
          mode: policy.mode,
          allowed_effects: policy.allowed_effects,
          disabled_tools: policy.disabled_tools,
          toolsets_off: policy.toolsets_off,
          safe_updates: policy.safe_updates ?? [],
          confirmations: policy.confirmations ?? { on: false, via: null },
        },
      };
    },
  });
