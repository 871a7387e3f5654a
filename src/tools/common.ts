/** Helpers shared by several tools; the input pieces themselves are the domain's (src/domain/inputs.ts). */
import type { CallEffect } from './define.js';

/** True for a custom-field value that clears the field (nothing, or only blanks). */
function clears(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(clears);
  return value === null || (typeof value === 'string' && value.trim() === '');
}

/**
 * The effect of an update that may also remove data: removing tags, phones or e-mails, or clearing a custom
 * field, is a delete (README, "Safety first"), so it needs CRM_ALLOW_DELETE like any other removal.
 */
export function updateEffect(args: Record<string, unknown>, removing: readonly string[]): CallEffect {
  const removes = removing.filter((k) => Array.isArray(args[k]) && (args[k] as unknown[]).length > 0);
  const fields = Array.isArray(args.custom_fields) ? (args.custom_fields as Array<{ value?: unknown }>) : [];
  if (fields.some((f) => clears(f.value))) removes.push('custom_fields (a cleared value)');
  if (!removes.length) return { effect: 'update' };
  return { effect: 'delete', note: `${removes.join(', ')} removes data, so this update counts as a delete` };
}

/** Drops custom fields from list items unless the caller asked for them. */
export function listItems<P extends { items: Array<{ custom_fields?: unknown }> }>(page: P, withCustomFields: boolean | undefined): P {
  if (withCustomFields) return page;
  return { ...page, items: page.items.map(({ custom_fields: _c, ...rest }) => rest) };
}
