import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';

/**
 * Counts every AWS SDK request this process sends, by service and operation, at the client: a
 * middleware on each client's stack, so what the benchmark reports is what AWS would bill, not what
 * the code meant to send. It sits in the deserialize step, inside the SDK's retry loop, so each
 * attempt counts (AWS bills attempts), outside the deserializer so it sees the parsed answer.
 *
 * The handlers under test build their clients inside their compose functions, out of reach; so
 * instead of wrapping given clients (as test/support/aws.ts does), this patches `send` on the SDK's shared
 * client base class to add the middleware to every client on its first request. Benchmark-only.
 *
 * It also asks DynamoDB for the capacity each request consumed (ReturnConsumedCapacity INDEXES, added
 * to requests that did not ask themselves; it changes nothing else) and adds it up. DynamoDB Local
 * answers with table and index units; for transactions it reports one unit per item where AWS bills
 * two, so the report takes transactional write units from the item count.
 *
 * Keys are flat, e.g. `DynamoDB.TransactWriteItems` (requests), `DynamoDB.TransactWriteItems.items`,
 * `DynamoDB.UpdateItem.capacityUnits`, `SQS.SendMessage.bytes`, so two snapshots subtract key by key.
 */
export type Counts = Record<string, number>;

const counts: Counts = {};
let installed = false;

function add(key: string, value = 1): void {
  counts[key] = (counts[key] ?? 0) + value;
}

/** Size of a marshalled DynamoDB value, by DynamoDB's item-size rules (close enough for numbers). */
function valueSize(value: unknown): number {
  if (!value || typeof value !== 'object') return 0;
  const v = value as Record<string, unknown>;
  if (typeof v.S === 'string') return Buffer.byteLength(v.S);
  if (typeof v.N === 'string') return Math.ceil(v.N.replace(/^-/, '').replace('.', '').length / 2) + 1;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.B instanceof Uint8Array) return v.B.byteLength;
  if (Array.isArray(v.L)) return 3 + v.L.reduce((sum: number, item) => sum + 1 + valueSize(item), 0);
  if (v.M && typeof v.M === 'object') return 3 + itemSize(v.M as Record<string, unknown>);
  return 0;
}

/** Bytes of a marshalled item: attribute names plus values (DynamoDB adds 100 bytes of overhead on storage). */
export function itemSize(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function recordInput(service: string, op: string, input: Record<string, unknown>): void {
  const key = `${service}.${op}`;
  add(key);
  if (service === 'DynamoDB' && op === 'TransactWriteItems') {
    const items = (input.TransactItems as Array<Record<string, { Item?: Record<string, unknown> }>>) ?? [];
    add(`${key}.items`, items.length);
    for (const action of items) {
      const [kind, body] = Object.entries(action)[0] ?? [];
      if (!kind) continue;
      add(`${key}.${kind}`);
      if (kind === 'Put' && body?.Item) add(`${key}.Put.bytes`, itemSize(body.Item));
    }
  }
  if (service === 'SQS' && op === 'SendMessage') {
    const bytes = Buffer.byteLength(String(input.MessageBody ?? ''));
    add(`${key}.bytes`, bytes);
    // SQS bills every 64 KB chunk of a payload as one request.
    add(`${key}.billedRequests`, Math.max(1, Math.ceil(bytes / 65_536)));
  }
  if (service === 'SQS' && (op === 'SendMessageBatch' || op === 'DeleteMessageBatch')) {
    add(`${key}.entries`, ((input.Entries as unknown[]) ?? []).length);
  }
  if (service === 'SQS' && op === 'SendMessageBatch') {
    const entries = (input.Entries as Array<{ MessageBody?: string }>) ?? [];
    const bytes = entries.reduce((sum, e) => sum + Buffer.byteLength(String(e.MessageBody ?? '')), 0);
    add(`${key}.bytes`, bytes);
    // A batch is one request per 64 KB of its total payload.
    add(`${key}.billedRequests`, Math.max(1, Math.ceil(bytes / 65_536)));
  }
  if (service === 'Kinesis' && op === 'PutRecords') {
    const records = (input.Records as Array<{ Data?: Uint8Array; PartitionKey?: string }>) ?? [];
    add(`${key}.records`, records.length);
    for (const record of records) {
      const bytes = (record.Data?.byteLength ?? 0) + Buffer.byteLength(String(record.PartitionKey ?? ''));
      add(`${key}.bytes`, bytes);
      add(`${key}.payloadUnits`, Math.max(1, Math.ceil(bytes / 25_600)));
    }
  }
  if (service === 'Kinesis' && op === 'PutRecord') {
    const data = input.Data as Uint8Array | undefined;
    const bytes = (data?.byteLength ?? 0) + Buffer.byteLength(String(input.PartitionKey ?? ''));
    add(`${key}.bytes`, bytes);
    // One PUT payload unit per 25 KB of a record.
    add(`${key}.payloadUnits`, Math.max(1, Math.ceil(bytes / 25_600)));
  }
}

const CAPACITY_OPS = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchGetItem',
  'BatchWriteItem',
  'TransactGetItems',
  'TransactWriteItems',
]);

function recordOutput(service: string, op: string, output: Record<string, unknown> | undefined): void {
  if (!output) return;
  const key = `${service}.${op}`;
  if (service === 'DynamoDB' && output.ConsumedCapacity) {
    const consumed = [output.ConsumedCapacity].flat() as Array<{ CapacityUnits?: number }>;
    add(
      `${key}.capacityUnits`,
      consumed.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0),
    );
  }
  if (service === 'SQS' && op === 'ReceiveMessage') {
    const received = ((output.Messages as unknown[]) ?? []).length;
    add(`${key}.messages`, received);
    if (received === 0) add(`${key}.empty`);
  }
  if (service === 'Kinesis' && op === 'GetRecords') {
    const records = ((output.Records as unknown[]) ?? []).length;
    add(`${key}.records`, records);
    if (records === 0) add(`${key}.empty`);
  }
}

// The middleware types differ per client only in input and output shapes, which this ignores.
type Next = (args: { input: Record<string, unknown> }) => Promise<{ output?: Record<string, unknown> }>;
type Context = { clientName?: string; commandName?: string };

const countingMiddleware =
  (next: Next, context: Context) => async (args: { input: Record<string, unknown> }) => {
    const service = (context.clientName ?? '?').replace(/Client$/, '');
    const op = (context.commandName ?? '?').replace(/Command$/, '');
    recordInput(service, op, args.input ?? {});
    let failed = true;
    try {
      const result = await next(args);
      failed = false;
      recordOutput(service, op, result.output);
      return result;
    } catch (error) {
      recordRefusedWrite(service, op, args.input ?? {}, error);
      throw error;
    } finally {
      if (failed) add(`${service}.${op}.errors`);
    }
  };

/**
 * A conditional PutItem or UpdateItem whose condition was false still consumes write capacity on
 * AWS ("dependent on the size of the existing item, or a minimum of 1"), and DynamoDB Local reports
 * none for it: the ledger's lost head races and its counters' refused repeats must still cost. A
 * Put is taken at the size it would have written (the head it lost to is about as large); an
 * Update at 1 unit (the items it conditions, counters and DONE, are under 1 KB).
 */
function recordRefusedWrite(service: string, op: string, input: Record<string, unknown>, error: unknown) {
  if (service !== 'DynamoDB' || (error as { name?: string })?.name !== 'ConditionalCheckFailedException')
    return;
  const key = `${service}.${op}`;
  add(`${key}.conditionFailed`);
  if (op === 'PutItem') {
    const item = input.Item as Record<string, unknown> | undefined;
    add(`${key}.capacityUnits`, Math.max(1, Math.ceil((item ? itemSize(item) : 0) / 1024)));
  } else if (op === 'UpdateItem') add(`${key}.capacityUnits`, 1);
}

const consumedCapacityMiddleware =
  (next: Next, context: Context) => async (args: { input: Record<string, unknown> }) => {
    const op = (context.commandName ?? '').replace(/Command$/, '');
    if (
      context.clientName !== 'DynamoDBClient' ||
      !CAPACITY_OPS.has(op) ||
      args.input.ReturnConsumedCapacity
    ) {
      return next(args);
    }
    return next({ ...args, input: { ...args.input, ReturnConsumedCapacity: 'INDEXES' } });
  };

interface PatchableClient {
  middlewareStack: {
    add(middleware: unknown, options: { step: string; name: string; priority?: string }): void;
  };
}

/** Idempotent. Call before the modules under test send their first request. */
export function installSdkCounter(): void {
  if (installed) return;
  installed = true;
  const bases = new Set(
    [DynamoDBClient, SQSClient, KinesisClient].map(
      (client) => Object.getPrototypeOf(client.prototype) as { send: (...args: unknown[]) => unknown },
    ),
  );
  for (const base of bases) {
    const send = base.send;
    // DynamoDBDocumentClient shares its stack with the client it wraps: one middleware per stack.
    const patched = new WeakSet<object>();
    base.send = function (this: PatchableClient, ...args: unknown[]) {
      const stack = this.middlewareStack;
      if (!patched.has(stack)) {
        patched.add(stack);
        stack.add(countingMiddleware, { step: 'deserialize', priority: 'high', name: 'benchCountRequests' });
        stack.add(consumedCapacityMiddleware, { step: 'initialize', name: 'benchConsumedCapacity' });
      }
      return send.apply(this, args);
    };
  }
}

/** A copy of the counts so far. */
export function snapshotCounts(): Counts {
  return { ...counts };
}

/** after - before, key by key (zeros left out). */
export function diffCounts(after: Counts, before: Counts): Counts {
  const diff: Counts = {};
  for (const [key, value] of Object.entries(after)) {
    const delta = value - (before[key] ?? 0);
    if (delta !== 0) diff[key] = delta;
  }
  return diff;
}

/** Sum of several count sets. */
export function sumCounts(...sets: Counts[]): Counts {
  const sum: Counts = {};
  for (const set of sets) for (const [key, value] of Object.entries(set)) sum[key] = (sum[key] ?? 0) + value;
  return sum;
}
