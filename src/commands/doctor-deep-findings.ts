/**
 * The general findings of `doctor --deep` (doctor-deep.ts): the assumptions crm-mcp makes whatever the CRM,
 * whether they hold on the account probed, and what crm-mcp does about it; each CRM words its own part
 * (doctor-types.ts `DeepProbe`). Pure functions over the probe's counts: ids and counts only.
 */
import {
  counted,
  formatLabel,
  FORMATS,
  verdict,
  type DeepLists,
  type DeepProbe,
  type Finding,
  type FormatCount,
  type FormatName,
  type ListCount,
} from '../crms/doctor-types.js';

export { FORMATS, type BudgetRow, type DeepLists, type Finding, type FormatCount, type FormatName, type ListCount } from '../crms/doctor-types.js';

/** What crm-mcp's duplicate check found for each way a user types the number. */
export function duplicateFindings(mine: Partial<Record<FormatName, FormatCount>>): Finding[] {
  return FORMATS.map((f) => {
    const holds = verdict(mine[f]);
    return {
      id: `phone.duplicate_check.${f}`,
      assumption: `crm-mcp's duplicate check finds an existing contact by a phone typed ${formatLabel(f)}`,
      holds,
      detail: counted(mine[f]),
      action:
        holds === false
          ? 'please report this with the phone shapes above: create_contact/create_lead could make a duplicate of a contact stored this way'
          : 'none needed',
    };
  });
}

export function listFindings(wording: DeepProbe['listWording'], lists: DeepLists): Finding[] {
  const pages = (c: ListCount) => (c.pages !== null ? ` in ${c.pages} page${c.pages === 1 ? '' : 's'}` : '');
  const of = (c: ListCount, what: string) =>
    c.read === null ? `could not list ${what}` : `${c.read}${c.total !== null ? ` of ${c.total}` : ''} ${what} read${pages(c)}`;
  const holds = (...cs: ListCount[]) => (cs.some((c) => c.read === null) ? null : cs.every((c) => c.total === null || c.read === c.total));
  const u = lists.users;
  const out: Finding[] = [
    {
      id: 'paging.users',
      assumption: wording.users,
      holds: holds(u),
      detail: `${of(u, 'users')}${u.read !== null && u.read > 50 ? ' (more than one page of 50)' : ''}`,
      action:
        holds(u) === false
          ? 'please report it: crm-mcp would show ids without names for the users it missed, and refuse them as responsible users'
          : 'users are paged to the end and cached with the other metadata',
    },
  ];
  const lf = lists.lead_fields;
  const cf = lists.contact_fields;
  out.push({
    id: 'paging.custom_fields',
    assumption: wording.customFields,
    holds: holds(lf, cf),
    detail: `${of(lf, wording.leadFields)}; ${of(cf, wording.contactFields)}`,
    action:
      holds(lf, cf) === false
        ? 'please report it: custom fields crm-mcp missed cannot be read or written by name'
        : 'field lists are paged until `_links.next` ends, not until a short page',
  });
  return out;
}

export function rateFinding(rate: DeepProbe['rate'], throttled: number): Finding {
  return {
    id: 'rate_limit',
    assumption: rate.assumption,
    holds: throttled === 0,
    detail:
      throttled === 0 ? 'no request was throttled during the probe' : `${throttled} request${throttled === 1 ? ' was' : 's were'} throttled during the probe`,
    action: throttled === 0 ? 'none needed' : rate.whenThrottled,
  };
}
