import type { Counts } from './sdk-counter';

/** The counts of one service (sdk-counter keys start with it: `DynamoDB.`, `SQS.`, `Kinesis.`). */
export function pick(counts: Counts, prefix: string): Counts {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(prefix)));
}

/** DynamoDB figures of a set of requests (sdk-counter keys), as AWS bills them. */
export function dynamoFigures(dynamodb: Counts) {
  const n = (key: string) => dynamodb[key] ?? 0;
  const otherWrites = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem'];
  const otherWriteUnits = otherWrites.reduce((sum, op) => sum + n(`DynamoDB.${op}.capacityUnits`), 0);
  const readOps = ['GetItem', 'Query', 'BatchGetItem', 'Scan'];
  return {
    writeRequests:
      n('DynamoDB.TransactWriteItems') + otherWrites.reduce((sum, op) => sum + n(`DynamoDB.${op}`), 0),
    // AWS bills 2 units per transactional item (all of them are under 1 KB); the rest as DynamoDB reports.
    writeUnits: 2 * n('DynamoDB.TransactWriteItems.items') + otherWriteUnits,
    engineWriteUnits: n('DynamoDB.TransactWriteItems.capacityUnits') + otherWriteUnits,
    readRequests: readOps.reduce((sum, op) => sum + n(`DynamoDB.${op}`), 0),
    readUnits: readOps.reduce((sum, op) => sum + n(`DynamoDB.${op}.capacityUnits`), 0),
  };
}

/**
 * What a metering consumer's own SQS requests bill: receives that returned messages, deletes, and
 * dead-letter sends. Empty receives are left out: the local poller short-polls an empty queue every
 * 50 ms, where Lambda's pollers long-poll (a few requests a minute per poller, whatever the traffic).
 */
export function consumerSqsBilled(transport: Counts): number {
  const n = (key: string) => transport[key] ?? 0;
  return (
    n('SQS.ReceiveMessage') -
    n('SQS.ReceiveMessage.empty') +
    n('SQS.DeleteMessageBatch') +
    n('SQS.SendMessage.billedRequests') +
    n('SQS.SendMessageBatch.billedRequests')
  );
}
