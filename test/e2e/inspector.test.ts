/**
 * The MCP Inspector CLI (@modelcontextprotocol/inspector 0.15.0, the last release for Node 20) drives the built
 * stdio server in sandbox mode, as a user following the README would. 0.15.0 exits 0 even when a tool
 * returns isError, so the JSON it prints is checked.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli.js');
const INSPECTOR = join(ROOT, 'node_modules', '.bin', 'mcp-inspector');

const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(CRM_|KOMMO_|AMOCRM_|BITRIX)/.test(k)) env[k] = v;
  return env;
};

function inspect(args: string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const p = spawn(INSPECTOR, ['--cli', process.execPath, CLI, '--sandbox', ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`inspector exited ${code}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout));
      } catch {
        reject(new Error(`inspector printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}

describe('MCP Inspector CLI over stdio', () => {
  it('tools/list shows the read tools with the crm argument', { timeout: 60_000 }, async () => {
    const r = (await inspect(['--method', 'tools/list'])) as { tools: Array<{ name: string; inputSchema: { properties?: Record<string, unknown> } }> };
    const names = r.tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['get_account', 'get_pipelines', 'search_lead_by_contact']));
    expect(names).not.toContain('create_lead'); // read-only by default
    expect(Object.keys(r.tools.find((t) => t.name === 'get_pipelines')!.inputSchema.properties ?? {})).toContain('crm');
  });

  it('tools/call get_pipelines on the Kommo sandbox returns pipelines', { timeout: 60_000 }, async () => {
    const r = (await inspect(['--method', 'tools/call', '--tool-name', 'get_pipelines', '--tool-arg', 'crm=kommo'])) as {
      isError?: boolean;
      content: Array<{ type: string; text?: string }>;
      structuredContent?: { pipelines: Array<{ name: string; stages: unknown[] }> };
    };
    expect(r.isError, JSON.stringify(r.content).slice(0, 300)).not.toBe(true);
    const text = r.content.find((c) => c.type === 'text')?.text ?? '';
    const fromText = JSON.parse(text) as { pipelines: Array<{ name: string; stages: unknown[] }> };
    expect(fromText.pipelines.length).toBeGreaterThan(0);
    expect(fromText.pipelines[0]!.stages.length).toBeGreaterThan(0);
    if (r.structuredContent) expect(r.structuredContent).toEqual(fromText);
  });
});
