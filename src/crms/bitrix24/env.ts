/**
 * The Bitrix24 rows of the environment table (src/config/env-table.ts): the connection's settings and
 * `crm-mcp auth bitrix24`'s loopback address. Data only; the module gives them to the registry.
 */
import { byName, type EnvVar } from '../../config/env-types.js';

export const BITRIX24_VARS = [
  {
    name: 'BITRIX_WEBHOOK_BASE',
    aliases: ['BITRIX24_WEBHOOK_URL'],
    type: 'url',
    secret: true,
    secretPart: 'webhook-secret',
    description: 'inbound webhook `https://{portal}/rest/{user_id}/{secret}/` (the secret is a credential)',
    fileKey: 'webhook_url',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
    hint: 'Copy the inbound webhook URL from Bitrix24 → Developer resources → Other → Inbound webhook; it looks like https://yourportal.bitrix24.com/rest/1/xxxxxxxx/.',
  },
  {
    name: 'BITRIX_CLIENT_ID',
    type: 'string',
    secret: false,
    description: 'OAuth app `client_id`, instead of a webhook (1 h access tokens, rotating refresh token)',
    fileKey: 'client_id',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_CLIENT_SECRET',
    type: 'string',
    secret: true,
    description: 'OAuth app `client_secret`',
    fileKey: 'client_secret',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_PORTAL',
    type: 'string',
    secret: false,
    description: 'OAuth: the portal address (`yourportal.bitrix24.com` or `https://…`)',
    fileKey: 'portal',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
    hint: "Set BITRIX_PORTAL to your portal's address, e.g. yourportal.bitrix24.com (https:// is assumed).",
  },
  {
    name: 'BITRIX_REFRESH_TOKEN',
    type: 'string',
    secret: true,
    description: 'OAuth refresh token to start the rotating chain from',
    fileKey: 'refresh_token',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_OAUTH_SERVER',
    type: 'url',
    secret: false,
    description: "OAuth token server for refreshes and `crm-mcp auth bitrix24` (an emulator's, in tests)",
    // Applied by the Bitrix24 token client (crms/bitrix24/auth.ts), not by the parser.
    defaultDoc: '`https://oauth.bitrix.info`',
    fileKey: 'oauth_server',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_PLAN',
    type: 'enum',
    choices: ['standard', 'enterprise'],
    default: 'standard',
    secret: false,
    description: 'rate-limit profile: `standard` (burst 50, 2/s) or `enterprise` (burst 250, 5/s)',
    fileKey: 'plan',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_OUTBOUND_TOKEN',
    type: 'string',
    secret: true,
    description: '`application_token` that outbound events must carry',
    fileKey: 'outbound_token',
    group: 'bitrix24',
    scope: 'connection',
    readBy: 'server',
  },
  {
    name: 'BITRIX_REDIRECT_URI',
    type: 'url',
    secret: false,
    description: '`crm-mcp auth bitrix24`: the loopback address (`http://127.0.0.1:PORT/…`) the portal sends you back to',
    group: 'bitrix24',
    scope: 'global',
    readBy: 'auth',
  },
] as const satisfies readonly EnvVar[];

/** The rows by canonical name, typed: `BITRIX24_ENV.BITRIX_WEBHOOK_BASE`. */
export const BITRIX24_ENV = byName(BITRIX24_VARS);
