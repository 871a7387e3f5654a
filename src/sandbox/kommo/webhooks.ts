/**
 * The account webhooks, sent for real (fact sheet §10.2): when the account's data changes, every registered
 * destination (§10.1) whose settings include the change's event gets a `POST` with
 * `application/x-www-form-urlencoded` PHP-bracket keys (`leads[status][0][old_status_id]=…`, `account[id]`,
 * `account[subdomain]`, `account[_links][self]`), User-Agent `amoCRM-WebHook-client/1.0`, several items per
 * delivery (every change one API request made, per destination). All values are strings; companies come as
 * `contacts[…]` with `type: company` (§10.2).
 *
 * Delivery rules (§10.2): an answer must come within **2 s** with HTTP 100–299, else the delivery failed; a
 * webhook is disabled when more than 100 deliveries failed in the last 2 hours and the latest one failed too.
 * Retries: the schedule for account webhooks was not captured (§10.2: "retries follow a schedule table (not
 * captured)"; events-calls-bulk-hosting.md 2.1 marks it [?]), so this emulator plays the strictest plausible
 * reading: **no retry**, a failed delivery is lost to the receiver (Digital-Pipeline webhooks, which do retry,
 * are not emulated).
 *
 * What changed is found by comparing a snapshot taken before a write request with the state after it, so every
 * write handler is covered without each of them knowing about webhooks.
 */
import { recordEvent } from './store.js';
import { unsortedOf } from './unsorted.js';
import type { EntityType, KommoState } from './types.js';

/** §10.2: the answer deadline and the disabling rule. */
export const WEBHOOK_TIMEOUT_MS = 2000;
const FAILURE_WINDOW_S = 2 * 60 * 60;
const MAX_FAILURES = 100;

interface RecSnap {
  updated_at: number;
  responsible_user_id: number;
  status_id?: number;
  pipeline_id?: number;
  is_deleted?: boolean;
}

export interface Snapshot {
  records: Record<EntityType | 'tasks', Map<number, RecSnap>>;
  notes: Record<EntityType, Set<number>>;
  unsorted: Set<string>;
}

/** One change as Kommo names it in a webhook: the setting (`status_lead`), the body's entity key and action, the item. */
export interface WebhookChange {
  setting: string;
  key: string;
  action: string;
  item: Record<string, unknown>;
}

export interface WebhookDeliveryRecord {
  webhook_id: number;
  destination: string;
  settings: string[];
  /** The receiver's status, or null when it did not answer within 2 s (or could not be reached). */
  status: number | null;
  ok: boolean;
  at: number;
}

const ENTITIES: ReadonlyArray<EntityType | 'tasks'> = ['leads', 'contacts', 'companies', 'tasks'];

export function snapshot(s: KommoState): Snapshot {
  const rec = (m: Map<number, { updated_at: number; responsible_user_id: number }>) => {
    const out = new Map<number, RecSnap>();
    for (const [id, r] of m) {
      const l = r as Partial<{ status_id: number; pipeline_id: number; is_deleted: boolean }>;
      out.set(id, {
        updated_at: r.updated_at,
        responsible_user_id: r.responsible_user_id,
        status_id: l.status_id,
        pipeline_id: l.pipeline_id,
        is_deleted: l.is_deleted,
      });
    }
    return out;
  };
  return {
    records: { leads: rec(s.leads), contacts: rec(s.contacts), companies: rec(s.companies), tasks: rec(s.tasks) },
    notes: { leads: new Set(s.notes.leads.keys()), contacts: new Set(s.notes.contacts.keys()), companies: new Set(s.notes.companies.keys()) },
    unsorted: new Set(unsortedOf(s).keys()),
  };
}

const SINGULAR: Record<EntityType | 'tasks', string> = { leads: 'lead', contacts: 'contact', companies: 'company', tasks: 'task' };
/** §10.2: the body's key per entity (companies travel as contacts). */
const KEY: Record<EntityType | 'tasks', string> = { leads: 'leads', contacts: 'contacts', companies: 'contacts', tasks: 'task' };

function itemOf(s: KommoState, entity: EntityType | 'tasks', id: number): Record<string, unknown> {
  const r = (entity === 'tasks' ? s.tasks.get(id) : entity === 'leads' ? s.leads.get(id) : entity === 'contacts' ? s.contacts.get(id) : s.companies.get(id)) as
    Record<string, unknown> | undefined;
  if (!r) return { id };
  const out: Record<string, unknown> = {
    id,
    responsible_user_id: r.responsible_user_id,
    date_create: r.created_at,
    created_at: r.created_at,
    updated_at: r.updated_at,
    last_modified: r.updated_at,
    created_user_id: r.created_by,
    modified_user_id: r.updated_by,
    account_id: r.account_id,
  };
  if (entity === 'tasks') {
    // amoCRM's element types in task webhooks: 1 contact, 2 lead, 3 company.
    const t = r as {
      entity_type: EntityType | null;
      entity_id: number | null;
      text: string;
      complete_till: number;
      is_completed: boolean;
      task_type_id: number;
    };
    Object.assign(out, {
      element_id: t.entity_id ?? 0,
      element_type: t.entity_type === 'contacts' ? 1 : t.entity_type === 'leads' ? 2 : t.entity_type === 'companies' ? 3 : 0,
      text: t.text,
      complete_till: t.complete_till,
      status: t.is_completed ? 1 : 0,
      task_type: t.task_type_id,
    });
  } else {
    out.name = r.name;
    if (entity === 'leads') Object.assign(out, { status_id: r.status_id, pipeline_id: r.pipeline_id, price: r.price });
    if (entity !== 'leads') out.type = entity === 'companies' ? 'company' : 'contact';
  }
  return out;
}

/** What changed between the snapshot and the state now; also records the responsible changes in the event log (§9). */
export function changesSince(s: KommoState, before: Snapshot, by: number, now: number): WebhookChange[] {
  const out: WebhookChange[] = [];
  const push = (setting: string, entity: EntityType | 'tasks', action: string, item: Record<string, unknown>) =>
    out.push({ setting: `${setting}_${SINGULAR[entity]}`, key: KEY[entity], action, item });
  const after = snapshot(s);
  for (const entity of ENTITIES) {
    const was = before.records[entity];
    const nowMap = after.records[entity];
    for (const [id, cur] of nowMap) {
      const old = was.get(id);
      const item = itemOf(s, entity, id);
      if (!old) {
        push('add', entity, 'add', item);
        continue;
      }
      if (cur.is_deleted && !old.is_deleted) {
        push('delete', entity, 'delete', { id, status_id: cur.status_id, pipeline_id: cur.pipeline_id });
        continue;
      }
      if (!cur.is_deleted && old.is_deleted) push('restore', entity, 'restore', item);
      if (entity === 'leads' && (cur.status_id !== old.status_id || cur.pipeline_id !== old.pipeline_id))
        push('status', entity, 'status', { ...item, old_status_id: old.status_id, old_pipeline_id: old.pipeline_id });
      if (cur.responsible_user_id !== old.responsible_user_id) {
        push('responsible', entity, 'responsible', { ...item, old_responsible_user_id: old.responsible_user_id });
        if (entity !== 'tasks')
          recordEvent(
            s,
            'entity_responsible_changed',
            entity,
            id,
            by,
            now,
            [{ responsible_user: { id: cur.responsible_user_id } }],
            [{ responsible_user: { id: old.responsible_user_id } }],
          );
      }
      if (cur.updated_at !== old.updated_at || cur.responsible_user_id !== old.responsible_user_id || cur.status_id !== old.status_id)
        push('update', entity, 'update', item);
    }
    for (const [id, old] of was) {
      if (!nowMap.has(id)) push('delete', entity, 'delete', { id, ...(entity === 'leads' ? { status_id: old.status_id, pipeline_id: old.pipeline_id } : {}) });
    }
  }
  for (const entity of ['leads', 'contacts', 'companies'] as const) {
    for (const [id, n] of s.notes[entity]) {
      if (before.notes[entity].has(id)) continue;
      const note = {
        id,
        element_id: n.entity_id,
        element_type: entity === 'contacts' ? 1 : entity === 'leads' ? 2 : 3,
        note_type: n.note_type,
        text: typeof n.params.text === 'string' ? n.params.text : '',
        created_by: n.created_by,
        date_create: n.created_at,
      };
      out.push({
        setting: `note_${SINGULAR[entity]}`,
        key: KEY[entity],
        action: 'note',
        item: { note, ...(entity === 'companies' ? { type: 'company' } : {}) },
      });
    }
  }
  const pending = unsortedOf(s);
  for (const [uid, u] of pending) {
    if (!before.unsorted.has(uid))
      out.push({
        setting: 'add_unsorted',
        key: 'unsorted',
        action: 'add',
        item: { uid, category: u.category, pipeline_id: u.pipeline_id, lead_id: u.lead_id, created_at: u.created_at },
      });
  }
  for (const uid of before.unsorted) {
    if (!pending.has(uid)) out.push({ setting: 'delete_unsorted', key: 'unsorted', action: 'delete', item: { uid } });
  }
  return out;
}

/** PHP's http_build_query: nested keys in brackets, every value a string. */
export function phpForm(v: unknown, prefix = '', out: string[] = []): string[] {
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) phpForm(x, prefix ? `${prefix}[${k}]` : k, out);
  } else if (prefix) {
    out.push(
      `${encodeURIComponent(prefix)}=${encodeURIComponent(v === null || v === undefined ? '' : typeof v === 'boolean' ? (v ? '1' : '0') : String(v as string | number))}`,
    );
  }
  return out;
}

export class WebhookSender {
  readonly deliveries: WebhookDeliveryRecord[] = [];
  private readonly failures = new Map<number, number[]>();
  private readonly chains = new Map<number, Promise<void>>();
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly state: KommoState,
    private readonly origin: () => string,
    private readonly now: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /** One delivery per destination with every change its settings ask for; in order per destination. */
  send(changes: readonly WebhookChange[]): void {
    if (!changes.length) return;
    for (const w of this.state.webhooks.values()) {
      if (w.disabled) continue;
      const mine = changes.filter((c) => w.settings.includes(c.setting));
      if (!mine.length) continue;
      const body: Record<string, Record<string, unknown[]>> = {};
      for (const c of mine) ((body[c.key] ??= {})[c.action] ??= []).push(c.item);
      const a = this.state.account;
      const form = phpForm({ ...body, account: { subdomain: a.subdomain, id: a.id, _links: { self: this.origin() } } }).join('&');
      const prev = this.chains.get(w.id) ?? Promise.resolve();
      const run = prev.then(() => this.deliver(w.id, w.destination, form, [...new Set(mine.map((c) => c.setting))]));
      this.chains.set(w.id, run);
      this.inflight.add(run);
      void run.finally(() => this.inflight.delete(run));
    }
  }

  private async deliver(id: number, destination: string, form: string, settings: string[]): Promise<void> {
    let status: number | null = null;
    try {
      const res = await fetch(destination, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'amoCRM-WebHook-client/1.0' },
        body: form,
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
    } catch {
      status = null;
    }
    const ok = status !== null && status >= 100 && status <= 299;
    const at = this.now();
    this.deliveries.push({ webhook_id: id, destination, settings, status, ok, at });
    if (ok) return;
    const recent = (this.failures.get(id) ?? []).filter((t) => t > at - FAILURE_WINDOW_S);
    recent.push(at);
    this.failures.set(id, recent);
    const w = this.state.webhooks.get(id);
    if (w && recent.length > MAX_FAILURES) w.disabled = true;
  }

  /** Resolves when every delivery started so far has been answered (or timed out). */
  async idle(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
  }
}
