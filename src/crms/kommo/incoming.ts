/**
 * Kommo incoming leads ("unsorted", §12; the calls fact sheet, events-calls-bulk-hosting.md 3.1): a system
 * stage that collects leads from calls, forms, chats and mail until someone accepts them (into a stage of
 * the pipeline) or declines them (they are removed). `GET /api/v4/leads/unsorted` (filter by uid, category,
 * pipeline; limit ≤ 250), `POST …/{uid}/accept {user_id, status_id}`, `DELETE …/{uid}/decline {user_id}`.
 * Accepting or declining is sent once: after a lost answer the item is looked up instead of re-sent.
 */
import { z } from 'zod';
import type { AcceptIncomingInput, IncomingLead, IncomingOutcome, ListIncomingInput } from '../../domain/calls.js';
import { CrmError, validationError } from '../../domain/errors.js';
import type { CallContext, Page } from '../types.js';
import { toId } from './ids.js';
import { detailUrl, iso, webOf, type Lookups } from './map.js';
import type { KommoParts } from './metadata.js';
import { parseKommo } from './schemas.js';

const PATH = '/api/v4/leads/unsorted';

const KRef = z.looseObject({ id: z.number(), name: z.string().nullish(), status_id: z.number().nullish() });
const KUnsorted = z.looseObject({
  uid: z.string(),
  category: z.string().nullish(),
  source_name: z.string().nullish(),
  pipeline_id: z.number().nullish(),
  created_at: z.number().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  _embedded: z.looseObject({ leads: z.array(KRef).nullish(), contacts: z.array(KRef).nullish(), companies: z.array(KRef).nullish() }).nullish(),
});
type KUnsorted = z.infer<typeof KUnsorted>;

/** A uid goes into the path: only the characters Kommo's uids have. */
function checkUid(uid: string): string {
  const u = uid.trim();
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(u)) throw validationError(`uid: "${uid.slice(0, 100)}" is not an incoming lead uid (list_incoming_leads shows them).`);
  return u;
}

const refs = (web: string, entity: 'contacts' | 'companies', xs: Array<z.infer<typeof KRef>> | null | undefined) =>
  (xs ?? []).map((x) => ({ id: x.id, name: x.name ?? null, url: detailUrl(web, entity, x.id) }));
const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);

function mapIncoming(u: KUnsorted, l: Lookups): IncomingLead {
  const m = u.metadata ?? {};
  const lead = u._embedded?.leads?.[0];
  const pipeline = u.pipeline_id ? { id: u.pipeline_id, name: l.pipelines.get(u.pipeline_id)?.name ?? null } : null;
  return {
    uid: u.uid,
    category: u.category ?? 'unknown',
    source_name: u.source_name ?? null,
    pipeline,
    created_at: iso(u.created_at),
    lead: lead ? { id: lead.id, name: lead.name ?? null, url: detailUrl(l.web, 'leads', lead.id) } : null,
    contacts: refs(l.web, 'contacts', u._embedded?.contacts),
    companies: refs(l.web, 'companies', u._embedded?.companies),
    call:
      u.category === 'sip'
        ? {
            phone: str(m.from) ?? str(m.phone),
            called_at: typeof m.called_at === 'number' ? iso(m.called_at) : null,
            duration_s: typeof m.duration === 'number' ? m.duration : null,
            link: str(m.link),
          }
        : null,
    form: u.category === 'forms' ? { name: str(m.form_name), page: str(m.form_page) } : null,
  };
}

export async function listIncomingLeads(k: KommoParts, ctx: CallContext, q: ListIncomingInput): Promise<Page<IncomingLead>> {
  const params: Array<[string, string]> = [];
  for (const c of q.category ?? []) params.push(['filter[category][]', c]);
  if (q.pipeline_id !== undefined) params.push(['filter[pipeline_id]', String(toId(q.pipeline_id, 'pipeline_id'))]);
  const page = await k.api.listPage(ctx, PATH, 'unsorted', KUnsorted, params, q.limit ?? 50, q.cursor);
  const l = await k.meta.lookups(ctx);
  return { ...page, items: page.items.map((u) => mapIncoming(u, l)), total: null };
}

/** The incoming lead with this uid, or a not_found naming the tool that lists them. */
async function mustFind(k: KommoParts, ctx: CallContext, uid: string): Promise<KUnsorted> {
  const found = await findOne(k, ctx, uid);
  if (!found)
    throw new CrmError({ code: 'not_found', message: `No incoming lead ${uid} (accepted or declined already?). list_incoming_leads shows the open ones.` });
  return found;
}

async function findOne(k: KommoParts, ctx: CallContext, uid: string): Promise<KUnsorted | undefined> {
  const q = new URLSearchParams({ 'filter[uid]': uid, limit: '1' });
  return (await k.api.page(ctx, PATH, 'unsorted', q, KUnsorted)).items.find((u) => u.uid === uid);
}

function outcomeOf(web: string, uid: string, outcome: IncomingOutcome['outcome'], u: KUnsorted, answer: unknown): IncomingOutcome {
  const a = answer ? parseKommo(KUnsorted.partial({ uid: true }), answer, `${PATH}/${uid}/${outcome === 'accepted' ? 'accept' : 'decline'}`) : undefined;
  const emb = a?._embedded ?? u._embedded;
  const lead = emb?.leads?.[0] ?? u._embedded?.leads?.[0];
  return {
    uid,
    outcome,
    lead: lead
      ? { id: lead.id, name: lead.name ?? null, ...(lead.status_id !== undefined ? { status_id: lead.status_id } : {}), url: detailUrl(web, 'leads', lead.id) }
      : null,
    contacts: refs(web, 'contacts', emb?.contacts ?? u._embedded?.contacts),
    companies: refs(web, 'companies', emb?.companies ?? u._embedded?.companies),
  };
}

/** Sends an accept or decline once; after a lost answer the item is looked up: gone means it was done. */
async function sendOnce(k: KommoParts, ctx: CallContext, method: 'POST' | 'DELETE', path: string, body: unknown, uid: string): Promise<unknown> {
  try {
    return (await k.api.call<unknown>(ctx, method, path, { body, op: 'create' })) ?? null;
  } catch (e) {
    if (!(e instanceof CrmError && e.ambiguous)) throw e;
    if ((await findOne(k, ctx, uid)) === undefined) return null;
    throw new CrmError({ code: e.code, retryable: true, message: `${e.message} The incoming lead is still there, so it is safe to try again.` });
  }
}

export async function acceptIncomingLead(k: KommoParts, ctx: CallContext, input: AcceptIncomingInput): Promise<IncomingOutcome> {
  const uid = checkUid(input.uid);
  const u = await mustFind(k, ctx, uid);
  const acc = await k.meta.account(ctx);
  // The accepting user becomes responsible; an empty body is a 400 on Kommo (§11), so it is always named.
  const user = (await k.meta.checkUser(ctx, input.user_id)) ?? (typeof acc.current_user_id === 'number' ? acc.current_user_id : undefined);
  let statusId: number | undefined;
  if (input.status_id !== undefined) {
    const stage = await k.meta.checkStage(ctx, u.pipeline_id ?? undefined, input.status_id);
    statusId = stage.status_id;
  }
  const body = { ...(user !== undefined ? { user_id: user } : {}), ...(statusId !== undefined ? { status_id: statusId } : {}) };
  const answer = await sendOnce(k, ctx, 'POST', `${PATH}/${uid}/accept`, body, uid);
  return outcomeOf(webOf(k.api.baseUrl), uid, 'accepted', u, answer);
}

export async function declineIncomingLead(k: KommoParts, ctx: CallContext, rawUid: string): Promise<IncomingOutcome> {
  const uid = checkUid(rawUid);
  const u = await mustFind(k, ctx, uid);
  const acc = await k.meta.account(ctx);
  const body = typeof acc.current_user_id === 'number' ? { user_id: acc.current_user_id } : {};
  const answer = await sendOnce(k, ctx, 'DELETE', `${PATH}/${uid}/decline`, body, uid);
  return outcomeOf(webOf(k.api.baseUrl), uid, 'declined', u, answer);
}
