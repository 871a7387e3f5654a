/**
 * The metrics `endpoint` label of a Kommo request (contract.ts `metricsLabel`): the path template with ids
 * replaced by `:id`. Only known API v4 resources become labels (anything else is `other`), and only known
 * words after them (any other word is `:other`): an agent chooses the path of `kommo_request`, and every new
 * label value is a new time series for Prometheus to keep.
 */

/**
 * Kommo API v4 resources (developers.kommo.com → API reference; /work/shared/research/kommo-api.md): the
 * top-level ones, and the words that may follow a resource or an id. Any other word is shown as `:other`.
 */
const KOMMO_RESOURCES = new Set([
  'account',
  'leads',
  'contacts',
  'companies',
  'customers',
  'catalogs',
  'tasks',
  'events',
  'users',
  'roles',
  'webhooks',
  'widgets',
  'calls',
  'sources',
  'talks',
  'chats',
  'short_links',
  'salesbot',
  'products',
]);
const KOMMO_SUBRESOURCES = new Set([
  'notes',
  'tags',
  'custom_fields',
  'groups',
  'links',
  'link',
  'unlink',
  'complex',
  'pipelines',
  'statuses',
  'loss_reasons',
  'unsorted',
  'forms',
  'sip',
  'accept',
  'decline',
  'summary',
  'elements',
  'segments',
  'transactions',
  'bonus_points',
  'types',
  'templates',
  'close',
  'run',
  'subscriptions',
  'watch',
]);

/** `/api/v4/leads/123/notes` → `/api/v4/leads/:id/notes`; the HTTP method does not change the label. */
export function kommoEndpoint(_method: string, path: string): string {
  const parts = path.split('/').filter(Boolean);
  if (parts[0] !== 'api' || parts[1] !== 'v4' || !KOMMO_RESOURCES.has(parts[2] ?? '')) return 'other';
  const tail = parts.slice(3, 8).map((seg) => (KOMMO_SUBRESOURCES.has(seg) ? seg : /^[a-z_]+$/.test(seg) ? ':other' : ':id'));
  return `/${['api', 'v4', parts[2]!, ...tail].join('/')}${parts.length > 8 ? '/…' : ''}`;
}
