import { describe, expect, it } from 'vitest';
import { allowedEffects, annotationsFor, decide, Grant, modeOf, type PolicyFlags } from '../../src/policy/policy.js';
import { toolSelected } from '../../src/policy/tool-filter.js';

const f = (allowWrites: boolean, safeMode: boolean, allowDelete: boolean): PolicyFlags => ({ allowWrites, safeMode, allowDelete });

describe('policy', () => {
  it.each([
    [f(false, true, false), ['read'], 'read-only'],
    [f(false, false, true), ['read'], 'read-only'],
    [f(true, true, false), ['read', 'create'], 'create-only'],
    [f(true, true, true), ['read', 'create'], 'create-only'],
    [f(true, false, false), ['read', 'create', 'update'], 'write'],
    [f(true, false, true), ['read', 'create', 'update', 'delete'], 'full'],
  ] as const)('%o allows %o (%s)', (flags, effects, mode) => {
    expect(allowedEffects(flags)).toEqual(effects);
    expect(modeOf(flags)).toBe(mode);
  });

  it('explains refusals with the flag to change', () => {
    const ro = decide(f(false, true, false), 'create');
    expect(ro.allow).toBe(false);
    expect(!ro.allow && ro.reason).toMatch(/CRM_ALLOW_WRITES/);
    const safe = decide(f(true, true, false), 'update');
    expect(!safe.allow && safe.reason).toMatch(/safe mode/);
    const del = decide(f(true, false, false), 'delete');
    expect(!del.allow && del.reason).toMatch(/CRM_ALLOW_DELETE/);
  });

  it('grants carry reads plus the decided effect only', () => {
    expect(Grant.for('create').list()).toEqual(['read', 'create']);
    expect(Grant.for('read').has('create')).toBe(false);
    expect(Grant.for('update').has('delete')).toBe(false);
  });

  it('derives annotations from the effect', () => {
    expect(annotationsFor('read', 'x')).toMatchObject({ readOnlyHint: true, destructiveHint: false, idempotentHint: true });
    expect(annotationsFor('create', 'x')).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });
    expect(annotationsFor('update', 'x')).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(annotationsFor('delete', 'x')).toMatchObject({ destructiveHint: true, idempotentHint: true });
  });

  it('tool filter: include list narrows, exclude list removes', () => {
    expect(toolSelected('get_lead', {})).toBe(true);
    expect(toolSelected('get_lead', { include: ['list_leads'] })).toBe(false);
    expect(toolSelected('get_lead', { exclude: ['get_lead'] })).toBe(false);
  });
});
