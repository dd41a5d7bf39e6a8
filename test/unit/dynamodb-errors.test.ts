import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  RequestLimitExceeded,
  ResourceNotFoundException,
  ThrottlingException,
  TransactionCanceledException,
  TransactionConflictException,
  TransactionInProgressException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { KeyStore } from '../../services/accounts/key-store';
import {
  CONFLICT_RETRY,
  type ConflictRetryPolicy,
  callDynamo,
  classifyDynamoError,
  conflictBackoffMs,
  type DynamoErrorClass,
  isUnavailable,
  maxConflictWaitMs,
} from '../../services/platform/dynamodb';
import { ConflictError, DependencyError } from '../../services/platform/errors';
import { METERING_CONFLICT_RETRY, UsageStore } from '../../services/usage/usage-store';

// Errors as the SDK v3 raises them: modelled exceptions are instances of their classes, with
// `$metadata`; an unmodelled one (ValidationException) is a DynamoDBServiceException named by its
// code; connection failures are Node errors with a `code`, timeouts are named TimeoutError.
const $metadata = { httpStatusCode: 400, requestId: 'REQ', attempts: 1, totalRetryDelay: 0 };
const serviceError = (name: string, httpStatusCode: number, fault: 'client' | 'server' = 'client') =>
  new DynamoDBServiceException({
    name,
    $fault: fault,
    $metadata: { ...$metadata, httpStatusCode },
    message: `${name} from DynamoDB`,
  });
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${codes.join(', ')}]`,
    $metadata,
    CancellationReasons: codes.map((Code) => (Code === 'None' ? { Code } : { Code, Message: Code })),
  });
const nodeError = (code: string) =>
  Object.assign(new Error(`connect ${code} 127.0.0.1:8000`), { code, errno: -111, syscall: 'connect' });
const named = (name: string, message = name) => Object.assign(new Error(message), { name });

const cases: Array<[string, unknown, DynamoErrorClass]> = [
  // unavailable
  [
    'ProvisionedThroughputExceededException',
    new ProvisionedThroughputExceededException({ message: 'rate exceeded', $metadata }),
    'unavailable',
  ],
  ['ThrottlingException', new ThrottlingException({ message: 'throttled', $metadata }), 'unavailable'],
  ['RequestLimitExceeded', new RequestLimitExceeded({ message: 'account limit', $metadata }), 'unavailable'],
  [
    'InternalServerError (500)',
    new InternalServerError({ message: 'internal', $metadata: { ...$metadata, httpStatusCode: 500 } }),
    'unavailable',
  ],
  ['ServiceUnavailable (503)', serviceError('ServiceUnavailable', 503, 'server'), 'unavailable'],
  ['an unnamed 502', serviceError('UnknownError', 502, 'server'), 'unavailable'],
  ['a 429', serviceError('TooManyRequests', 429), 'unavailable'],
  ['TimeoutError (the SDK request timeout)', named('TimeoutError', 'requestTimeout exceeded'), 'unavailable'],
  ['RequestTimeout', named('RequestTimeout'), 'unavailable'],
  ['ECONNREFUSED', nodeError('ECONNREFUSED'), 'unavailable'],
  ['ECONNRESET', nodeError('ECONNRESET'), 'unavailable'],
  ['ETIMEDOUT', nodeError('ETIMEDOUT'), 'unavailable'],
  [
    "Node 20's AggregateError of connection attempts",
    new AggregateError([nodeError('ECONNREFUSED'), nodeError('ECONNREFUSED')]),
    'unavailable',
  ],
  [
    'a cause chain ending in ECONNRESET',
    new Error('socket hang up', { cause: nodeError('ECONNRESET') }),
    'unavailable',
  ],
  ['a transaction cancelled for throttling', cancelled('None', 'ThrottlingError'), 'unavailable'],
  [
    'a transaction cancelled for provisioned throughput',
    cancelled('ProvisionedThroughputExceeded', 'None'),
    'unavailable',
  ],
  ['an already classified DependencyError', new DependencyError('DynamoDB'), 'unavailable'],
  // conflict
  ['a transaction cancelled by a TransactionConflict', cancelled('TransactionConflict', 'None'), 'conflict'],
  [
    'TransactionConflictException (a write to an item in a transaction)',
    new TransactionConflictException({ message: 'Transaction is ongoing for the item', $metadata }),
    'conflict',
  ],
  [
    'TransactionInProgressException',
    new TransactionInProgressException({ message: 'in progress', $metadata }),
    'conflict',
  ],
  ['an already classified ConflictError', new ConflictError('DynamoDB'), 'conflict'],
  // condition failed: the caller's business
  [
    'ConditionalCheckFailedException',
    new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata }),
    'condition_failed',
  ],
  ['a transaction cancelled by a condition', cancelled('ConditionalCheckFailed', 'None'), 'condition_failed'],
  [
    'a condition and a conflict together (the condition decides)',
    cancelled('ConditionalCheckFailed', 'TransactionConflict'),
    'condition_failed',
  ],
  // internal: bugs, bad deploys
  ['ValidationException', serviceError('ValidationException', 400), 'internal'],
  [
    'ResourceNotFoundException',
    new ResourceNotFoundException({ message: 'Requested resource not found', $metadata }),
    'internal',
  ],
  ['AccessDeniedException', serviceError('AccessDeniedException', 400), 'internal'],
  ['a transaction cancelled for a ValidationError', cancelled('None', 'ValidationError'), 'internal'],
  ['a ValidationError beside a throttled item', cancelled('ValidationError', 'ThrottlingError'), 'internal'],
  ['a TypeError', new TypeError("Cannot read properties of undefined (reading 'S')"), 'internal'],
  ['a plain Error', new Error('bug'), 'internal'],
  ['a thrown string', 'boom', 'internal'],
  ['undefined', undefined, 'internal'],
];

describe('classifyDynamoError', () => {
  it.each(cases.map(([name, error, expected]) => [`${name} → ${expected}`, error, expected] as const))(
    '%s',
    (_, error, expected) => {
      expect(classifyDynamoError(error)).toBe(expected);
      expect(isUnavailable(error)).toBe(expected === 'unavailable');
    },
  );
});

const noWait = (calls: number[]): ConflictRetryPolicy => ({
  ...CONFLICT_RETRY,
  sleep: async (ms) => {
    calls.push(ms);
  },
});

/** A send that fails with `errors` in turn, then answers `value`. */
function failing<T>(errors: unknown[], value: T) {
  let calls = 0;
  const send = async () => {
    calls++;
    const next = errors.shift();
    if (next !== undefined) throw next;
    return value;
  };
  return { send, calls: () => calls };
}

describe('callDynamo', () => {
  it('turns unavailability into a DependencyError carrying the cause', async () => {
    const cause = new ThrottlingException({ message: 'throttled', $metadata });
    const error = await callDynamo(failing([cause], 1).send).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyError);
    expect((error as Error).cause).toBe(cause);
  });

  it('lets a bug through as it is, not as a DependencyError', async () => {
    const cause = serviceError('ValidationException', 400);
    await expect(callDynamo(failing([cause], 1).send)).rejects.toBe(cause);
  });

  it('gives a failed condition back as it is, without retrying', async () => {
    const cause = cancelled('ConditionalCheckFailed', 'None');
    const sleeps: number[] = [];
    const call = failing([cause], 1);
    await expect(callDynamo(call.send, { conflicts: noWait(sleeps) })).rejects.toBe(cause);
    expect(call.calls()).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('retries conflicts with backoff and returns the answer', async () => {
    const sleeps: number[] = [];
    const call = failing(
      [
        cancelled('TransactionConflict', 'None'),
        new TransactionConflictException({ message: 'x', $metadata }),
      ],
      'ok',
    );
    await expect(callDynamo(call.send, { conflicts: noWait(sleeps) })).resolves.toBe('ok');
    expect(call.calls()).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it('gives up on conflicts after its retries with a ConflictError, never a DependencyError', async () => {
    const sleeps: number[] = [];
    const conflict = cancelled('None', 'TransactionConflict');
    const call = failing(
      Array.from({ length: 20 }, () => conflict),
      'never',
    );
    const error = await callDynamo(call.send, { conflicts: noWait(sleeps) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).cause).toBe(conflict);
    expect(call.calls()).toBe(CONFLICT_RETRY.retries + 1);
    expect(sleeps).toHaveLength(CONFLICT_RETRY.retries);
  });

  it('without a retry policy, a conflict is a ConflictError at once', async () => {
    const call = failing([cancelled('TransactionConflict')], 1);
    await expect(callDynamo(call.send)).rejects.toBeInstanceOf(ConflictError);
    expect(call.calls()).toBe(1);
  });

  it('waits with jitter, within a bound far below a Lambda timeout', () => {
    const low = { ...CONFLICT_RETRY, random: () => 0 };
    const high = { ...CONFLICT_RETRY, random: () => 0.999999 };
    for (let retry = 0; retry < CONFLICT_RETRY.retries; retry++) {
      const ceiling = Math.min(CONFLICT_RETRY.maxDelayMs, CONFLICT_RETRY.baseDelayMs * 2 ** retry);
      expect(conflictBackoffMs(retry, low)).toBe(ceiling / 2);
      expect(conflictBackoffMs(retry, high)).toBeLessThanOrEqual(ceiling);
      expect(conflictBackoffMs(retry, high)).toBeGreaterThan(conflictBackoffMs(retry, low));
    }
    expect(CONFLICT_RETRY.retries).toBeGreaterThanOrEqual(2);
    expect(maxConflictWaitMs(CONFLICT_RETRY)).toBeLessThanOrEqual(500);
  });
});

/**
 * A document client that never reaches the network: a middleware at `initialize` answers every
 * command (before the SDK's own retries), conflicting on TransactWriteItems/UpdateItem `conflicts`
 * times first.
 */
function scriptedClient(conflicts: number) {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    }),
  );
  const sent: string[] = [];
  let left = conflicts;
  client.middlewareStack.add(
    (_next, context) => async (args) => {
      const command = context.commandName ?? '';
      sent.push(command);
      const input = args.input as { Key?: Record<string, unknown> };
      if (command === 'GetItemCommand') {
        return {
          output: {
            $metadata: {},
            Item: { ...input.Key, name: 'k', status: 'active', createdAt: '2026-01-01T00:00:00.000Z' },
          },
          response: {},
        } as never;
      }
      if (left > 0) {
        left--;
        throw command.startsWith('TransactWrite')
          ? cancelled('TransactionConflict', 'None')
          : new TransactionConflictException({ message: 'Transaction is ongoing for the item', $metadata });
      }
      return {
        output: { $metadata: {}, Attributes: { ...input.Key, status: 'revoked' } },
        response: {},
      } as never;
    },
    { step: 'initialize', name: 'scriptedDynamo' },
  );
  return { client, writes: () => sent.filter((c) => !c.startsWith('Get')).length };
}

describe('KeyStore writes under conflicts', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  const ids = { accountId: 'acct_1', keyId: 'key_1' };
  const operations: Array<[string, (store: KeyStore) => Promise<unknown>]> = [
    ['createKey', (store) => store.createKey({ accountId: ids.accountId, name: 'k', now })],
    [
      'provisionAccount',
      (store) =>
        store.provisionAccount({ accountId: ids.accountId, email: 'a@example.com', userName: 'a', now }),
    ],
    ['revealKey', (store) => store.revealKey({ ...ids, now })],
    ['rollKey', (store) => store.rollKey({ ...ids, graceMs: 1000, now })],
    ['revokeKey', (store) => store.revokeKey({ ...ids, now })],
  ];
  const storeOver = (client: DynamoDBDocumentClient, sleeps: number[]) =>
    new KeyStore({
      client,
      accountsTable: 'accounts',
      keysTable: 'keys',
      keyPrefix: 'tg',
      conflictRetry: noWait(sleeps),
    });

  it.each(operations)('%s retries a conflict and succeeds', async (_, operation) => {
    const { client, writes } = scriptedClient(2);
    const sleeps: number[] = [];
    const result = (await operation(storeOver(client, sleeps))) as { ok?: boolean; created?: boolean };
    expect(result.ok ?? result.created).toBe(true);
    expect(writes()).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it.each(operations)(
    '%s ends in a ConflictError (not a DependencyError) when conflicts never stop',
    async (_, operation) => {
      const { client, writes } = scriptedClient(Number.POSITIVE_INFINITY);
      const error = await operation(storeOver(client, [])).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConflictError);
      expect(error).not.toBeInstanceOf(DependencyError);
      expect(writes()).toBe(CONFLICT_RETRY.retries + 1);
    },
  );
});

describe('UsageStore.applyTransaction under conflicts (the same helper, its exactness unchanged)', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  const aggregate = {
    keyId: 'key_1',
    accountId: 'acct_1',
    day: '2026-11-21',
    events: [
      { id: 'e1', ts: now.getTime(), units: 1 },
      { id: 'e2', ts: now.getTime(), units: 1 },
      { id: 'e3', ts: now.getTime(), units: 1 },
    ],
  };
  // The aggregate as the consumer hands it over: one part of one transaction.
  const parts = [{ owner: aggregate, events: aggregate.events, recordIds: [] }];

  /** Answers each TransactWriteItems with the next scripted error, or success once they run out. */
  function scripted(script: Array<() => Error>) {
    const client = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:9',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      }),
    );
    const sent: number[] = [];
    client.middlewareStack.add(
      () => async (args) => {
        sent.push((args.input as { TransactItems: unknown[] }).TransactItems.length);
        const next = script.shift();
        if (next) throw next();
        return { output: { $metadata: {} }, response: {} } as never;
      },
      { step: 'initialize', name: 'scriptedTransactions' },
    );
    const sleeps: number[] = [];
    const store = new UsageStore({
      client,
      table: 'usage',
      conflictRetry: { ...METERING_CONFLICT_RETRY, sleep: async (ms) => void sleeps.push(ms) },
    });
    return { store, sent, sleeps };
  }
  // Three marks, then the key's day counter (the one counter an event adds to), then the account's
  // period item (the quota's one-item read), which every transaction carries last.
  const conflictOnCounter = () => cancelled('None', 'None', 'None', 'TransactionConflict', 'None');

  it('retries a conflicting transaction and counts every event once', async () => {
    const { store, sent, sleeps } = scripted([conflictOnCounter, conflictOnCounter]);
    const result = await store.applyTransaction(parts, now);
    expect(result).toEqual({ counted: 3, duplicates: 0, units: 3, writeRequests: 3 });
    expect(sent).toEqual([5, 5, 5]);
    expect(sleeps).toHaveLength(2);
  });

  it('still drops the events already counted (a failed mark) and sends the rest', async () => {
    const { store, sent } = scripted([
      conflictOnCounter,
      () => cancelled('None', 'ConditionalCheckFailed', 'None', 'None', 'None'),
      conflictOnCounter,
    ]);
    const result = await store.applyTransaction(parts, now);
    expect(result).toEqual({ counted: 2, duplicates: 1, units: 2, writeRequests: 4 });
    expect(sent).toEqual([5, 5, 4, 4]);
  });

  it('fails the aggregate (for redelivery) with a ConflictError when conflicts outlast the retries', async () => {
    const { store, sent } = scripted(Array.from({ length: 50 }, () => conflictOnCounter));
    const error = await store.applyTransaction(parts, now).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect(sent).toHaveLength(METERING_CONFLICT_RETRY.retries + 1);
  });

  it('fails with a DependencyError when throttled, and lets a ValidationException through as a bug', async () => {
    const throttled = scripted([() => cancelled('None', 'None', 'None', 'ThrottlingError', 'None')]);
    await expect(throttled.store.applyTransaction(parts, now)).rejects.toBeInstanceOf(DependencyError);
    const invalid = serviceError('ValidationException', 400);
    const buggy = scripted([() => invalid]);
    await expect(buggy.store.applyTransaction(parts, now)).rejects.toBe(invalid);
  });
});
