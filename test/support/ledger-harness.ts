import { CreateTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { usageTable } from '../../contracts/resources';
import {
  newProducerId,
  newUsageEvent,
  ProducerSequence,
  type UsageEvent,
  utcDay,
} from '../../contracts/usage-event';
import { createTableInput } from '../../infra/local/resources/tables';
import type { FlushProfile } from '../../services/metering/ledger/ledger';
import { RangeSet } from '../../services/metering/ledger/range-set';
import type { Clock } from '../../services/platform/clock';
import { keyDayCounter } from '../../services/usage/counter-keys';
import { pendJournalId } from '../../services/usage/ledger-port';
import { DynamoLedgerStore, SQS_LEDGER_NAME } from '../../services/usage/ledger-store';
import { localClients } from './local-stack';
import { accountOf, meteringConsumer } from './metering-consumer';

// The SQS ledger's fault tests (test/integ/ledger-faults*.integ.test.ts): each case on a usage
// table of its own, so its ledger (head, DONE, journals, archives) starts empty and nothing another
// case or file does moves it; consumers as separate containers (clients of their own) whose
// requests to the ledger's items are counted and may be faulted or cut off.

/** A clock a test moves instead of sleeping (lease, archive idle time, reorder horizon, late window). */
export class MovableClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

export type LedgerRequestKind = 'head' | 'journal' | 'archive' | 'counter' | 'done' | 'read' | 'other';

/** Which of the ledger's writes (or reads) a low-level DynamoDB request is. */
export function requestKind(command: string, input: unknown): LedgerRequestKind {
  const text = JSON.stringify(input);
  if (command === 'GetItemCommand' || command === 'BatchGetItemCommand') return 'read';
  if (command === 'PutItemCommand') {
    if (text.includes(`"LEDGER#${SQS_LEDGER_NAME}#J#`)) return 'journal';
    if (text.includes(`"LEDGER#${SQS_LEDGER_NAME}#P#`)) return 'archive';
    if (text.includes(`"LEDGER#${SQS_LEDGER_NAME}"`) && text.includes('"HEAD"')) return 'head';
  }
  if (command === 'UpdateItemCommand') {
    if (text.includes(`"LEDGER#${SQS_LEDGER_NAME}"`) && text.includes('"DONE"')) return 'done';
    if (text.includes(`"wm#${SQS_LEDGER_NAME}"`)) return 'counter';
  }
  return 'other';
}

export interface LedgerRequest {
  kind: LedgerRequestKind;
  command: string;
  input: unknown;
}

/** The container died: thrown for the request it died at and every one after. */
export class CrashError extends Error {}

interface Tally {
  /** Answered by the engine with success. */
  ok: number;
  /** Refused by their condition (ConditionalCheckFailedException). */
  refused: number;
  /** Any other error, injected ones included. */
  failed: number;
}

/**
 * Counts a client's requests by ledger kind and outcome, and lets a test put a fault in front of
 * them: `fault` decides how each request is sent (`send` reaches the engine, and is what the
 * tallies count). `crash` kills the container at a request, before or after it was sent.
 */
export class LedgerTap {
  readonly tallies = new Map<LedgerRequestKind, Tally>();
  fault?: (request: LedgerRequest, send: () => Promise<unknown>) => Promise<unknown>;
  crashed = false;
  /** Requests sent and not answered yet (a crash does not stop those already on the wire). */
  inFlight = 0;

  constructor(client: DynamoDBClient) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = {
          kind: requestKind(context.commandName ?? '?', args.input),
          command: context.commandName ?? '?',
          input: args.input,
        };
        const send = async () => {
          const tally = this.tally(request.kind);
          this.inFlight++;
          try {
            const out = await next(args);
            tally.ok++;
            return out;
          } catch (error) {
            if ((error as Error).name === 'ConditionalCheckFailedException') tally.refused++;
            else tally.failed++;
            throw error;
          } finally {
            this.inFlight--;
          }
        };
        if (this.crashed) throw new CrashError('the container is gone');
        return (await (this.fault ? this.fault(request, send) : send())) as Awaited<ReturnType<typeof next>>;
      },
      { step: 'initialize', name: 'ledgerTap' },
    );
  }

  /** Resolves once every request sent has its answer. */
  async idle(): Promise<void> {
    while (this.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  tally(kind: LedgerRequestKind): Tally {
    let tally = this.tallies.get(kind);
    if (!tally) {
      tally = { ok: 0, refused: 0, failed: 0 };
      this.tallies.set(kind, tally);
    }
    return tally;
  }

  /**
   * Kills the container at the first request `when` names: 'before' it is sent, or 'after' its
   * answer came back (it took effect, nobody learns of it). Every request after throws too.
   */
  crash(when: (request: LedgerRequest) => 'before' | 'after' | undefined): void {
    this.fault = async (request, send) => {
      const at = when(request);
      if (at === 'after') await send();
      if (at !== undefined) {
        this.crashed = true;
        throw new CrashError(`crashed ${at} a ${request.kind} request`);
      }
      return send();
    };
  }
}

/** The SQS event Lambda would hand over for these bodies (message ids default to the events' ids). */
export function sqsEvent(events: readonly UsageEvent[], messageIds?: readonly string[]): SQSEvent {
  return {
    Records: events.map((event, i) => ({
      messageId: messageIds?.[i] ?? event.id,
      body: JSON.stringify(event),
      eventSource: 'aws:sqs',
    })),
  } as unknown as SQSEvent;
}

let producers = 0;

/** A gate container of a test: its producer id and numbering. */
export function testProducer() {
  const id = newProducerId();
  const sequence = new ProducerSequence();
  const label = producers++;
  return {
    id,
    /** `count` numbered events of `keyId` at `at` (the producer's clock). */
    events(count: number, keyId: string, at: Date = new Date()): UsageEvent[] {
      return Array.from({ length: count }, () =>
        newUsageEvent({
          keyId,
          accountId: accountOf(keyId),
          now: at,
          producerId: id,
          sequence: sequence.next(at.getTime(), at.getTime()),
        }),
      );
    },
    /** Seqs taken and never published (a publish that failed for good). */
    skip(count: number, at: Date = new Date()): void {
      for (let i = 0; i < count; i++) sequence.next(at.getTime(), at.getTime());
    },
    label,
  };
}

let tables = 0;
let keys = 0;

/** A fresh key id (its account is accountOf(key)). */
export const newKey = (label = 'lf') => `key_${label}_${process.pid}_${Date.now()}_${keys++}`;

/**
 * A usage table of the case's own (the usage table's definition, DynamoDB Local), and what the case
 * composes and reads on it: consumers (containers) with their taps, the ledger's state, totals.
 */
export async function ledgerFixture(dlqUrl: string) {
  const clients = localClients();
  const input = createTableInput(`lf-${process.pid}-${Date.now()}-${tables++}`, usageTable);
  await clients.dynamo.send(new CreateTableCommand(input));
  const table = input.TableName as string;
  const store = new DynamoLedgerStore({
    client: clients.doc,
    table,
    name: SQS_LEDGER_NAME,
    archiveTtlMs: 3_600_000,
  });
  const reader = meteringConsumer('sqs', dlqUrl, undefined, { usageTable: table }).usage;

  /** A metering container on this table: its own clients, tapped. */
  function container(
    options: { flush?: FlushProfile; clock?: Clock; dlqUrl?: string; usageQueueUrl?: string } = {},
  ) {
    const own = localClients();
    const tap = new LedgerTap(own.dynamo);
    const consumer = meteringConsumer('sqs', options.dlqUrl ?? dlqUrl, undefined, {
      dynamo: own.doc,
      usageTable: table,
      ...(options.flush ? { ledgerFlush: options.flush } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.usageQueueUrl ? { usageQueueUrl: options.usageQueueUrl } : {}),
    });
    const backstop = async () => {
      const run = consumer.metering.ledgerBackstop;
      if (!run) throw new Error('no ledger in this consumer');
      return run();
    };
    return { ...consumer, tap, backstop };
  }

  async function scan(prefix: string) {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await clients.doc.send(
        new ScanCommand({
          TableName: table,
          FilterExpression: 'begins_with(pk, :p)',
          ExpressionAttributeValues: { ':p': prefix },
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** The ledger as stored: head, DONE.through, journal ids, archived producers. */
  async function state() {
    const head = await store.readHead();
    const done = await store.readDone();
    const journals = (await scan(`LEDGER#${SQS_LEDGER_NAME}#J#`)).map((i) =>
      String(i.pk).slice(`LEDGER#${SQS_LEDGER_NAME}#J#`.length),
    );
    return { head, done, journals };
  }

  /** Ids of the journals the head names. */
  const named = (pend: Record<number, string>) => Object.values(pend).map(pendJournalId);

  /** A producer's range as the head holds it (undefined when it is not in the head). */
  async function rangeOf(pid: string) {
    const encoded = (await store.readHead()).prod[pid];
    return encoded === undefined ? undefined : RangeSet.decode(encoded);
  }

  /** A key's exact counts: today's key-day counter, its all-time total, its account's month. */
  async function totals(keyId: string, at: Date = new Date()) {
    const accountId = accountOf(keyId);
    return {
      day: await reader.keyDayCount(accountId, keyId, utcDay(at.getTime())),
      total: (await reader.keyTotals(accountId)).get(keyId)?.count ?? 0,
      month: await reader.usedInPeriod(accountId, 'month', at),
    };
  }

  /** The ledger watermark on a key's day counter. */
  async function watermark(keyId: string, at: Date = new Date()) {
    const out = await clients.doc.send(
      new GetCommand({
        TableName: table,
        Key: keyDayCounter(accountOf(keyId), keyId, utcDay(at.getTime())),
        ConsistentRead: true,
      }),
    );
    return out.Item?.[`wm#${SQS_LEDGER_NAME}`] as number | undefined;
  }

  return { table, store, container, state, named, rangeOf, totals, watermark, scan, reader };
}

export type LedgerFixture = Awaited<ReturnType<typeof ledgerFixture>>;
