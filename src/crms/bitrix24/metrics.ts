/**
 * The metrics `endpoint` label of a Bitrix24 request (contract.ts `metricsLabel`): the REST method name. The
 * webhook path with its secret is dropped, and only known methods become labels (anything else is `other`):
 * an unknown name could be (part of) a webhook secret, or one an agent chose for `bitrix_call`, which would
 * add a time series per call.
 */

/** Method names that become labels: the ones crm-mcp's tools call and the common CRM methods. */
const BITRIX_METHODS = new Set([
  'profile',
  'scope',
  'methods',
  'method.get',
  'app.info',
  'server.time',
  'batch',
  'user.current',
  'user.get',
  'user.search',
  'user.fields',
  'crm.duplicate.findbycomm',
  'crm.settings.mode.get',
  'crm.enum.ownertype',
  'crm.enum.fields',
  'crm.enum.activitytype',
  'crm.status.list',
  'crm.status.get',
  'crm.status.fields',
  'crm.status.entity.items',
  'crm.status.entity.types',
  'crm.category.list',
  'crm.category.get',
  'crm.dealcategory.list',
  'crm.dealcategory.get',
  'crm.dealcategory.stage.list',
  'crm.timeline.comment.add',
  'crm.timeline.comment.get',
  'crm.timeline.comment.list',
  'crm.timeline.comment.update',
  'crm.timeline.comment.delete',
  'crm.timeline.comment.fields',
  'crm.activity.todo.add',
  'tasks.task.add',
  'tasks.task.get',
  'tasks.task.list',
  'tasks.task.update',
  'tasks.task.delete',
  'tasks.task.getfields',
  'event.bind',
  'event.unbind',
  'event.get',
  'event.offline.get',
  'event.offline.list',
  'crm.deal.recurring.expose',
  'crm.entity.mergebatch',
  ...['lead', 'deal', 'contact', 'company', 'quote', 'activity', 'item', 'requisite', 'product'].flatMap((e) =>
    ['list', 'get', 'add', 'update', 'delete', 'fields', 'userfield.list', 'userfield.get', 'productrows.get', 'productrows.set'].map((op) => `crm.${e}.${op}`),
  ),
  ...['deal', 'lead', 'quote'].flatMap((e) => ['contact.items.get', 'contact.items.set', 'contact.add', 'contact.delete'].map((op) => `crm.${e}.${op}`)),
  ...['contact.company', 'company.contact'].flatMap((e) => ['items.get', 'items.set', 'add', 'delete'].map((op) => `crm.${e}.${op}`)),
]);

/** `…/rest/1/{secret}/crm.deal.list.json` → `crm.deal.list`; the HTTP method (always POST) does not change it. */
export function bitrixEndpoint(_method: string, path: string): string {
  // Drop `/rest/` and a webhook's `{user}/{secret}/`: what is left is the method name, or nothing.
  const method = path
    .replace(/^\/rest\/(\d+\/[^/]+\/)?/, '')
    .replace(/\.json$/i, '')
    .toLowerCase();
  return BITRIX_METHODS.has(method) ? method : 'other';
}
