/**
 * Bitrix24 error bodies (fact sheet §3, §6): `{error, error_description}` with the documented HTTP status.
 * CRM compat methods use an empty code and HTTP 400.
 */

export class BxError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string,
  ) {
    super(`${code || '(empty code)'}: ${description}`);
    this.name = 'BxError';
  }

  body(): { error: string; error_description: string } {
    return { error: this.code, error_description: this.description };
  }
}

/** Code used for requests the emulator does not understand: it refuses loudly instead of guessing. */
export const EMULATOR_UNSUPPORTED = 'EMULATOR_UNSUPPORTED';

export const errors = {
  // §1.1, §6: unknown method.
  methodNotFound: () => new BxError(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!'),
  // §2.1, §6: wrong or absent webhook code / token.
  noAuth: () => new BxError(401, 'NO_AUTH_FOUND', 'Wrong authorization data'),
  // §2.2, §6.
  expiredToken: () => new BxError(401, 'expired_token', 'The access token provided has expired'),
  // §5, §6; fixture error.QUERY_LIMIT_EXCEEDED.json.
  queryLimit: () => new BxError(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests'),
  // §5, §6; fixture error.OPERATION_TIME_LIMIT.batch.json.
  operationTimeLimit: () => new BxError(429, 'OPERATION_TIME_LIMIT', 'Method is blocked due to operation time limit.'),
  // §4.2, §6.
  batchMethodNotAllowed: () => new BxError(405, 'ERROR_BATCH_METHOD_NOT_ALLOWED', 'Method is not allowed for batch usage'),
  batchLengthExceeded: () => new BxError(400, 'ERROR_BATCH_LENGTH_EXCEEDED', 'Max batch length exceeded'),
  // §2.1, §6 (inside a batch the description is empty).
  insufficientScope: (inBatch = false) =>
    new BxError(403, 'insufficient_scope', inBatch ? '' : 'The request requires higher privileges than provided by the webhook token'),
  // §2.2, §6: a method that needs application (OAuth) context.
  wrongAuthType: () => new BxError(403, 'WRONG_AUTH_TYPE', 'Current authorization type is denied for this method'),
  // §2.3: app.info without app/webhook context (docs show HTTP 400).
  accessDenied: (text: string) => new BxError(403, 'ACCESS_DENIED', text),
  // §6: CRM compat errors carry an empty code and HTTP 400.
  crm: (text: string) => new BxError(400, '', text),
  notFound: () => new BxError(400, '', 'Not found'),
  badId: () => new BxError(400, '', 'ID is not defined or invalid.'),
  mustBeArray: (name: string) => new BxError(400, '', `Parameter '${name}' must be array.`),
  // §6: generic list helpers.
  argument: (text: string) => new BxError(400, 'ERROR_ARGUMENT', text),
  // Not a Bitrix24 error: the emulator refuses what it does not emulate.
  unsupported: (text: string, status = 400) => new BxError(status, EMULATOR_UNSUPPORTED, text),
};
