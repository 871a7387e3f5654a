/**
 * Input checks both CRMs make, in the same words: one function each, so a message is changed once and an
 * agent reads the same advice whichever CRM answers. Pure (no I/O): providers call them before any write.
 */
import { validationError } from './errors.js';
import { toolRef } from './tool-hints.js';
import { looksLikeEmail, normalizePhone, type NormalizedPhone } from '../util/phone.js';

/** An email given to a create (`email`, `contact.email`): only checked, sent as typed (trimmed). */
export function checkEmail(field: string, email: string | undefined): void {
  if (email && !looksLikeEmail(email)) throw validationError(`${field}: "${email}" is not an email address.`);
}

/** A phone given to a create, read in the account's country; undefined when none was given. */
export function checkPhone(field: string, phone: string | undefined, country: string | undefined): NormalizedPhone | undefined {
  if (!phone) return undefined;
  const n = normalizePhone(phone, country);
  if (!n) throw validationError(`${field}: "${phone}" is not a phone number (include the country code).`);
  return n;
}

/** A search needs something to search by. */
export function requireSearchKey(q: { email?: string; phone?: string }): void {
  if (!q.email && !q.phone) throw validationError('Give `email` and/or `phone` to search by.');
}

/** A searched email that is no email (the search would find nothing, or everything). */
export function checkSearchEmail(email: string | undefined): void {
  if (email && !looksLikeEmail(email)) throw validationError(`email: "${email}" is not an email address.`);
}

/** A searched phone that neither parses nor has enough digits to be one. */
export function badSearchPhone(phone: string): never {
  throw validationError(`phone: "${phone}" is not a phone number (include the country code, e.g. +7 912 345-67-89).`);
}

/** A task's link: both halves or neither. */
export function checkTaskTarget(input: { entity?: unknown; entity_id?: unknown }): void {
  if ((input.entity === undefined) !== (input.entity_id === undefined)) throw validationError('Give both entity and entity_id, or neither.');
}

/** A contact needs a name (the full name from first/last or `name`). */
export function requirePersonName(full: string | undefined): string {
  if (!full) throw validationError('Give first_name/last_name or name.');
  return full;
}

/** A lead's title: the one given, else the contact's (the tools promise that default). */
export function requireLeadName(name: string | undefined): string {
  if (!name) throw validationError('name: give the lead a name (or a contact to name it after).');
  return name;
}

/** An update that would change nothing is refused rather than sent. */
export function requireChanges(body: object): void {
  if (Object.keys(body).length === 0) throw validationError('Nothing to update: give at least one field to change.');
}

/** A note's text, trimmed; never empty. */
export function noteText(text: string): string {
  const t = text.trim();
  if (!t) throw validationError('text: the note is empty.');
  return t;
}

/** A task's text, trimmed; never empty. */
export function taskText(text: string): string {
  const t = text.trim();
  if (!t) throw validationError('text: the task text is empty.');
  return t;
}

/** A phone to add to a contact, as E.164. */
export function phoneToAdd(phone: string, country: string | undefined): string {
  const n = normalizePhone(phone, country);
  if (!n) throw validationError(`phones_to_add: "${phone}" is not a phone number.`);
  return n.e164;
}

/** An email to add to a contact, trimmed. */
export function emailToAdd(email: string): string {
  if (!looksLikeEmail(email)) throw validationError(`emails_to_add: "${email}" is not an email address.`);
  return email.trim();
}

/** A phone or email asked to be removed that the contact does not have. */
export function notOnContact(kind: 'PHONE' | 'EMAIL', value: string, id: number): never {
  throw validationError(`${kind === 'PHONE' ? 'phones' : 'emails'}_to_remove: ${value} is not on contact ${id}.`);
}

/** A responsible user id the account does not have (checked only when the user list could be read). */
export function unknownUser(id: number): never {
  throw validationError(`responsible_user_id: no user ${id}. The valid ids are listed by ${toolRef('list_users')}.`);
}
