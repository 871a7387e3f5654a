/** Registers a connection's credentials with the redactor (config loading and the providers both call it). */
import type { Connection } from './config.js';
import { registerSecret } from '../util/redact.js';

export function registerConnectionSecrets(c: Connection): void {
  if (c.provider === 'kommo') {
    registerSecret(c.accessToken);
    registerSecret(c.oauth?.clientSecret);
    registerSecret(c.oauth?.refreshToken);
    registerSecret(c.oauth?.authCode);
  } else {
    if (c.webhookUrl) registerSecret(/\/rest\/\d+\/([^/]+)\//.exec(c.webhookUrl)?.[1]);
    registerSecret(c.oauth?.clientSecret);
    registerSecret(c.oauth?.refreshToken);
    registerSecret(c.outboundToken);
  }
}
