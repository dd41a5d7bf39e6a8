import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { KeyApiMetric } from '../../contracts/metric-names';
import { newUsageEvent } from '../../contracts/usage-event';
import type { Clock } from '../shared/clock';
import { DependencyError, type ErrorCode, errorBody } from '../shared/errors';
import type { MetricsRecorder } from '../shared/metrics';
import { extractKey } from './extract-key';
import type { KeyCheck, KeyVerifier } from './key-verifier';
import type { UsagePublisher } from './publisher';
import type { UsageSnapshots } from './usage-snapshots';

/**
 * What to do with an accepted request whose usage event cannot be published.
 *  - closed (default): answer 503. Every 200 is then a counted request: usage stays exact.
 *  - open: answer 200 anyway and count it as `UnmeteredRequests`: availability over billing.
 */
export type PublishFailureMode = 'closed' | 'open';

export interface KeyApiDeps {
  verifier: KeyVerifier;
  publisher: UsagePublisher;
  usage: UsageSnapshots;
  clock: Clock;
  logger: Logger;
  /** On Lambda a `BufferedMetrics` (compose.ts). */
  metrics: MetricsRecorder;
  publishFailureMode: PublishFailureMode;
  /** Browser origins allowed to call the key API (the web page's "try your key"). */
  allowedOrigins: readonly string[];
}

export type KeyApiHandler = (event: ALBEvent) => Promise<ALBResult>;

const REFUSALS: Record<Exclude<KeyCheck['outcome'], 'accepted'>, { code: ErrorCode; message: string }> = {
  malformed: { code: 'malformed_key', message: 'The API key is not a well-formed Tollgate key' },
  unknown: { code: 'unknown_key', message: 'The API key does not exist' },
  revoked: { code: 'revoked_key', message: 'The API key has been revoked' },
  expired: { code: 'expired_key', message: 'The API key was rolled and its grace period has ended' },
};

const ALLOWED_HEADERS = 'authorization, content-type, x-api-key';

function corsHeaders(event: ALBEvent, allowedOrigins: readonly string[]): Record<string, string> {
  const origin = event.headers?.origin ?? event.multiValueHeaders?.origin?.[0];
  if (!origin || !allowedOrigins.includes(origin)) return {};
  return { 'access-control-allow-origin': origin, vary: 'origin' };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): ALBResult {
  return {
    statusCode: status,
    statusDescription: `${status}`,
    isBase64Encoded: false,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

const unavailable = (message: string, cors: Record<string, string>) =>
  json(503, errorBody('service_unavailable', message), { ...cors, 'retry-after': '1' });

/**
 * The key API as a function of an ALB event: pulls the key out, asks the verifier, publishes one
 * usage event for an accepted request, maps the outcome to HTTP. 401 bodies say which refusal it
 * was; 503 means "try again", never "bad key".
 */
export function createKeyApiHandler(deps: KeyApiDeps): KeyApiHandler {
  const count = (name: string) => deps.metrics.addMetric(name, MetricUnit.Count, 1);

  async function accept(check: Extract<KeyCheck, { outcome: 'accepted' }>, cors: Record<string, string>) {
    const event = newUsageEvent({ keyId: check.keyId, accountId: check.accountId, now: deps.clock.now() });
    const started = performance.now();
    const [published, usage] = await Promise.all([
      deps.publisher.publish(event).then(
        () => true,
        (error: unknown) => {
          deps.logger.error('usage event not published', {
            error,
            keyId: check.keyId,
            mode: deps.publishFailureMode,
          });
          return false;
        },
      ),
      deps.usage.get(check.accountId, check.keyId),
    ]);
    // Tenths of a millisecond: finer adds only digits to every value in the EMF line.
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    deps.metrics.addMetric(KeyApiMetric.publishLatency, MetricUnit.Milliseconds, latencyMs);
    if (!published) {
      count(KeyApiMetric.publishFailures);
      if (deps.publishFailureMode === 'closed') {
        return unavailable(
          'Usage could not be recorded, so the request was not accepted; retry shortly',
          cors,
        );
      }
      count(KeyApiMetric.unmetered);
    }
    count(KeyApiMetric.checks.accepted);
    return json(200, { ok: true, keyId: check.keyId, usage }, cors);
  }

  return async (event) => {
    const cors = corsHeaders(event, deps.allowedOrigins);
    if (event.httpMethod === 'OPTIONS') {
      return {
        statusCode: 204,
        statusDescription: '204 No Content',
        isBase64Encoded: false,
        headers: {
          ...cors,
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': ALLOWED_HEADERS,
          'access-control-max-age': '600',
        },
        body: '',
      };
    }
    try {
      const extracted = extractKey(event);
      if (extracted.kind === 'invalid') {
        count(KeyApiMetric.checks.invalid);
        return json(400, errorBody('invalid_request', extracted.message), cors);
      }
      if (extracted.kind === 'missing') {
        count(KeyApiMetric.checks.missing);
        return json(
          401,
          errorBody(
            'missing_key',
            'Send an API key in the x-api-key header, as a Bearer token, or as {"key": ...}',
          ),
          { ...cors, 'www-authenticate': 'Bearer realm="tollgate"' },
        );
      }
      const check = await deps.verifier.verify(extracted.key);
      if (check.outcome !== 'malformed') {
        count(
          check.cache === 'fresh'
            ? KeyApiMetric.cacheHits
            : check.cache === 'stale'
              ? KeyApiMetric.cacheStaleServed
              : KeyApiMetric.cacheMisses,
        );
      }
      if (check.outcome === 'accepted') return await accept(check, cors);
      count(KeyApiMetric.checks[check.outcome]);
      const refusal = REFUSALS[check.outcome];
      return json(401, errorBody(refusal.code, refusal.message), {
        ...cors,
        'www-authenticate': 'Bearer realm="tollgate", error="invalid_token"',
      });
    } catch (error) {
      if (error instanceof DependencyError) {
        count(KeyApiMetric.checks.unavailable);
        deps.logger.warn('key check unavailable', { error });
        return unavailable('Key checks are briefly unavailable; retry shortly', cors);
      }
      // Not an outage (those are DependencyErrors): a bug or a bad deploy, e.g. a DynamoDB
      // ValidationException. Logged with its cause, counted (a failure metric: written at once,
      // alarmed), and answered 500 without internals: "retry shortly" would be a lie.
      count(KeyApiMetric.internalErrors);
      deps.logger.error('key check failed', { error });
      return json(500, errorBody('internal_error', 'The key API failed'), cors);
    }
  };
}
