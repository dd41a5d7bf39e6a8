import { OpenAPIHono, type RouteConfig, type RouteHandler, z } from '@hono/zod-openapi';
import type { ErrorCode } from '../../contracts/errors';
import type { UserApiEnv } from './env';
import { validationHook } from './errors';

/** The version of the API the document describes (`info.version`); bump it when the contract changes. */
export const API_VERSION = '1.5.0';

/** The name of the security scheme every authenticated operation requires. */
export const ID_TOKEN_SCHEME = 'cognitoIdToken';

/** What an authenticated operation declares: a Cognito ID token as a bearer token. */
export const requiresIdToken = [{ [ID_TOKEN_SCHEME]: [] }];

/**
 * A router of the user API. Every one gets the same `defaultHook`, the very `validationHook` the
 * routes used with zod-validator, so a request that fails its schema is answered as it always was.
 */
export function router() {
  return new OpenAPIHono<UserApiEnv>({ defaultHook: validationHook });
}

/** The handler of an operation (`createRoute`): its input validated, its answers the declared ones. */
export type OperationHandler<R extends RouteConfig> = RouteHandler<R, UserApiEnv>;

/** The codes user-api answers with (contracts/errors.ts has them all). */
const USER_API_ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'reauthentication_required',
  'forbidden',
  'not_found',
  'conflict',
  'key_limit_reached',
  'method_not_allowed',
  'payload_too_large',
  'service_unavailable',
  'internal_error',
] as const satisfies readonly ErrorCode[];

/** The one error shape of every Tollgate answer (contracts/errors.ts `errorBody`). */
export const errorSchema = z
  .object({
    error: z.object({
      code: z.enum(USER_API_ERROR_CODES).openapi({ description: 'Stable, meant for programs' }),
      message: z.string().openapi({ description: 'For people; never carries internals' }),
      details: z.unknown().optional().openapi({
        description: 'On a 400 from validation: `[{ path, message }]`, one per problem',
      }),
    }),
  })
  .openapi('Error');

const ERROR_DESCRIPTIONS = {
  400: 'The request is invalid: `message` and `details` say which field and why',
  401: 'No valid Cognito ID token (`Authorization: Bearer <id token>`)',
  403: 'The token is valid, but its user is not one of the admins (Cognito group `admins`): `forbidden`',
  404: 'No such key (or route) for this account',
  409: "The key is not in a state that allows this (`conflict`), the account's plan allows no more live keys (`key_limit_reached`), or the change collided with a concurrent one (`conflict`)",
  413: 'The body is larger than 16 KiB',
  415: 'The body is not JSON (`content-type: application/json`)',
  500: 'Something went wrong on our side',
  503: 'A dependency is briefly unavailable; retry after `retry-after` seconds',
} as const;

type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS;

interface ErrorResponse {
  description: string;
  content: { 'application/json': { schema: typeof errorSchema } };
  headers?: Record<string, { description: string; schema: { type: 'integer' } }>;
}

/**
 * The error answers an operation documents, in the one shape. 401, 500 and 503 are possible on
 * every authenticated operation and always included.
 */
export function errorResponses<const S extends ErrorStatus>(
  ...statuses: S[]
): Record<S | 401 | 500 | 503, ErrorResponse> {
  return describedErrorResponses({}, ...statuses);
}

/** errorResponses, with descriptions of this operation's own for some of the statuses (401 included). */
export function describedErrorResponses<const S extends ErrorStatus>(
  descriptions: Partial<Record<S | 401, string>>,
  ...statuses: S[]
): Record<S | 401 | 500 | 503, ErrorResponse> {
  const own: Partial<Record<ErrorStatus, string>> = descriptions;
  const responses: Partial<Record<ErrorStatus, ErrorResponse>> = {};
  for (const status of [...statuses, 401, 500, 503] as const) {
    responses[status] = {
      description: own[status] ?? ERROR_DESCRIPTIONS[status],
      content: { 'application/json': { schema: errorSchema } },
      ...(status === 503
        ? { headers: { 'retry-after': { description: 'Seconds to wait', schema: { type: 'integer' } } } }
        : {}),
    };
  }
  return responses as Record<S | 401 | 500 | 503, ErrorResponse>;
}

/** A JSON success answer of an operation. */
export function json<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** An ISO 8601 timestamp in UTC, as every `…At` field is written. */
export const timestamp = z.iso.datetime();
