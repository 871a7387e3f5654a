/** The raw request behind kommo_request: the path was validated by the tool and is checked again by the core. */
import type { HttpMethod, QueryValue } from '../../http/client.js';
import type { CallContext } from '../types.js';
import type { KommoParts } from './metadata.js';

export async function raw(
  k: KommoParts,
  ctx: CallContext,
  method: HttpMethod,
  path: string,
  query: Record<string, QueryValue> | undefined,
  body: unknown,
): Promise<{ status: number; data: unknown }> {
  if (ctx.dryRun) return { status: 0, data: { dry_run: true, requests: [k.api.plan(method, path, body)] } };
  const res = await k.api.http.request({
    method,
    path,
    query,
    body,
    op: method === 'GET' ? 'read' : method === 'POST' ? 'create' : 'idempotent',
    grant: ctx.grant,
    signal: ctx.signal,
  });
  return { status: res.status, data: res.data ?? null };
}
