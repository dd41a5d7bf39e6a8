import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseHourAttribute } from '../../services/usage/counter-keys';
import { dynamoItemSize, type Marshalled } from './item-size';

/** One read request as DynamoDB answered it: what it billed and what it read. */
export interface ReadPage {
  readonly op: string;
  readonly table: string;
  readonly consistent: boolean;
  /** ConsumedCapacity.CapacityUnits as the engine reported it (ReturnConsumedCapacity TOTAL). */
  readonly engineUnits: number;
  readonly items: number;
  /** The page's items' sizes (item-size.ts), and the same items without their hour attributes. */
  readonly bytes: number;
  readonly bytesWithoutHours: number;
}

/** Read units of a page of `bytes`, as DynamoDB bills a Query: the page's items summed, per 4 KB, halved if eventually consistent. */
export const queryUnits = (bytes: number, consistent: boolean) =>
  (consistent ? 1 : 0.5) * Math.max(1, Math.ceil(bytes / 4096));

const withoutHours = (item: Marshalled): Marshalled =>
  Object.fromEntries(Object.entries(item).filter(([name]) => parseHourAttribute(name) === undefined));

type Args = { input: Record<string, unknown> };
type Next = (args: Args) => Promise<{ output?: Record<string, unknown> }>;
type Context = { commandName?: string };

/**
 * Records every read a client sends: asks DynamoDB for its consumed capacity (TOTAL, unless the
 * request asked itself) and keeps, per request, the engine's units and the sizes of the items it
 * read, so the bench can check the engine's figure against the client-side one (queryUnits).
 * Only for a document client (it hooks in under the client's unmarshalling).
 */
export function recordReads(client: DynamoDBDocumentClient): ReadPage[] {
  const pages: ReadPage[] = [];
  const ask = (next: Next) => async (args: Args) =>
    next(
      args.input.ReturnConsumedCapacity
        ? args
        : { ...args, input: { ...args.input, ReturnConsumedCapacity: 'TOTAL' } },
    );
  const record = (next: Next, context: Context) => async (args: Args) => {
    const result = await next(args);
    const op = (context.commandName ?? '?').replace(/Command$/, '');
    const out = result.output ?? {};
    const items = ((out.Items as Marshalled[] | undefined) ??
      (out.Item ? [out.Item as Marshalled] : [])) as Marshalled[];
    const consumed = [out.ConsumedCapacity ?? []].flat() as Array<{ CapacityUnits?: number }>;
    pages.push({
      op,
      table: String(args.input.TableName ?? ''),
      consistent: args.input.ConsistentRead === true,
      engineUnits: consumed.reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0),
      items: items.length,
      bytes: items.reduce((sum, item) => sum + dynamoItemSize(item), 0),
      bytesWithoutHours: items.reduce((sum, item) => sum + dynamoItemSize(withoutHours(item)), 0),
    });
    return result;
  };
  const stack = client.middlewareStack as unknown as {
    add(middleware: unknown, options: { step: string; name: string; priority?: string }): void;
    addRelativeTo(
      middleware: unknown,
      options: { relation: string; toMiddleware: string; name: string },
    ): void;
  };
  stack.add(ask, { step: 'initialize', name: 'benchAskConsumedCapacity', priority: 'high' });
  // Between the deserializer and the document client's unmarshalling: the items still as stored.
  stack.addRelativeTo(record, {
    relation: 'after',
    toMiddleware: 'DocumentUnmarshall',
    name: 'benchRecordReads',
  });
  return pages;
}
