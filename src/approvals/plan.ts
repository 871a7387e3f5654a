/**
 * The planner's words: what a dry run returned, turned into the exact requests it would send and a short
 * summary a person can judge at a glance (what, where, which record, which requests).
 */
import type { PlannedRequest } from '../domain/records.js';
import { redactValue } from '../util/redact.js';

/** The planned requests in a dry run's output: `requests` at its top level or one level down (raw tools nest them). */
export function plannedRequests(out: unknown, depth = 0): PlannedRequest[] {
  if (!out || typeof out !== 'object' || depth > 2) return [];
  const o = out as Record<string, unknown>;
  if (Array.isArray(o.requests)) {
    return o.requests
      .filter((r): r is Record<string, unknown> => !!r && typeof r === 'object')
      .map((r) => ({ method: String(r.method ?? ''), url: String(r.url ?? ''), ...(r.body !== undefined ? { body: redactValue(r.body) } : {}) }));
  }
  for (const v of Object.values(o)) {
    const found = plannedRequests(v, depth + 1);
    if (found.length) return found;
  }
  return [];
}

const VERB: Record<string, string> = { create: 'Create', update: 'Change', delete: 'Delete', admin: 'Administer' };

/** The fields a request body sets, by name (values stay in the full plan). */
function fieldsOf(body: unknown): string {
  const one = Array.isArray(body) ? body[0] : body;
  if (!one || typeof one !== 'object') return '';
  const keys = Object.keys(one as Record<string, unknown>).slice(0, 8);
  return keys.length ? ` (${keys.join(', ')})` : '';
}

export interface PlanFacts {
  tool: string;
  title: string;
  effect: string;
  connection: string;
  target: Record<string, unknown>;
  requests: PlannedRequest[];
  /** Why the dry run plans no request (a duplicate found), when it says. */
  reason?: string;
  /** False when the tool cannot preview: the person approves the arguments only. */
  planned: boolean;
}

/** One paragraph in plain words, short enough for a terminal line or an elicitation message. */
export function summarize(p: PlanFacts): string {
  const record = Object.entries(p.target)
    .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(', ');
  const head = `${VERB[p.effect] ?? p.effect} in "${p.connection}" with ${p.tool} (${p.title})${record ? `, record ${record}` : ''}`;
  if (!p.planned) return `${head}. No preview is available for this call: judge it by its arguments.`;
  if (!p.requests.length) return `${head}. The preview sends no request${p.reason ? `: ${p.reason}` : ''}.`;
  const shown = p.requests.slice(0, 3).map((r) => `${r.method} ${r.url}${fieldsOf(r.body)}`);
  const more = p.requests.length > 3 ? `; and ${p.requests.length - 3} more` : '';
  return `${head}. It sends ${p.requests.length} request${p.requests.length > 1 ? 's' : ''}: ${shown.join('; ')}${more}.`;
}
