import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  DynamoDBClient,
  DynamoDBServiceException,
  ThrottlingException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ALBEvent } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { KEY_API_FAILURE_METRICS, KeyApiMetric, UserApiMetric } from '../../contracts/metric-names';
import { generateApiKey } from '../../services/accounts/api-key';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { CONFLICT_RETRY } from '../../services/platform/dynamodb';
import { writeAtOnce } from '../../services/platform/metrics';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';

// Errors by class, at the edges: DynamoDB refusing a request as wrong is a bug (500, logged with
// its cause, counted), DynamoDB unable to answer is an outage (503 + retry-after), a write that
// keeps conflicting is a 409. No network: a middleware at `initialize` fails every command before
// the SDK would send it (and before its own retries).

const $metadata = { httpStatusCode: 400, requestId: 'REQ', attempts: 1, totalRetryDelay: 0 };
const validationException = () =>
  new DynamoDBServiceException({
    name: 'ValidationException',
    $fault: 'client',
    $metadata,
    message: 'One or more parameter values were invalid: Condition parameter type does not match schema type',
  });
const throttlingException = () =>
  new ThrottlingException({ message: 'Throughput exceeds the current capacity', $metadata });
const conflict = () =>
  new TransactionCanceledException({
    message:
      'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]',
    $metadata,
    CancellationReasons: [
      { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' },
      { Code: 'None' },
    ],
  });

/**
 * A real document client whose every command fails with `fail()` before it is sent; with `item`,
 * reads (GetItem) answer it instead, so only the writes fail.
 */
function failingClient(fail: () => Error, item?: Record<string, unknown>) {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    }),
  );
  const sent: string[] = [];
  client.middlewareStack.add(
    (_next, context) => async () => {
      sent.push(context.commandName ?? '');
      if (item && context.commandName === 'GetItemCommand') {
        return { output: { $metadata: {}, Item: item }, response: {} } as never;
      }
      throw fail();
    },
    { step: 'initialize', name: 'failEveryCommand' },
  );
  return { client, sent };
}

function recordingMetrics() {
  const added: Array<{ name: string; value: number }> = [];
  return {
    added,
    names: () => added.map((m) => m.name),
    addMetric(name: string, _unit: string, value: number) {
      added.push({ name, value });
    },
    endInvocation() {},
  };
}

const quietLogger = (service: string) => new Logger({ serviceName: service, logLevel: 'SILENT' });

describe('key-api: a DynamoDB failure during a key check, by class', () => {
  const env = {
    TOLLGATE_ACCOUNTS_TABLE: 'tollgate-accounts',
    TOLLGATE_KEYS_TABLE: 'tollgate-keys',
    TOLLGATE_USAGE_TABLE: 'tollgate-usage',
    TOLLGATE_PLANS_TABLE: 'tollgate-plans',
    TOLLGATE_TRANSPORT: 'sqs',
    TOLLGATE_USAGE_QUEUE_URL: 'http://127.0.0.1:9/000000000000/usage',
  };

  function keyApiOver(fail: () => Error) {
    const { client, sent } = failingClient(fail);
    const metrics = recordingMetrics();
    const logger = quietLogger('key-api');
    const errors = vi.spyOn(logger, 'error');
    const { handler } = composeKeyApi(loadKeyApiConfig(env), {
      clients: { dynamo: client },
      metrics,
      logger,
      publisher: { publish: async () => undefined },
    });
    const event: ALBEvent = {
      requestContext: {
        elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:local:0:targetgroup/key-api/0' },
      },
      httpMethod: 'GET',
      path: '/',
      headers: { 'x-api-key': generateApiKey('tg').key },
      body: null,
      isBase64Encoded: false,
    };
    return { call: () => handler(event), metrics, errors, sent };
  }

  it('a ValidationException (a bug, a bad deploy) answers 500, is logged with its cause and counted', async () => {
    const thrown: Error[] = [];
    const api = keyApiOver(() => {
      const error = validationException();
      thrown.push(error);
      return error;
    });
    const result = await api.call();

    expect(api.sent).toEqual(['QueryCommand']);
    expect(result.statusCode).toBe(500);
    expect(result.headers?.['retry-after']).toBeUndefined();
    const body = JSON.parse(result.body ?? 'null');
    expect(body).toEqual({ error: { code: 'internal_error', message: expect.any(String) } });
    expect(result.body).not.toMatch(/Validation|parameter|DynamoDB/i);

    expect(api.metrics.names()).toContain(KeyApiMetric.internalErrors);
    expect(api.metrics.names()).not.toContain(KeyApiMetric.checks.unavailable);
    // Written at the end of the invocation, not a flush interval later: the alarm sees it at once.
    expect(KEY_API_FAILURE_METRICS).toContain(KeyApiMetric.internalErrors);
    expect(api.errors).toHaveBeenCalledWith(expect.any(String), { error: thrown[0] });
  });

  it('a ThrottlingException in the same spot is an outage: 503 with retry-after, not counted as a bug', async () => {
    const api = keyApiOver(throttlingException);
    const result = await api.call();

    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('1');
    expect(JSON.parse(result.body ?? 'null').error.code).toBe('service_unavailable');
    expect(api.metrics.names()).toContain(KeyApiMetric.checks.unavailable);
    expect(api.metrics.names()).not.toContain(KeyApiMetric.internalErrors);
  });
});

describe('user-api: DynamoDB failures, by class', () => {
  const env = {
    TOLLGATE_ACCOUNTS_TABLE: 'tollgate-accounts',
    TOLLGATE_KEYS_TABLE: 'tollgate-keys',
    TOLLGATE_USAGE_TABLE: 'tollgate-usage',
    TOLLGATE_PLANS_TABLE: 'tollgate-plans',
    TOLLGATE_JWT_ISSUER: 'http://127.0.0.1:9/local_pool',
    TOLLGATE_JWKS_URI: 'http://127.0.0.1:9/local_pool/.well-known/jwks.json',
    TOLLGATE_USER_POOL_CLIENT_ID: 'client',
  };
  const user = { userId: 'acct-1', email: 'owner@example.com', userName: 'owner' };

  function userApiOver(fail: () => Error, item?: Record<string, unknown>) {
    const { client, sent } = failingClient(fail, item);
    const metrics = recordingMetrics();
    const logger = quietLogger('user-api');
    const errors = vi.spyOn(logger, 'error');
    const app = composeUserApi(loadUserApiConfig(env), {
      clients: { dynamo: client },
      verifier: { verify: async () => user },
      logger,
      metrics,
    });
    const request = (path: string, init: RequestInit = {}) =>
      app.request(path, {
        ...init,
        headers: { authorization: 'Bearer token', 'content-type': 'application/json' },
      });
    return { request, metrics, errors, sent };
  }

  it('a ValidationException answers 500 internal_error without internals, logged and counted', async () => {
    const api = userApiOver(validationException);
    const response = await api.request('/me');

    expect(response.status).toBe(500);
    expect(response.headers.get('retry-after')).toBeNull();
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal_error', message: expect.any(String) } });
    expect(text).not.toMatch(/Validation|parameter|DynamoDB/i);
    expect(api.metrics.added).toEqual([{ name: UserApiMetric.internalErrors, value: 1 }]);
    expect(api.errors).toHaveBeenCalledWith(expect.any(String), {
      error: expect.objectContaining({ name: 'ValidationException' }),
    });
  });

  it('a ThrottlingException answers 503 with retry-after and is no internal error', async () => {
    const api = userApiOver(throttlingException);
    const response = await api.request('/me');

    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect((await response.json()).error.code).toBe('service_unavailable');
    expect(api.metrics.added).toEqual([]);
  });

  it('a key creation that keeps conflicting is retried, then answers 409 conflict (not 503)', async () => {
    // The account (on the default plan, unlimited) is read first; every write conflicts.
    const api = userApiOver(conflict, { accountId: user.userId, email: user.email });
    const response = await api.request('/keys', { method: 'POST', body: '{}' });

    expect(response.status).toBe(409);
    expect(await response.json()).toEqual({ error: { code: 'conflict', message: expect.any(String) } });
    expect(api.sent.filter((command) => command !== 'GetItemCommand')).toEqual(
      Array.from({ length: CONFLICT_RETRY.retries + 1 }, () => 'TransactWriteItemsCommand'),
    );
    expect(api.metrics.added).toEqual([]);
  });

  it('by default writes each failure metric at once (one EMF line), as nothing else would flush it', () => {
    const metrics = new Metrics({ namespace: 'Tollgate', serviceName: 'user-api' });
    const publish = vi.spyOn(metrics, 'publishStoredMetrics').mockImplementation(() => metrics);
    const add = vi.spyOn(metrics, 'addMetric');
    writeAtOnce(metrics).addMetric(UserApiMetric.internalErrors, 'Count', 1);
    expect(add).toHaveBeenCalledWith(UserApiMetric.internalErrors, 'Count', 1);
    expect(publish).toHaveBeenCalledTimes(1);
  });
});
