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

/** A request that failed its schema: a 400 that says which field and why. */
export function invalidRequest(error: z.core.$ZodError): ApiError {
  const details = error.issues.map((issue) => ({
    path: issue.path.join('.') || '(body)',
    message: issue.message,
  }));
  const summary = details.map((d) => `${d.path}: ${d.message}`).join('; ');
  return new ApiError(400, 'invalid_request', `Invalid request: ${summary}`, details);
}

/**
 * The validation hook of every route (OpenAPIHono's `defaultHook`, services/user-api/openapi.ts):
 * a failed validation becomes the 400 of `invalidRequest`, answered as onError answers an ApiError.
 */
export function validationHook(
  result: { success: true } | { success: false; error: z.core.$ZodError },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const invalid = invalidRequest(result.error);
  return c.json(errorBody(invalid.code, invalid.message, invalid.details), invalid.status);
}
