/**
 * Response builders: Kommo's success and error bodies (fact sheet §1, §4, §11). Error bodies are the exact
 * fixture texts where the fact sheet gives one; handlers throw `ApiError` and the router turns it into a
 * response.
 */
import { randomBytes } from 'node:crypto';
import type { EmuResponse } from '../harness.js';

export const HAL = 'application/hal+json';
export const PROBLEM = 'application/problem+json';

/** §1: every response carries an X-Request-Id. */
export function requestId(): string {
  return randomBytes(16).toString('hex');
}

export function hal(body: unknown, status = 200): EmuResponse {
  return { status, headers: { 'content-type': HAL }, body };
}

/** §4: an empty result is 204 with no body. */
export function noContent(): EmuResponse {
  return { status: 204 };
}

export function problemResponse(status: number, body: Record<string, unknown>): EmuResponse {
  return { status, headers: { 'content-type': PROBLEM }, body };
}

/** Thrown by handlers; carries the full response. */
export class ApiError extends Error {
  constructor(readonly response: EmuResponse) {
    super(`Kommo emulator error ${response.status}`);
  }
}

function problem(status: number, title: string, detail: string): Record<string, unknown> {
  return { title, type: `https://httpstatus.es/${status}`, status, detail };
}

// §11 exact bodies (fixtures ERROR_*.json).
export const unauthorizedBody = () => problem(401, 'Unauthorized', 'Invalid user name or password');
export const emptyBodyBody = () => problem(400, 'Bad Request', 'Request data can not be empty');
export const methodNotAllowedBody = () => problem(405, 'Method Not Allowed', 'Method Not Allowed');
export const limitBody = () => problem(422, 'Unprocessable Entity', 'Limit 250 per page');
export const tooManyBody = () => ({
  ...problem(429, 'Too Many Requests', 'You have sent too many requests in a given amount of time. Please try again later.'),
  retry_after: 300,
});
export const routeNotFoundBody = (method: string, url: string) => problem(404, 'Not Found', `Cannot ${method} ${url}`);
export const notFoundBody = (detail: string) => problem(404, 'Not Found', detail);
// §11: 403 when the oauth2 shared endpoint gets no auth header (fixture ERROR_403_access_denied.json).
export const accessDeniedBody = () => ({
  title: 'Access denied',
  type: 'https://developers.amocrm.ru/v3/errors/AccessDenied',
  status: 403,
  detail: 'You need an authorization header',
});

/** §3/§11: a blocked account gets nginx's HTML 403 page, not JSON. */
export const NGINX_403 =
  '<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

export const unauthorized = () => new ApiError(problemResponse(401, unauthorizedBody()));
export const emptyBody = () => new ApiError(problemResponse(400, emptyBodyBody()));
export const methodNotAllowed = () => new ApiError(problemResponse(405, methodNotAllowedBody()));
export const tooMany = (limit = 250) => new ApiError(problemResponse(422, limit === 250 ? limitBody() : { ...limitBody(), detail: `Limit ${limit} per page` }));
export const routeNotFound = (method: string, url: string) => new ApiError(problemResponse(404, routeNotFoundBody(method, url)));
export const notFound = (detail: string) => new ApiError(problemResponse(404, notFoundBody(detail)));

/**
 * A body that is not JSON. The fact sheet has no example; this emulator answers with the generic 400
 * problem shape so a client bug is loud.
 */
export const badJson = () => new ApiError(problemResponse(400, problem(400, 'Bad Request', 'Request body is not valid JSON')));

export interface FieldError {
  code: string;
  path: string;
  detail: string;
}

/** The validation codes and texts seen in fixtures ERROR_400_validation.json and POST_leads_complex.400.json. */
export const E = {
  type: (path: string, type: 'int' | 'string' | 'array' | 'bool' | 'object'): FieldError => ({
    code: 'InvalidType',
    path,
    detail: `This value should be of type ${type}.`,
  }),
  choice: (path: string): FieldError => ({ code: 'NotSupportedChoice', path, detail: 'The value you selected is not a valid choice.' }),
  // Not in the fact sheet: the emulator's own wording (Symfony-style, like the documented ones) for a
  // missing required field and for a key Kommo does not know.
  blank: (path: string): FieldError => ({ code: 'NotBlank', path, detail: 'This value should not be blank.' }),
  extra: (path: string): FieldError => ({ code: 'NotSupportedField', path, detail: 'This field was not expected.' }),
};

/** Collects `validation-errors` per request element, keyed by its request_id (§11). */
export class Validation {
  private readonly groups: Array<{ request_id: string; errors: FieldError[] }> = [];

  add(requestId: string, errors: FieldError[]): void {
    if (errors.length) this.groups.push({ request_id: requestId, errors });
  }

  get failed(): boolean {
    return this.groups.length > 0;
  }

  throwIfFailed(): void {
    if (this.failed) throw validationError(this.groups);
  }
}

export function validationError(groups: Array<{ request_id: string; errors: FieldError[] }>): ApiError {
  return new ApiError(
    problemResponse(400, {
      'validation-errors': groups,
      title: 'Bad Request',
      type: 'https://httpstatus.es/400',
      status: 400,
      detail: 'Request validation failed',
    }),
  );
}

/** A single failing query parameter (GET requests have no request_id; "0" like the first body element). */
export function badParam(path: string, kind: 'type' | 'choice' | 'extra' = 'choice', type: 'int' | 'string' | 'array' = 'int'): ApiError {
  const err = kind === 'type' ? E.type(path, type) : kind === 'extra' ? E.extra(path) : E.choice(path);
  return validationError([{ request_id: '0', errors: [err] }]);
}
