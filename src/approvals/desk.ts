/**
 * The approval desk: the records of writes waiting for a person, kept in the configured store (the file, or
 * Redis shared by every instance), and the only place their state changes. A record goes pending → approved
 * → used, or pending → declined; each change happens under the record's store lock (across processes for
 * the file and Redis stores), and a use is written before the write runs, so an approval runs at most once
 * even when two repeats race. The HMAC key is a random secret created once in the store and never logged.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { CrmError, type ErrorCode } from '../domain/errors.js';
import type { PlannedRequest } from '../domain/records.js';
import type { Store } from '../store/store.js';
import { formatId, macOf, newNonce, parseId, sameMac } from './ids.js';
import type { ApprovalSettings } from './settings.js';

/** How a person answered: a terminal (`crm-mcp approve`), the HTTP page, or the MCP client's own question. */
export type ApprovalVia = 'terminal' | 'http-page' | 'client';

export interface ApprovalRecord {
  nonce: string;
  id: string;
  principal: string;
  digest: string;
  tool: string;
  connection: string;
  effect: string;
  target: Record<string, unknown>;
  /** The plan in plain words. */
  summary: string;
  /** The exact requests the dry run planned (empty when the tool had nothing to plan). */
  requests: PlannedRequest[];
  /** Who is asked: the MCP client (elicitation) or the operator (terminal, HTTP page). */
  channel: 'client' | 'operator';
  status: 'pending' | 'approved' | 'declined' | 'used';
  created: number;
  expires: number;
  decided?: { by: string; via: ApprovalVia; at: number };
  usedAt?: number;
}

export type NewApproval = Pick<ApprovalRecord, 'principal' | 'digest' | 'tool' | 'connection' | 'effect' | 'target' | 'summary' | 'requests' | 'channel'>;

const KEY = 'approvals:key';
const INDEX = 'approvals:index';
const recordKey = (nonce: string) => `approvals:rec:${nonce}`;
/** Records outlive their expiry by this much, so a late repeat hears "expired" or "used" rather than "unknown". */
const KEEP_AFTER_EXPIRY_MS = 60 * 60 * 1000;
const LOCK_MS = 5000;

export function approvalError(code: ErrorCode, message: string, details?: unknown): CrmError {
  return new CrmError({ code, message, retryable: false, details });
}

export class ApprovalDesk {
  private key?: Promise<Buffer>;
  private readonly now: () => number;

  constructor(
    readonly store: Store,
    readonly settings: ApprovalSettings,
    o: { now?: () => number } = {},
  ) {
    this.now = o.now ?? Date.now;
  }

  /** The HMAC secret: read from the store, or created there once (under a lock, so instances agree). */
  secret(): Promise<Buffer> {
    this.key ??= (async () => {
      const read = async () => {
        const k = await this.store.get<string>(KEY);
        return k ? Buffer.from(k, 'base64') : undefined;
      };
      const have = await read();
      if (have) return have;
      return this.store.withLock(KEY, LOCK_MS, async () => {
        const again = await read();
        if (again) return again;
        const fresh = randomBytes(32);
        await this.store.set(KEY, fresh.toString('base64'));
        return fresh;
      });
    })().catch((e: unknown) => {
      this.key = undefined;
      throw e;
    });
    return this.key;
  }

  /** A key for another purpose (the request-state codec), derived so one secret never serves two MACs. */
  async derivedKey(purpose: string): Promise<Buffer> {
    return createHmac('sha256', await this.secret())
      .update(`crm-mcp.${purpose}`)
      .digest();
  }

  async create(a: NewApproval): Promise<ApprovalRecord> {
    const key = await this.secret();
    const nonce = newNonce();
    const created = this.now();
    const expires = created + this.settings.ttlMs;
    const rec: ApprovalRecord = { ...a, nonce, id: formatId(nonce, macOf(key, nonce, a.principal, a.digest, expires)), status: 'pending', created, expires };
    await this.store.set(recordKey(nonce), rec, this.settings.ttlMs + KEEP_AFTER_EXPIRY_MS);
    await this.store.withLock(INDEX, LOCK_MS, async () => {
      const now = this.now();
      const index = (await this.store.get<Array<[string, number]>>(INDEX)) ?? [];
      const kept = index.filter(([, exp]) => exp + KEEP_AFTER_EXPIRY_MS > now);
      kept.push([nonce, expires]);
      await this.store.set(INDEX, kept);
    });
    return rec;
  }

  /** A record by its id or its nonce (what a person types); undefined when unknown or the MAC is not its own. */
  async get(idOrNonce: string): Promise<ApprovalRecord | undefined> {
    const parsed = parseId(idOrNonce);
    const nonce = parsed?.nonce ?? idOrNonce.trim();
    if (!/^[A-Za-z0-9_-]{12}$/.test(nonce)) return undefined;
    const rec = await this.store.get<ApprovalRecord>(recordKey(nonce));
    if (!rec || (parsed && !sameMac(parsed.mac, parseId(rec.id)!.mac))) return undefined;
    return rec;
  }

  /** Writes waiting for the operator (terminal, HTTP page), oldest first. */
  async pending(): Promise<ApprovalRecord[]> {
    const index = (await this.store.get<Array<[string, number]>>(INDEX)) ?? [];
    const now = this.now();
    const out: ApprovalRecord[] = [];
    for (const [nonce, exp] of index) {
      if (exp <= now) continue;
      const rec = await this.store.get<ApprovalRecord>(recordKey(nonce));
      if (rec && rec.status === 'pending' && rec.channel === 'operator') out.push(rec);
    }
    return out;
  }

  /** Runs `fn` on the current record under its lock and stores what it returns. */
  private change(nonce: string, fn: (rec: ApprovalRecord | undefined) => ApprovalRecord): Promise<ApprovalRecord> {
    return this.store.withLock(`approvals:${nonce}`, LOCK_MS, async () => {
      const next = fn(await this.store.get<ApprovalRecord>(recordKey(nonce)));
      await this.store.set(recordKey(nonce), next, Math.max(next.expires - this.now(), 0) + KEEP_AFTER_EXPIRY_MS);
      return next;
    });
  }

  /** A person's decision from the operator's channels (terminal, HTTP page). */
  async decide(idOrNonce: string, approve: boolean, who: { by: string; via: ApprovalVia }): Promise<ApprovalRecord> {
    const found = await this.get(idOrNonce);
    if (!found) throw approvalError('approval_invalid', 'No such approval id (it may have been mistyped, or expired more than an hour ago).');
    if (found.channel !== 'operator') throw approvalError('approval_invalid', 'This write is being asked through the MCP client; answer it there.');
    return this.change(found.nonce, (rec) => {
      if (!rec) throw approvalError('approval_invalid', 'No such approval id.');
      if (rec.status !== 'pending')
        throw approvalError(rec.status === 'used' ? 'approval_used' : 'approval_invalid', `This approval was already ${rec.status}.`);
      if (rec.expires <= this.now()) throw approvalError('approval_expired', 'This approval id has expired; the agent must ask again.');
      return { ...rec, status: approve ? 'approved' : 'declined', decided: { ...who, at: this.now() } };
    });
  }

  /**
   * The repeat of an approved call: checks the id against this call (principal and arguments) and marks it
   * used before returning, so the caller runs the write at most once. Throws the reason it may not run.
   */
  async consume(id: string, principal: string, digest: string): Promise<ApprovalRecord> {
    const parsed = parseId(id);
    const unknown = () =>
      approvalError(
        'approval_invalid',
        'This approval id is not one this server issued. Only a person can approve a write: repeat the call without approval_id to ask again.',
      );
    if (!parsed) throw unknown();
    const key = await this.secret();
    return this.change(parsed.nonce, (rec) => {
      if (!rec) throw unknown();
      if (!sameMac(parsed.mac, macOf(key, rec.nonce, principal, digest, rec.expires))) {
        // A genuine id (its MAC is the record's) used for another call, or an altered one.
        if (!sameMac(parsed.mac, parseId(rec.id)!.mac)) throw unknown();
        throw approvalError(
          'approval_mismatch',
          'This approval id was issued for other arguments (or another client). Repeat exactly the call that was approved, with the same arguments.',
        );
      }
      if (rec.status === 'used')
        throw approvalError('approval_used', 'This approval was already used: an approval runs its write once. Ask again for another write.');
      if (rec.status === 'declined') throw approvalError('approval_declined', 'A person declined this write; it was not sent.');
      if (rec.expires <= this.now())
        throw approvalError('approval_expired', 'This approval id has expired; the write was not sent. Repeat the call without approval_id to ask again.');
      if (rec.status !== 'approved' || rec.channel !== 'operator')
        throw approvalError('approval_pending', 'Nobody has approved this write yet. Wait for the person, then repeat the call with the same approval_id.', {
          approval_id: rec.id,
        });
      return { ...rec, status: 'used', usedAt: this.now() };
    });
  }

  /**
   * The client's answer to the question it showed (elicitation): accepted → used at once (the write runs now),
   * anything else → declined. Refuses a record that is not a pending client question for this call.
   */
  async answer(nonce: string, principal: string, digest: string, accepted: boolean, by: string): Promise<ApprovalRecord> {
    return this.change(nonce, (rec) => {
      if (!rec || rec.channel !== 'client' || rec.principal !== principal)
        throw approvalError('approval_invalid', 'This answer does not belong to a question this server asked.');
      if (rec.digest !== digest) throw approvalError('approval_mismatch', 'The answered question was about other arguments; nothing was sent.');
      if (rec.status !== 'pending')
        throw approvalError(rec.status === 'used' ? 'approval_used' : 'approval_declined', `This question was already answered (${rec.status}).`);
      if (rec.expires <= this.now()) throw approvalError('approval_expired', 'The question expired before it was answered; nothing was sent.');
      const decided = { by, via: 'client' as const, at: this.now() };
      return accepted ? { ...rec, status: 'used', decided, usedAt: this.now() } : { ...rec, status: 'declined', decided };
    });
  }
}
