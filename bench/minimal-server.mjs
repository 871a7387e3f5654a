#!/usr/bin/env node
/**
 * The start-up baseline of bench/startup.mjs: the smallest useful MCP server on the same SDK (v2,
 * @modelcontextprotocol/server) and the same zod as crm-mcp, one tool with a zod input schema, served over
 * stdio with serveStdio exactly as src/entry/serve.ts serves crm-mcp. No logger, no config, no CRM: what is
 * left is the cost of node + the SDK + zod, which crm-mcp cannot go below.
 */
import { McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod';

serveStdio(() => {
  const server = new McpServer({ name: 'minimal', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.registerTool(
    'echo',
    { description: 'Returns the text it is given.', inputSchema: z.object({ text: z.string().describe('Text to return.') }) },
    async ({ text }) => ({ content: [{ type: 'text', text }] }),
  );
  return server;
});
