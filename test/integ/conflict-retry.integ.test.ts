import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { KeyStore } from '../../services/accounts/key-store';
import { documentClient } from '../../services/platform/aws-clients';
import { CONFLICT_RETRY } from '../../services/platform/dynamodb';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { recordFigures } from '../support/figures';

// A write that loses to concurrent writes of the same items (TransactionConflict) is retried and
// never surfaces as a 503: on AWS two overlapping key creations of one account conflict, as both
// condition-check the account item. DynamoDB Local serializes transactions, so the conflicts are
// injected (a client middleware cancels the first N TransactWriteItems calls as DynamoDB does);
// every other call, and every retry after them, is real.

const { dynamodb, region } = inject('endpoints');
const env = inject('env');
const aws = {
  region,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  endpoints: { dynamodb },
};

const transactionConflict = () =>
  new TransactionCanceledException({
    message:
      'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]',
    $metadata: { httpStatusCode: 400, requestId: 'injected', attempts: 1, totalRetryDelay: 0 },
    // createKey's items: the account's condition check (the contended item), then the key's put.
    CancellationReasons: [
      { Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' },
      { Code: 'None' },
    ],
  });

/** A real client to DynamoDB Local whose first `conflicts` TransactWriteItems calls are cancelled. */
function conflictingClient(conflicts: number) {
  const client = documentClient(aws);
  const counts = { transactWrites: 0, injected: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'TransactWriteItemsCommand') {
        counts.transactWrites++;
        if (counts.injected < conflicts) {
          counts.injected++;
          throw transactionConflict();
        }
      }
      return next(args);
    },
    { step: 'initialize', name: 'injectTransactionConflicts' },
  );
  return { client, counts };
}

const store = new KeyStore({
  client: documentClient(aws),
  accountsTable: env[ENV.accountsTable] as string,
  keysTable: env[ENV.keysTable] as string,
  keyPrefix: env[ENV.keyPrefix] ?? 'tg',
});

function userApiFor(accountId: string, conflicts: number) {
  const { client, counts } = conflictingClient(conflicts);
  const internalErrors: string[] = [];
  const app = composeUserApi(loadUserApiConfig(env), {
    clients: { dynamo: client },
    verifier: {
      verify: async () => ({ userId: accountId, email: `${accountId}@example.com`, userName: accountId }),
    },
    logger: new Logger({ serviceName: 'user-api-test', logLevel: 'SILENT' }),
    metrics: { addMetric: (name) => internalErrors.push(name) },
  });
  const request = (method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: { authorization: 'Bearer test-token', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return { request, counts, internalErrors };
}

describe('conflict retries on key writes (DynamoDB Local)', () => {
  let accountId: string;
  const figures: Record<string, unknown> = {
    parameters: { retries: CONFLICT_RETRY.retries, baseDelayMs: CONFLICT_RETRY.baseDelayMs },
  };

  afterAll(async () => {
    await recordFigures('conflict-retry', figures);
  });

  beforeAll(async () => {
    accountId = `conflict-${randomUUID()}`;
    const provisioned = await store.provisionAccount({
      accountId,
      email: `${accountId}@example.com`,
      userName: accountId,
      now: new Date(),
    });
    expect(provisioned.created).toBe(true);
  });

  it('creates the key after retrying TransactionConflicts, never answering 503', async () => {
    const N = 3;
    expect(N).toBeLessThanOrEqual(CONFLICT_RETRY.retries);
    const api = userApiFor(accountId, N);

    const response = await api.request('POST', '/keys', { name: 'after conflicts' });

    expect(response.status).toBe(201);
    const issued = (await response.json()) as { id: string; key: string; name: string };
    expect(issued.name).toBe('after conflicts');
    expect(api.counts.injected).toBe(N);
    // N cancelled attempts, then the real one that committed.
    expect(api.counts.transactWrites).toBe(N + 1);
    const stored = await store.getKey(accountId, issued.id);
    expect(stored).toMatchObject({ accountId, keyId: issued.id, status: 'active', name: 'after conflicts' });
    expect(api.internalErrors).toEqual([]);
    figures.create = {
      injected: api.counts.injected,
      attempts: api.counts.transactWrites,
      status: response.status,
    };
  });

  it('answers 409 conflict, not 503, when the conflicts never stop, and writes nothing', async () => {
    const before = await store.listKeys(accountId);
    const api = userApiFor(accountId, Number.POSITIVE_INFINITY);

    const response = await api.request('POST', '/keys', { name: 'never' });

    expect(response.status).toBe(409);
    expect(response.headers.get('retry-after')).toBeNull();
    expect(await response.json()).toEqual({ error: { code: 'conflict', message: expect.any(String) } });
    expect(api.counts.transactWrites).toBe(CONFLICT_RETRY.retries + 1);
    const after = await store.listKeys(accountId);
    expect(after).toEqual(before);
    expect(api.internalErrors).toEqual([]);
    figures.persistent = {
      attempts: api.counts.transactWrites,
      answer: `${response.status} conflict`,
      keysWritten: after.length - before.length,
      internalErrors: api.internalErrors.length,
    };
  });

  it('rolls a key after a TransactionConflict on the roll transaction', async () => {
    const created = await store.createKey({ accountId, name: 'to roll', now: new Date() });
    if (!created.ok) throw new Error('the key to roll was not created');
    const api = userApiFor(accountId, 1);

    const response = await api.request('POST', `/keys/${created.value.record.keyId}/roll`, {
      gracePeriodSeconds: 60,
    });

    expect(response.status).toBe(201);
    const rolled = (await response.json()) as { id: string; previous: { id: string; status: string } };
    expect(rolled.previous).toMatchObject({ id: created.value.record.keyId, status: 'expiring' });
    expect(api.counts).toEqual({ transactWrites: 2, injected: 1 });
    figures.roll = {
      injected: api.counts.injected,
      attempts: api.counts.transactWrites,
      status: response.status,
    };
    expect(await store.getKey(accountId, created.value.record.keyId)).toMatchObject({
      status: 'expiring',
      replacedBy: rolled.id,
    });
  });
});
