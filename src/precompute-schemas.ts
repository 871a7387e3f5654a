/**
 * Every JSON Schema server.ts can take from src/precomputed-schemas.ts, converted by zod now (never from the
 * precomputed copy): scripts/build-bin.mjs writes them into the bin bundle, and
 * test/e2e/precomputed-schemas.test.ts holds the bundle's copy equal to this.
 */
import type { StandardSchemaWithJSON } from '@modelcontextprotocol/server';
import { ALL_TOOLS } from './crms/registry.js';
import { compactOutputSchema, seedOfInput, seedOfOutput } from './server.js';
import { withApprovalField, type AnyTool } from './tools/define.js';

/** The draft the SDK asks for (its JSON_SCHEMA_CONVERSION_TARGET). */
const TARGET = 'draft-2020-12';

const jsonOf = (schema: unknown, io: 'input' | 'output') => (schema as StandardSchemaWithJSON)['~standard'].jsonSchema[io]({ target: TARGET });

export function jsonSchemasToPrecompute(tools: readonly AnyTool[] = ALL_TOOLS): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const tool of tools) {
    for (const approvals of [false, true]) {
      const input = approvals ? withApprovalField(tool, tool.input) : tool.input;
      out[`${seedOfInput(tool, approvals)}|input|${TARGET}`] = jsonOf(input.strict(), 'input');
    }
    out[`${seedOfOutput(tool)}|output|${TARGET}`] = compactOutputSchema(jsonOf(tool.output, 'output'));
  }
  return out;
}
