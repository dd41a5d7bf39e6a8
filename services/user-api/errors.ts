import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { type ErrorCode, errorBody } from '../../contracts/errors';
import { UserApiMetric } from '../../contracts/metric-names';
import { ConflictError, DependencyError } from '../platform/errors';
import type { MetricsRecorder } from '../platform/metrics';
import type { UserApiEnv } from './env';

const CODE_BY_STATUS: Partial<Record<number, ErrorCode>> = {
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
};

/** An expected failure with its own status, code and message, safe to show the caller. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(status, { message });
  }
}

export function notFound(what = 'key'): ApiError {
  return new ApiError(404, 'not_found', `No such ${what}`);
}

const noMetrics: MetricsRecorder = { addMetric: () => undefined };

/**
 * The single place where errors become HTTP: one body shape, and no internals in any 5xx. Errors
 * by class: a dependency unavailable → 503 + `retry-after`; a write that kept conflicting (after
 * its retries, services/platform/dynamodb.ts) → 409; anything else is a bug → 500, logged with its
 * cause and counted (UserApiMetric.internalErrors, alarmed), never "retry shortly".
 */
export function onError(
  error: Error,
  c: Context<UserApiEnv>,
  logger: Logger,
  metrics: MetricsRecorder = noMetrics,
): Response {
  if (error instanceof ApiError) {
    return c.json(errorBody(error.code, error.message, error.details), error.status);
  }
  if (error instanceof HTTPException && error.status < 500) {
    const status = error.status as ContentfulStatusCode;
    return c.json(
      errorBody(CODE_BY_STATUS[status] ?? 'invalid_request', error.message || 'Bad request'),
      status,
    );
  }
  if (error instanceof DependencyError) {
    logger.warn('dependency unavailable', { error });
    c.header('retry-after', '1');
    return c.json(errorBody('service_unavailable', 'The service is briefly unavailable; retry shortly'), 503);
  }
  if (error instanceof ConflictError) {
    logger.warn('write conflicted with concurrent writes after its retries', { error });
    return c.json(
      errorBody('conflict', 'The change collided with another change made at the same moment; try again'),
      409,
    );
  }
  logger.error('unhandled error', { error });
  try {
    metrics.addMetric(UserApiMetric.internalErrors, MetricUnit.Count, 1);
  } catch (failure) {
    // Metrics must not turn a 500 into something else; the log line above still tells.
    logger.error('internal error not counted', { error: failure });
  }
  return c.json(errorBody('internal_error', 'Something went wrong on our side'), 500);
}

/** What a request part is called in a 400: the body's fields, the query's parameters, … */
const PART_NAMES: Readonly<Record<string, { whole: string; member: string }>> = {
  json: { whole: '(body)', member: 'field' },
  query: { whole: '(query)', member: 'query parameter' },
  param: { whole: '(path)', member: 'path parameter' },
  header: { whole: '(headers)', member: 'header' },
};

/**
 * A request that failed its schema: a 400 that says which field (or query parameter) and why. An
 * unknown query parameter is named by itself — `granularty: not a query parameter …` — rather than
 * as the body's "(body): Unrecognized key" (a body's unknown fields keep that message).
 */
export function invalidRequest(error: z.core.$ZodError, target = 'json'): ApiError {
  const part = PART_NAMES[target] ?? { whole: `(${target})`, member: 'member' };
  const details = error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 0 && target !== 'json'
      ? issue.keys.map((key) => ({ path: key, message: `not a ${part.member} this operation takes` }))
      : [{ path: issue.path.join('.') || part.whole, message: issue.message }],
  );
  const summary = details.map((d) => `${d.path}: ${d.message}`).join('; ');
  return new ApiError(400, 'invalid_request', `Invalid request: ${summary}`, details);
}

/**
 * The validation hook of every route (OpenAPIHono's `defaultHook`, services/user-api/openapi.ts):
 * a failed validation becomes the 400 of `invalidRequest`, answered as onError answers an ApiError.
 */
export function validationHook(
  result: { success: true } | { success: false; error: z.core.$ZodError; target?: string },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const invalid = invalidRequest(result.error, result.target);
  return c.json(errorBody(invalid.code, invalid.message, invalid.details), invalid.status);
}
