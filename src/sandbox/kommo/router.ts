/**
 * The `/api/v4` route table. A path that matches nothing is Kommo's 404 "Cannot GET <url>"; a known path
 * with a method Kommo does not have is 405 (fact sheet §11) — e.g. DELETE of a lead, which the v4 API does
 * not offer. Methods Kommo has but this emulator does not implement answer 501, so a test never mistakes a
 * gap in the emulator for the real API's behaviour.
 */
import type { EmuResponse } from '../harness.js';
import * as act from './activity.js';
import type { Ctx } from './context.js';
import * as calls from './calls.js';
import * as cust from './customers.js';
import * as ent from './entities.js';
import { linkEntities } from './entity-write.js';
import * as loss from './loss-reasons.js';
import * as meta from './meta.js';
import * as uns from './unsorted.js';
import { ApiError, methodNotAllowed, problemResponse, routeNotFound } from './responses.js';
import type { EntityType } from './types.js';

type Handler = (ctx: Ctx, m: string[]) => EmuResponse;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
const NOT_EMULATED = 'not-emulated' as const;
type Route = [RegExp, Partial<Record<Method, Handler | typeof NOT_EMULATED>>];

const ENT = '(leads|contacts|companies)';
const e = (m: string[], i = 1) => m[i] as EntityType;
const n = (m: string[], i: number) => Number(m[i]);

const ROUTES: Route[] = [
  [/^\/api\/v4\/account$/, { GET: (c) => meta.getAccount(c) }],
  // §7: stage/pipeline editing is admin-only and not emulated.
  [/^\/api\/v4\/leads\/pipelines$/, { GET: (c) => meta.listPipelines(c), POST: NOT_EMULATED }],
  [/^\/api\/v4\/leads\/pipelines\/(\d+)$/, { GET: (c, m) => meta.getPipeline(c, n(m, 1)), PATCH: NOT_EMULATED, DELETE: NOT_EMULATED }],
  [/^\/api\/v4\/leads\/pipelines\/(\d+)\/statuses$/, { GET: (c, m) => meta.listStatuses(c, n(m, 1)), POST: NOT_EMULATED }],
  [/^\/api\/v4\/leads\/pipelines\/(\d+)\/statuses\/(\d+)$/, { GET: (c, m) => meta.getStatus(c, n(m, 1), n(m, 2)), PATCH: NOT_EMULATED, DELETE: NOT_EMULATED }],
  [/^\/api\/v4\/leads\/complex$/, { POST: (c) => ent.createComplex(c) }],
  [new RegExp(`^/api/v4/${ENT}/custom_fields$`), { GET: (c, m) => meta.listFields(c, e(m)), POST: NOT_EMULATED, PATCH: NOT_EMULATED }],
  [new RegExp(`^/api/v4/${ENT}/custom_fields/(\\d+)$`), { GET: (c, m) => meta.getField(c, e(m), n(m, 2)), PATCH: NOT_EMULATED, DELETE: NOT_EMULATED }],
  [new RegExp(`^/api/v4/${ENT}/tags$`), { GET: (c, m) => meta.listTags(c, e(m)), POST: (c, m) => meta.createTags(c, e(m)) }],
  [new RegExp(`^/api/v4/${ENT}/notes$`), { GET: (c, m) => act.listNotes(c, e(m)), POST: (c, m) => act.createNotes(c, e(m)), PATCH: NOT_EMULATED }],
  [new RegExp(`^/api/v4/${ENT}/notes/(\\d+)$`), { GET: (c, m) => act.getNote(c, e(m), n(m, 2)), PATCH: NOT_EMULATED }],
  [
    new RegExp(`^/api/v4/${ENT}/(\\d+)/notes$`),
    { GET: (c, m) => act.listNotes(c, e(m), n(m, 2)), POST: (c, m) => act.createNotes(c, e(m), n(m, 2)), PATCH: NOT_EMULATED },
  ],
  [new RegExp(`^/api/v4/${ENT}/(\\d+)/notes/(\\d+)$`), { GET: (c, m) => act.getNote(c, e(m), n(m, 3), n(m, 2)), PATCH: NOT_EMULATED }],
  [
    new RegExp(`^/api/v4/${ENT}$`),
    { GET: (c, m) => ent.listEntities(c, e(m)), POST: (c, m) => ent.createEntities(c, e(m)), PATCH: (c, m) => ent.updateEntities(c, e(m)) },
  ],
  [new RegExp(`^/api/v4/${ENT}/(\\d+)$`), { GET: (c, m) => ent.getEntity(c, e(m), n(m, 2)), PATCH: (c, m) => ent.updateEntity(c, e(m), n(m, 2)) }],
  // §12 link endpoints: one record's links (entity-write.ts linkEntities); the bulk form is not emulated.
  [new RegExp(`^/api/v4/${ENT}/(\\d+)/link$`), { POST: (c, m) => linkEntities(c, e(m), n(m, 2)) }],
  [new RegExp(`^/api/v4/${ENT}/link$`), { POST: NOT_EMULATED }],
  [new RegExp(`^/api/v4/${ENT}/(\\d+/)?unlink$`), { POST: NOT_EMULATED }],
  [/^\/api\/v4\/tasks$/, { GET: (c) => act.listTasks(c), POST: (c) => act.createTasks(c), PATCH: (c) => act.updateTasks(c) }],
  [/^\/api\/v4\/tasks\/(\d+)$/, { GET: (c, m) => act.getTask(c, n(m, 1)), PATCH: (c, m) => act.updateTasks(c, n(m, 1)) }],
  // §12 customers: one customer, its transactions (`accrue_bonus` credits points) and their removal.
  [/^\/api\/v4\/customers$/, { GET: NOT_EMULATED, POST: NOT_EMULATED, PATCH: NOT_EMULATED }],
  [/^\/api\/v4\/customers\/(\d+)$/, { GET: (c, m) => cust.getCustomer(c, n(m, 1)), PATCH: NOT_EMULATED }],
  [/^\/api\/v4\/customers\/(\d+)\/transactions$/, { GET: (c, m) => cust.listTransactions(c, n(m, 1)), POST: (c, m) => cust.createTransactions(c, n(m, 1)) }],
  [/^\/api\/v4\/customers\/(\d+)\/transactions\/(\d+)$/, { DELETE: (c, m) => cust.deleteTransaction(c, n(m, 1), n(m, 2)) }],
  [/^\/api\/v4\/customers\/(\d+)\/bonus_points$/, { POST: NOT_EMULATED }],
  [/^\/api\/v4\/users$/, { GET: (c) => meta.listUsers(c), POST: NOT_EMULATED }],
  [/^\/api\/v4\/users\/(\d+)$/, { GET: (c, m) => meta.getUser(c, n(m, 1)) }],
  [/^\/api\/v4\/events$/, { GET: (c) => act.listEvents(c) }],
  [/^\/api\/v4\/events\/([0-9a-z]+)$/, { GET: (c, m) => act.getEvent(c, m[1]!) }],
  [/^\/api\/v4\/webhooks$/, { GET: (c) => act.listWebhooks(c), POST: (c) => act.createWebhook(c), DELETE: (c) => act.deleteWebhook(c) }],
  // §12 incoming leads (unsorted.ts): list, add calls (forms not emulated), accept, decline; link is chats only.
  [/^\/api\/v4\/leads\/unsorted$/, { GET: (c) => uns.listUnsorted(c) }],
  [/^\/api\/v4\/leads\/unsorted\/sip$/, { POST: (c) => uns.addSip(c) }],
  [/^\/api\/v4\/leads\/unsorted\/forms$/, { POST: NOT_EMULATED }],
  [/^\/api\/v4\/leads\/unsorted\/([0-9a-zA-Z_-]+)\/accept$/, { POST: (c, m) => uns.acceptUnsorted(c, m[1]!) }],
  [/^\/api\/v4\/leads\/unsorted\/([0-9a-zA-Z_-]+)\/decline$/, { DELETE: (c, m) => uns.declineUnsorted(c, m[1]!) }],
  [/^\/api\/v4\/leads\/unsorted(\/.*)?$/, { GET: NOT_EMULATED, POST: NOT_EMULATED, PATCH: NOT_EMULATED, DELETE: NOT_EMULATED }],
  // §12 loss reasons (loss-reasons.ts): read only; editing them is configuration and not emulated.
  [/^\/api\/v4\/leads\/loss_reasons$/, { GET: (c) => loss.listLossReasons(c), POST: NOT_EMULATED, PATCH: NOT_EMULATED }],
  [/^\/api\/v4\/leads\/loss_reasons\/(\d+)$/, { GET: (c, m) => loss.getLossReason(c, n(m, 1)), PATCH: NOT_EMULATED, DELETE: NOT_EMULATED }],
  // §12 calls (calls.ts): add only; Kommo has no GET, update or delete for calls.
  [/^\/api\/v4\/calls$/, { POST: (c) => calls.addCalls(c) }],
];

export function route(ctx: Ctx): EmuResponse {
  const { method, path } = ctx.req;
  for (const [re, methods] of ROUTES) {
    const m = re.exec(path);
    if (!m) continue;
    const h = methods[method as Method];
    if (!h) throw methodNotAllowed();
    if (h === NOT_EMULATED) {
      throw new ApiError(
        problemResponse(501, {
          title: 'Not Implemented',
          type: 'https://httpstatus.es/501',
          status: 501,
          detail: `${method} ${path} exists on Kommo but is not emulated`,
        }),
      );
    }
    return h(ctx, [...m]);
  }
  throw routeNotFound(method, `${ctx.origin}${path}`);
}
