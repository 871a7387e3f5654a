import { describe, expect, it } from 'vitest';
import { allowedEffects, annotationsFor, decide, Grant, modeOf, type PolicyFlags } from '../../src/policy/policy.js';
import { toolSelected } from '../../src/policy/tool-filter.js';

const f = (allowWrites: boolean, safeMode: boolean, allowDelete: boolean, allowAdmin = false): PolicyFlags => ({
  allowWrites,
  safeMode,
  allowDelete,
  allowAdmin,
});

describe('policy', () => {
  it.each([
    [f(false, true, false), ['read'], 'read-only'],
    [f(false, false, true, true), ['read'], 'read-only'],
    [f(true, true, false), ['read', 'create'], 'create-only'],
    [f(true, true, true, true), ['read', 'create'], 'create-only'],
    [f(true, false, false), ['read', 'create', 'update'], 'write'],
    [f(true, false, true), ['read', 'create', 'update', 'delete'], 'full'],
    [f(true, false, false, true), ['read', 'create', 'update', 'admin'], 'admin'],
    [f(true, false, true, true), ['read', 'create', 'update', 'delete', 'admin'], 'full+admin'],
  ] as const)('%o allows %o (%s)', (flags, effects, mode) => {
    expect(allowedEffects(flags)).toEqual(effects);
    expect(modeOf(flags)).toBe(mode);
  });

  // Every flag setting the refused effect still needs, written out by hand.
  it.each([
    [f(false, true, false), 'create', ['CRM_ALLOW_WRITES=true'], ['CRM_SAFE_MODE', 'CRM_ALLOW_DELETE', 'CRM_ALLOW_ADMIN']],
    [f(false, true, false), 'update', ['CRM_ALLOW_WRITES=true', 'CRM_SAFE_MODE=false'], ['CRM_ALLOW_DELETE', 'CRM_ALLOW_ADMIN']],
    [f(false, true, false), 'delete', ['CRM_ALLOW_WRITES=true', 'CRM_SAFE_MODE=false', 'CRM_ALLOW_DELETE=true'], ['CRM_ALLOW_ADMIN']],
    [f(false, true, false), 'admin', ['CRM_ALLOW_WRITES=true', 'CRM_SAFE_MODE=false', 'CRM_ALLOW_ADMIN=true'], ['CRM_ALLOW_DELETE']],
    [f(true, true, false), 'update', ['CRM_SAFE_MODE=false'], ['CRM_ALLOW_WRITES', 'CRM_ALLOW_DELETE', 'CRM_ALLOW_ADMIN']],
    [f(true, true, true), 'delete', ['CRM_SAFE_MODE=false'], ['CRM_ALLOW_WRITES', 'CRM_ALLOW_DELETE', 'CRM_ALLOW_ADMIN']],
    [f(true, false, false), 'delete', ['CRM_ALLOW_DELETE=true'], ['CRM_ALLOW_WRITES', 'CRM_SAFE_MODE', 'CRM_ALLOW_ADMIN']],
    [f(true, false, true), 'admin', ['CRM_ALLOW_ADMIN=true'], ['CRM_ALLOW_WRITES', 'CRM_SAFE_MODE', 'CRM_ALLOW_DELETE']],
    [f(true, true, true), 'admin', ['CRM_SAFE_MODE=false', 'CRM_ALLOW_ADMIN=true'], ['CRM_ALLOW_WRITES', 'CRM_ALLOW_DELETE']],
  ] as const)('%o refusing %s names %o and nothing else', (flags, effect, named, notNamed) => {
    const d = decide(flags, effect);
    expect(d.allow).toBe(false);
    const reason = d.allow ? '' : d.reason;
    for (const n of named) expect(reason).toContain(n);
    for (const n of notNamed) expect(reason).not.toContain(n);
  });

  it('admin is never implied by deletes or by any other flag', () => {
    expect(decide(f(true, false, true, false), 'admin').allow).toBe(false);
    expect(decide(f(true, true, true, true), 'admin').allow).toBe(false);
    expect(decide(f(false, false, true, true), 'admin').allow).toBe(false);
    expect(decide(f(true, false, false, true), 'admin').allow).toBe(true);
    expect(decide(f(true, false, false, true), 'delete').allow).toBe(false);
  });

  it('grants carry reads plus the decided effect only', () => {
    expect(Grant.for('create').list()).toEqual(['read', 'create']);
    expect(Grant.for('read').has('create')).toBe(false);
    expect(Grant.for('update').has('delete')).toBe(false);
    expect(Grant.for('delete').has('admin')).toBe(false);
    expect(Grant.for('admin').list()).toEqual(['read', 'admin']);
  });

  it('derives annotations from the effect', () => {
    expect(annotationsFor('read', 'x')).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(annotationsFor('create', 'x')).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });
    expect(annotationsFor('update', 'x')).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(annotationsFor('delete', 'x')).toMatchObject({ destructiveHint: true, idempotentHint: true });
    expect(annotationsFor('admin', 'x')).toMatchObject({ readOnlyHint: false, destructiveHint: true, idempotentHint: false });
  });

  it('tool filter: include list narrows, exclude list removes', () => {
    expect(toolSelected('get_lead', {})).toBe(true);
    expect(toolSelected('get_lead', { include: ['list_leads'] })).toBe(false);
    expect(toolSelected('get_lead', { exclude: ['get_lead'] })).toBe(false);
  });
});
