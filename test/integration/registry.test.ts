/** The tool registry: one schema snapshot per tool (a change is a reviewed change) and a README table that is never stale. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { ALL_TOOLS } from '../../src/crms/registry.js';
import { renderReadme } from '../../src/docs.js';
import { hintEffects, hintsFor } from '../../src/server.js';
import { ALL } from '../helpers/index.js';
import { DEFAULT_TOOLSETS } from '../../src/tools/toolsets.js';

describe('tool registry', () => {
  it('names are verb_noun snake_case and unique; descriptions are 2–3 sentences', () => {
    const names = ALL_TOOLS.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    for (const t of ALL_TOOLS) {
      expect(t.name).toMatch(/^[a-z]+(_[a-z0-9]+)+$/);
      const sentences = t.description.split(/(?<=[.!?])\s+/).filter(Boolean).length;
      expect(sentences, t.name).toBeGreaterThanOrEqual(2);
      expect(sentences, t.name).toBeLessThanOrEqual(4);
    }
  });

  it('the default toolsets stay under 25 tools, so clients that cap the tool count get all of them; every toolset together stays within 60', () => {
    // Clients cap or warn on long tool lists (Cursor warns above 40 across all servers); the default list is
    // what a fresh install shows, and the feature toolsets (off by default) are turned on a few at a time.
    const inDefault = ALL_TOOLS.filter((t) => DEFAULT_TOOLSETS.includes(t.toolset));
    expect(inDefault.length).toBeLessThan(25);
    expect(ALL_TOOLS.length).toBeLessThanOrEqual(60);
  });

  it('input parameters are snake_case', () => {
    for (const t of ALL_TOOLS) for (const key of Object.keys(t.input.shape)) expect(key, `${t.name}.${key}`).toMatch(/^[a-z][a-z0-9_]*$/);
  });

  it.each(ALL_TOOLS.map((t) => [t.name, t] as const))('%s schema matches its snapshot', async (name, t) => {
    const schema = {
      name,
      title: t.title,
      effect: t.effect,
      // The hints a client sees when the policy allows everything: they hold for every effect a call may have.
      annotations: hintsFor(hintEffects(t, [ALL]), t.title),
      description: t.description,
      input: z.toJSONSchema(t.input, { io: 'input' }),
      output: z.toJSONSchema(t.output),
    };
    await expect(JSON.stringify(schema, null, 2) + '\n').toMatchFileSnapshot(`../schemas/${name}.json`);
  });

  it('the README tool table is generated from the registry and up to date', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(renderReadme(readme), 'README.md is stale: run `npm run docs`').toBe(readme);
  });

  it('every tool is in a toolset, and the README toolset table says which (and which are on by default)', async () => {
    const { TOOLSETS } = await import('../../src/tools/toolsets.js');
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    for (const t of TOOLSETS) {
      const tools = ALL_TOOLS.filter((x) => x.toolset === t.name).map((x) => `\`${x.name}\``);
      expect(tools.length, t.name).toBeGreaterThan(0);
      expect(readme, t.name).toContain(`| \`${t.name}\` | ${tools.join(', ')} | ${t.default ? 'on' : 'off'} |`);
    }
    for (const tool of ALL_TOOLS)
      expect(
        TOOLSETS.map((t) => t.name),
        tool.name,
      ).toContain(tool.toolset);
  });
});
