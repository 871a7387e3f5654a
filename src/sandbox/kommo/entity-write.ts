/**
 * Validated create/update plans for leads, contacts and companies (fact sheet §5.3–§5.5, §6). `read*`
 * validates one body element and returns a plan whose `apply()` changes state; nothing is written unless
 * the whole batch validated.
 */
import { isLossReason } from './loss-reasons.js';
import type { EmuResponse } from '../harness.js';
import { arrayBody, type Ctx, isObject, requestIdOf, selfLink } from './context.js';
import { DEMO } from './demo-data.js';
import { ApiError, E, type FieldError, hal, notFound, problemResponse, Validation } from './responses.js';
import { recordEvent } from './store.js';
import type { KCompany, KContact, KLead, KPipeline, KStatus } from './types.js';
import { applyTags, BodyReader, type CfChange, mergeCustomFields, readCustomFields, readTags, type TagPlan } from './write.js';

export type Mode = 'create' | 'update';
export interface Plan {
  apply(): number;
  /** Leads: applies this body to an existing lead instead (a duplicate-control merge, §5.5). */
  merge?(into: KLead): void;
}

const COMMON = [
  'name',
  'responsible_user_id',
  'created_by',
  'updated_by',
  'created_at',
  'updated_at',
  'custom_fields_values',
  'tags_to_add',
  'tags_to_delete',
  '_embedded',
  'request_id',
];
const LEAD_KEYS = [...COMMON, 'price', 'status_id', 'pipeline_id', 'closed_at', 'loss_reason_id'];
const CONTACT_KEYS = [...COMMON, 'first_name', 'last_name'];

interface Common {
  name?: string;
  responsible?: number;
  createdBy?: number;
  updatedBy?: number;
  createdAt?: number;
  updatedAt?: number;
  cf?: CfChange[];
  tags?: TagPlan | null;
  add?: TagPlan;
  del?: TagPlan;
}

function readCommon(ctx: Ctx, entity: 'leads' | 'contacts' | 'companies', r: BodyReader, emb: BodyReader | undefined, mode: Mode): Common {
  r.str('request_id');
  if (mode === 'create' && r.has('tags_to_delete')) r.errs.push(E.extra(r.path('tags_to_delete')));
  const ts = (k: string) => r.int(k, { min: 0 }) ?? undefined;
  return {
    name: r.str('name'),
    responsible: r.user(ctx, 'responsible_user_id'),
    createdBy: r.user(ctx, 'created_by', true),
    updatedBy: r.user(ctx, 'updated_by', true),
    createdAt: ts('created_at'),
    updatedAt: ts('updated_at'),
    cf: readCustomFields(ctx, entity, r.obj.custom_fields_values, r.path('custom_fields_values'), r.errs),
    // §5.4: `_embedded.tags` replaces the set (null detaches all); tags_to_add/tags_to_delete are incremental.
    tags: emb ? readTags(ctx, entity, emb.obj.tags, emb.path('tags'), r.errs, { nullable: mode === 'update' }) : undefined,
    add: readTags(ctx, entity, r.obj.tags_to_add, r.path('tags_to_add'), r.errs) ?? undefined,
    del: mode === 'update' ? (readTags(ctx, entity, r.obj.tags_to_delete, r.path('tags_to_delete'), r.errs) ?? undefined) : undefined,
  };
}

/** The first regular stage by sort (not incoming, not won/lost) of a pipeline: where API-created leads land (§5.3). */
export function firstStage(p: KPipeline): KStatus {
  const regular = p._embedded.statuses.filter((x) => x.type === 0 && x.id !== 142 && x.id !== 143).sort((a, b) => a.sort - b.sort);
  return regular[0] ?? p._embedded.statuses[0]!;
}

export function mainPipeline(ctx: Ctx): KPipeline {
  return [...ctx.state.pipelines.values()].find((p) => p.is_main) ?? ctx.state.pipelines.get(DEMO.mainPipelineId)!;
}

/**
 * Where the lead goes (§5.3, §5.4, §7): default = first stage of the main pipeline; `pipeline_id` alone =
 * that pipeline's first stage; `status_id` must belong to the given (or current) pipeline — 142/143 exist in
 * every pipeline. The incoming-leads stage is reserved for incoming leads (complex + metadata).
 */
function readStage(ctx: Ctx, r: BodyReader, current: KLead | undefined, incoming: boolean): { pipeline: KPipeline; status: KStatus } | undefined {
  const pid = r.int('pipeline_id');
  const sid = r.int('status_id');
  if (pid === null || sid === null) return undefined;
  const pipeline = pid !== undefined ? ctx.state.pipelines.get(pid) : current ? ctx.state.pipelines.get(current.pipeline_id) : mainPipeline(ctx);
  if (!pipeline) {
    if (pid !== undefined) r.errs.push(E.choice(r.path('pipeline_id')));
    return undefined;
  }
  if (incoming) return { pipeline, status: pipeline._embedded.statuses.find((x) => x.type === 1) ?? firstStage(pipeline) };
  if (sid === undefined) {
    if (current && pipeline.id === current.pipeline_id) return { pipeline, status: pipeline._embedded.statuses.find((x) => x.id === current.status_id)! };
    return { pipeline, status: firstStage(pipeline) };
  }
  const status = pipeline._embedded.statuses.find((x) => x.id === sid);
  if (!status || status.type === 1) {
    r.errs.push(E.choice(r.path('status_id')));
    return undefined;
  }
  return { pipeline, status };
}

function readRefs(ctx: Ctx, emb: BodyReader, key: 'contacts' | 'companies', max: number): Array<{ id: number; is_main?: boolean }> | undefined {
  const arr = emb.array(key);
  if (!arr) return undefined;
  if (arr.length > max) {
    emb.errs.push(E.choice(emb.path(key)));
    return undefined;
  }
  const out: Array<{ id: number; is_main?: boolean }> = [];
  arr.forEach((x, i) => {
    if (!isObject(x)) return void emb.errs.push(E.type(emb.path(`${key}.${i}`), 'object'));
    const r = new BodyReader(x, emb.path(`${key}.${i}.`), emb.errs, key === 'contacts' ? ['id', 'is_main'] : ['id']);
    const id = r.int('id');
    if (typeof id !== 'number') return void (r.has('id') || emb.errs.push(E.blank(r.path('id'))));
    if (!(key === 'contacts' ? ctx.state.contacts : ctx.state.companies).has(id)) return void emb.errs.push(E.choice(r.path('id')));
    out.push({ id, is_main: r.bool('is_main') });
  });
  return out;
}

export interface LeadExtras {
  /** `/leads/complex` with `_embedded.metadata`: an incoming lead (§5.5). */
  incoming?: boolean;
  /** `_embedded` keys this call handles itself (complex: contacts/companies/metadata). */
  embeddedKeys?: readonly string[];
}

export function readLead(ctx: Ctx, body: unknown, mode: Mode, errs: FieldError[], current?: KLead, extras: LeadExtras = {}): Plan | undefined {
  if (!isObject(body)) return void errs.push(E.type('', 'object'));
  const r = new BodyReader(body, '', errs, mode === 'update' ? [...LEAD_KEYS, 'id'] : LEAD_KEYS);
  // §5.4: PATCH `_embedded` carries tags only (links are changed through the link endpoints, §12).
  const embKeys = extras.embeddedKeys ?? (mode === 'create' ? ['tags', 'contacts', 'companies', 'source'] : ['tags']);
  const embObj = r.object('_embedded');
  const emb = embObj ? new BodyReader(embObj, '_embedded.', errs, embKeys) : undefined;
  const c = readCommon(ctx, 'leads', r, emb, mode);
  const price = r.int('price', { min: 0 });
  const closedAt = r.int('closed_at', { min: 0, nullable: true });
  const loss = r.int('loss_reason_id', { nullable: true });
  if (typeof loss === 'number' && !isLossReason(loss)) errs.push(E.choice('loss_reason_id')); // §12: one of the account's loss reasons
  const stage = readStage(ctx, r, current, !!extras.incoming);
  const contacts = emb && !extras.embeddedKeys ? readRefs(ctx, emb, 'contacts', 250) : undefined;
  const companies = emb && !extras.embeddedKeys ? readRefs(ctx, emb, 'companies', 1) : undefined;
  // The account has no sources (§12 sources API not emulated): a source reference cannot resolve.
  if (emb?.has('source')) errs.push(E.choice('_embedded.source'));
  if (errs.length || !stage) return undefined;

  return {
    // §5.5 says only that the lead "is merged into the existing one"; the emulator's merge writes what the
    // incoming lead carries (price, custom field values, tags) onto the existing lead, so a client that
    // causes a merge visibly changes an existing record.
    merge: (l: KLead) => {
      if (price !== undefined && price !== null) l.price = price;
      if (c.cf) l.custom_fields_values = mergeCustomFields(l.custom_fields_values, c.cf);
      for (const t of applyTags(ctx.state, 'leads', [], c.tags ?? undefined, c.add)) if (!l._embedded.tags.some((x) => x.id === t.id)) l._embedded.tags.push(t);
      l.updated_by = c.updatedBy ?? ctx.userId;
      l.updated_at = ctx.now;
    },
    apply: () => {
      const s = ctx.state;
      const by = c.updatedBy ?? ctx.userId;
      const closed = stage.status.id === 142 || stage.status.id === 143;
      if (!current) {
        const id = s.nextId.lead++;
        const responsible = c.responsible ?? ctx.userId;
        const created = c.createdAt ?? ctx.now;
        const links = (contacts ?? []).map((x, i) => ({ id: x.id, is_main: x.is_main ?? i === 0 }));
        const lead: KLead = {
          id,
          name: c.name ?? `Lead #${id}`,
          price: price ?? 0,
          responsible_user_id: responsible,
          group_id: s.users.get(responsible)?.rights.group_id ?? 0,
          status_id: stage.status.id,
          pipeline_id: stage.pipeline.id,
          loss_reason_id: loss ?? null,
          source_id: null,
          created_by: c.createdBy ?? ctx.userId,
          updated_by: by,
          created_at: created,
          updated_at: c.updatedAt ?? created,
          closed_at: closed ? (closedAt ?? ctx.now) : null,
          closest_task_at: null,
          is_deleted: false,
          custom_fields_values: mergeCustomFields(null, c.cf ?? []),
          score: null,
          account_id: s.account.id,
          is_price_modified_by_robot: false,
          _embedded: { tags: applyTags(s, 'leads', [], c.tags ?? undefined, c.add), contacts: links, companies: (companies ?? []).map((x) => ({ id: x.id })) },
        };
        s.leads.set(id, lead);
        recordEvent(s, 'lead_added', 'leads', id, lead.created_by, ctx.now);
        return id;
      }
      const l = current;
      const before = { id: l.status_id, pipeline_id: l.pipeline_id };
      if (c.name !== undefined) l.name = c.name;
      if (price !== undefined && price !== null) l.price = price;
      if (c.responsible !== undefined) {
        l.responsible_user_id = c.responsible;
        l.group_id = s.users.get(c.responsible)?.rights.group_id ?? 0;
      }
      if (c.createdBy !== undefined) l.created_by = c.createdBy;
      if (c.createdAt !== undefined) l.created_at = c.createdAt;
      const moved = stage.status.id !== l.status_id || stage.pipeline.id !== l.pipeline_id;
      l.status_id = stage.status.id;
      l.pipeline_id = stage.pipeline.id;
      if (closedAt !== undefined) l.closed_at = closedAt;
      else if (moved) l.closed_at = closed ? ctx.now : null;
      if (loss !== undefined) l.loss_reason_id = loss;
      if (c.cf) l.custom_fields_values = mergeCustomFields(l.custom_fields_values, c.cf);
      l._embedded.tags = applyTags(s, 'leads', l._embedded.tags, c.tags, c.add, c.del);
      l.updated_by = by;
      l.updated_at = c.updatedAt ?? ctx.now;
      if (moved)
        recordEvent(
          s,
          'lead_status_changed',
          'leads',
          l.id,
          by,
          ctx.now,
          [{ lead_status: { id: l.status_id, pipeline_id: l.pipeline_id } }],
          [{ lead_status: before }],
        );
      return l.id;
    },
  };
}

/** Contacts and companies share most of their model (§6). */
export function readParty(
  ctx: Ctx,
  entity: 'contacts' | 'companies',
  body: unknown,
  mode: Mode,
  errs: FieldError[],
  current?: KContact | KCompany,
  prefix = '',
): Plan | undefined {
  if (!isObject(body)) return void errs.push(E.type(prefix.replace(/\.$/, ''), 'object'));
  const keys = entity === 'contacts' ? CONTACT_KEYS : COMMON;
  const r = new BodyReader(body, prefix, errs, mode === 'update' ? [...keys, 'id'] : keys);
  const embObj = r.object('_embedded');
  const emb = embObj ? new BodyReader(embObj, `${prefix}_embedded.`, errs, entity === 'contacts' ? ['tags', 'companies'] : ['tags']) : undefined;
  const c = readCommon(ctx, entity, r, emb, mode);
  const first = entity === 'contacts' ? r.str('first_name') : undefined;
  const last = entity === 'contacts' ? r.str('last_name') : undefined;
  const company = emb && entity === 'contacts' ? readRefs(ctx, emb, 'companies', 1) : undefined;
  if (errs.length) return undefined;

  return {
    apply: () => {
      const s = ctx.state;
      const by = c.updatedBy ?? ctx.userId;
      const fullName = (f: string, l: string) => [f, l].filter(Boolean).join(' ');
      if (!current) {
        const responsible = c.responsible ?? ctx.userId;
        const created = c.createdAt ?? ctx.now;
        const base = {
          responsible_user_id: responsible,
          group_id: s.users.get(responsible)?.rights.group_id ?? 0,
          created_by: c.createdBy ?? ctx.userId,
          updated_by: by,
          created_at: created,
          updated_at: c.updatedAt ?? created,
          closest_task_at: null,
          custom_fields_values: mergeCustomFields(null, c.cf ?? []),
          account_id: s.account.id,
        };
        const tags = applyTags(s, entity, [], c.tags ?? undefined, c.add);
        if (entity === 'contacts') {
          const id = s.nextId.contact++;
          const rec: KContact = {
            id,
            name: c.name ?? fullName(first ?? '', last ?? ''),
            first_name: first ?? '',
            last_name: last ?? '',
            ...base,
            _embedded: { tags, companies: (company ?? []).map((x) => ({ id: x.id })) },
          };
          s.contacts.set(id, rec);
          recordEvent(s, 'contact_added', 'contacts', id, rec.created_by, ctx.now);
          return id;
        }
        const id = s.nextId.company++;
        s.companies.set(id, { id, name: c.name ?? '', ...base, _embedded: { tags } });
        recordEvent(s, 'company_added', 'companies', id, base.created_by, ctx.now);
        return id;
      }
      const rec = current;
      if (c.name !== undefined) rec.name = c.name;
      if ('first_name' in rec) {
        if (first !== undefined) rec.first_name = first;
        if (last !== undefined) rec.last_name = last;
        if (c.name === undefined && (first !== undefined || last !== undefined)) rec.name = fullName(rec.first_name, rec.last_name);
        if (company) rec._embedded.companies = company.map((x) => ({ id: x.id }));
      }
      if (c.responsible !== undefined) {
        rec.responsible_user_id = c.responsible;
        rec.group_id = s.users.get(c.responsible)?.rights.group_id ?? 0;
      }
      if (c.createdBy !== undefined) rec.created_by = c.createdBy;
      if (c.createdAt !== undefined) rec.created_at = c.createdAt;
      if (c.cf) rec.custom_fields_values = mergeCustomFields(rec.custom_fields_values, c.cf);
      rec._embedded.tags = applyTags(s, entity, rec._embedded.tags, c.tags, c.add, c.del);
      rec.updated_by = by;
      rec.updated_at = c.updatedAt ?? ctx.now;
      return rec.id;
    },
  };
}

// ---------------------------------------------------------------- links (§12)

/** What each entity can be linked to (Kommo "Links between entities": contact → companies, customers, list elements). */
const LINK_TARGETS: Record<string, readonly string[]> = {
  leads: ['contacts', 'companies', 'catalog_elements'],
  contacts: ['companies', 'customers', 'catalog_elements'],
  companies: ['contacts', 'leads', 'customers', 'catalog_elements'],
};

/**
 * `POST /api/v4/{entity}/{id}/link` (§12): a JSON array of `{to_entity_id, to_entity_type, metadata?}`; the
 * answer is the collection of links made (`_embedded.links`). Emulated: a contact linked to companies. A
 * contact has one company (§5.5 embeds at most one company per contact; a contact card holds one company:
 * the fact, UNVERIFIED in the fact sheet), so linking another company replaces the one it had.
 * A link type this emulator does not make answers 501, like the routes it does not emulate; a missing record
 * is 404 like a missing sub-resource (§11), a target that does not exist a `NotSupportedChoice` (§11).
 */
export function linkEntities(ctx: Ctx, entity: 'leads' | 'contacts' | 'companies', id: number): EmuResponse {
  const s = ctx.state;
  const items = arrayBody(ctx);
  const source = entity === 'contacts' ? s.contacts.get(id) : entity === 'leads' ? s.leads.get(id) : s.companies.get(id);
  if (!source) throw notFound(`${entity === 'contacts' ? 'Contact' : entity === 'leads' ? 'Lead' : 'Company'} not found`);
  const v = new Validation();
  const links: Array<{ to: number; metadata: Record<string, unknown> | null }> = [];
  items.forEach((item, i) => {
    const errs: FieldError[] = [];
    if (!isObject(item)) {
      v.add(String(i), [E.type('', 'object')]);
      return;
    }
    const r = new BodyReader(item, '', errs, ['to_entity_id', 'to_entity_type', 'metadata', 'request_id']);
    const to = r.int('to_entity_id');
    const type = r.str('to_entity_type');
    if (to === undefined && !r.has('to_entity_id')) errs.push(E.blank('to_entity_id'));
    if (type === undefined && !r.has('to_entity_type')) errs.push(E.blank('to_entity_type'));
    else if (type !== undefined && !LINK_TARGETS[entity]!.includes(type)) errs.push(E.choice('to_entity_type'));
    const meta = item.metadata;
    if (meta !== undefined && meta !== null && !isObject(meta)) errs.push(E.type('metadata', 'object'));
    if (!errs.length && (entity !== 'contacts' || type !== 'companies')) {
      throw new ApiError(
        problemResponse(501, {
          title: 'Not Implemented',
          type: 'https://httpstatus.es/501',
          status: 501,
          detail: `linking ${entity} to ${String(type)} exists on Kommo but is not emulated`,
        }),
      );
    }
    if (typeof to === 'number' && !s.companies.has(to)) errs.push(E.choice('to_entity_id'));
    v.add(requestIdOf(item, i), errs);
    if (!errs.length && typeof to === 'number') links.push({ to, metadata: isObject(meta) ? meta : null });
  });
  v.throwIfFailed();
  const contact = source as KContact;
  // One company per contact: the last one named wins, and replaces the link the contact had.
  const last = links.at(-1)!;
  contact._embedded.companies = [{ id: last.to }];
  contact.updated_by = ctx.userId;
  contact.updated_at = ctx.now;
  recordEvent(s, 'entity_linked', 'contacts', id, ctx.userId, ctx.now, [{ link: { entity: { id: last.to, type: 'company' } } }]);
  const out = links.map((l) => ({
    entity_id: id,
    entity_type: entity,
    to_entity_id: l.to,
    to_entity_type: 'companies',
    metadata: l.metadata ?? { updated_by: ctx.userId },
  }));
  return hal({ _total_items: out.length, _links: selfLink(ctx, `/api/v4/${entity}/${id}/link`), _embedded: { links: out } });
}
