/**
 * Issue 15: tools/invoke.ts as a chain of wrappers (effect → policy → audit → [approval] → [journal] → handler).
 * A generic tool's classification runs once per call and reaches its handler as `env.decided`; tool-specific
 * audit data come from the tool's definition (`audit.target`, `audit.prior`), not from a switch on tool names;
 * a refused call never reaches the handler. The fake tool and provider record what they were handed; the
 * expected values are written out by hand.
 */
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { CrmProvider } from '../../src/crms/types.js';
import type { PolicyFlags } from '../../src/policy/policy.js';
import { defineTool, type CallEffect } from '../../src/tools/define.js';
import { CHAIN, approval, audited, classify, enforce, invokeTool, journal, type InvokeDeps } from '../../src/tools/invoke.js';

const ALL: PolicyFlags = { allowWrites: true, safeMode: false, allowDelete: true, allowAdmin: true };
const READ_ONLY: PolicyFlags = { allowWrites: false, safeMode: true, allowDelete: false, allowAdmin: false };

const provider: CrmProvider = {
  kind: 'acme',
  connection: 'acme',
  policy: ALL,
  capabilities: new Set(),
  account: async () => {
    throw new Error('not called');
  },
};

interface Checked extends CallEffect {
  path: string;
}

/** A generic tool: its effect depends on `verb`; effectOf keeps the normalised path it classified. */
function rawTool(seen: { classified: number; handled: Array<{ decided: Checked; grant: string[] }>; prior: number }) {
  return defineTool({
    name: 'acme_request',
    title: 'Acme raw request',
    description: 'Test tool. Not registered.',
    effect: 'read',
    toolset: 'raw',
    requires: [],
    input: z.object({ verb: z.enum(['GET', 'PATCH']), path: z.string(), id: z.number().optional() }),
    output: z.object({ ok: z.boolean() }),
    effectOf: (args): Checked => {
      seen.classified++;
      return { effect: args.verb === 'GET' ? 'read' : 'update', note: `${args.verb} ${args.path}`, path: args.path.toLowerCase() };
    },
    audit: {
      target: (args) => ({ path: args.path.replace(/\d+/g, ':id') }),
      prior: async () => {
        seen.prior++;
        return { name: 'Old name', price: 10 };
      },
    },
    async handler(_args, { decided, ctx }) {
      seen.handled.push({ decided, grant: ctx.grant.list() });
      return { ok: true };
    },
  });
}

function deps(flags: PolicyFlags, audit: AuditLog): InvokeDeps {
  return {
    audit,
    flagsOf: () => flags,
    reportOf: () => ({ connection: 'acme', mode: 'test', allowed_effects: [], disabled_tools: [], toolsets_off: [] }),
  };
}

describe('the invoke chain', () => {
  it('runs effect → policy → audit → approval → journal, then the handler', () => {
    expect(CHAIN).toEqual([classify, enforce, audited, approval, journal]);
  });

  it("classifies a generic tool's call once and hands the result to its handler", async () => {
    const seen = { classified: 0, handled: [] as Array<{ decided: Checked; grant: string[] }>, prior: 0 };
    const audit = new AuditLog();
    const r = await invokeTool(rawTool(seen), provider, { verb: 'PATCH', path: '/Things/42', id: 42 }, undefined, deps(ALL, audit));
    expect(r.isError).toBeFalsy();
    expect(seen.classified).toBe(1);
    expect(seen.handled).toEqual([{ decided: { effect: 'update', note: 'PATCH /Things/42', path: '/things/42' }, grant: ['read', 'update'] }]);
    // The tool's own audit data: its target beside the record id, and the prior values it read (once).
    expect(seen.prior).toBe(1);
    const [line] = await audit.recent({ limit: 5 });
    expect(line).toMatchObject({ tool: 'acme_request', effect: 'update', outcome: 'ok', target: { id: 42, path: '/Things/:id' } });
    expect(line!.prior).toEqual({ name: expect.stringMatching(/chars, sha256:/), price: 10 });
  });

  it('a read is not audited and reads no prior values', async () => {
    const seen = { classified: 0, handled: [] as Array<{ decided: Checked; grant: string[] }>, prior: 0 };
    const audit = new AuditLog();
    const r = await invokeTool(rawTool(seen), provider, { verb: 'GET', path: '/things' }, undefined, deps(READ_ONLY, audit));
    expect(r.isError).toBeFalsy();
    expect(seen).toMatchObject({ classified: 1, prior: 0 });
    expect(await audit.recent({ limit: 5 })).toEqual([]);
  });

  it('a write the policy refuses never reaches the handler; the refusal is audited with the tool target', async () => {
    const seen = { classified: 0, handled: [] as Array<{ decided: Checked; grant: string[] }>, prior: 0 };
    const audit = new AuditLog();
    const r = await invokeTool(rawTool(seen), provider, { verb: 'PATCH', path: '/things/7' }, undefined, deps(READ_ONLY, audit));
    expect(r.isError).toBe(true);
    expect(seen).toMatchObject({ classified: 1, handled: [], prior: 0 });
    const [line] = await audit.recent({ limit: 5 });
    expect(line).toMatchObject({ decision: 'deny', outcome: 'policy_denied', target: { path: '/things/:id' } });
  });
});
