/**
 * The domain's words about toolsets (domain/tool-hints.ts) must agree with the tool registry, which the domain
 * may not import: the default toolsets, and the toolset of every tool its messages point at.
 */
import { describe, expect, it } from 'vitest';
import { ALL_TOOLS } from '../../src/crms/registry.js';
import { DEFAULT_TOOLSET_NAMES, OFF_BY_DEFAULT, toolRef } from '../../src/domain/tool-hints.js';
import { DEFAULT_TOOLSETS } from '../../src/tools/toolsets.js';

describe('tool hints', () => {
  it('name the default toolsets the registry has', () => {
    expect([...DEFAULT_TOOLSET_NAMES]).toEqual(DEFAULT_TOOLSETS);
  });

  it.each(Object.entries(OFF_BY_DEFAULT))('%s is in toolset %s, which is off by default', (name, toolset) => {
    expect(ALL_TOOLS.find((t) => t.name === name)?.toolset).toBe(toolset);
    expect(DEFAULT_TOOLSETS).not.toContain(toolset);
  });

  it('say how to turn the toolset on, and nothing for a tool listed by default', () => {
    expect(toolRef('list_users')).toBe('list_users (toolset metadata: add it to CRM_TOOLSETS, e.g. CRM_TOOLSETS=core,activity,metadata)');
    expect(toolRef('get_pipelines')).toBe('get_pipelines');
    expect(toolRef('get_audit_log')).toBe('get_audit_log (toolset audit: add it to CRM_TOOLSETS, e.g. CRM_TOOLSETS=core,activity,audit)');
  });
});
