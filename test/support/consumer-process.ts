import { Logger } from '@aws-lambda-powertools/logger';
import type { SQSEvent } from 'aws-lambda';
import { ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { LEDGER_BACKSTOP_EVENT, LEDGER_BACKSTOP_INTERVAL_SECONDS } from '../../contracts/resources';
import { SqsPoller } from '../../infra/local/pollers/sqs-poller';
import type { Endpoints } from '../../infra/local/stack';
import { composeMetering } from '../../services/metering/compose';
import { loadMeteringConfig } from '../../services/metering/config';
import { aroundRequests, documentClient, type EngineClients, engineClients } from './aws';
import type { Tables } from './key-api';
import { requestKind } from './ledger-harness';
import { drainingMetrics, type MetricTotals } from './metrics';
import type { TestQueue } from './queues';
import { keySeeder } from './seed-keys';
import { sleep } from './wait';

/** What every consumer process sharing it has done (outcomes as the consumer reported them). */
export interface ConsumerTally {
  batches: number;
  counted: number;
  duplicates: number;
  deadLettered: number;
  /** Batches whose process died after some writes and before acknowledging. */
  crashedBatches: number;
  /** `kill()`s that landed mid-batch: the process died right after a counter write committed. */
  killsLanded: number;
  /** The consumers' Powertools metrics, summed by name. */
  metrics: MetricTotals;
}

export function newTally(): ConsumerTally {
  return {
    batches: 0,
    counted: 0,
    duplicates: 0,
    deadLettered: 0,
    crashedBatches: 0,
    killsLanded: 0,
    metrics: new Map(),
  };
}

/**
 * One metering consumer "process" (a Lambda container): composed by composeMetering over SDK
 * clients of its own, fed by its own poller that behaves like the SQS event source mapping.
 * `kill()` makes it die the way a crashed Lambda does at its worst moment: right after its next
 * write that counts a batch lands (a mark path transaction, or the ledger's head commit), every
 * further call it makes fails, the batch in hand is never acknowledged, and the process is gone —
 * so the redelivered copies must be dropped. (A death before the commit, an orphan journal, is
 * the fault tests' F1.) While alive it runs the ledger's backstop as the deployment's schedule does.
 */
/** A write after which the batch's events are counted: a mark path transaction, a ledger head write. */
const counts = (command: string, input: unknown) =>
  command === 'TransactWriteItemsCommand' || requestKind(command, input) === 'head';

const KILL_WAIT_MS = 10_000;

export class ConsumerProcess {
  /** Its real SDK clients; a test may add faults to them before `start()`. */
  readonly clients: EngineClients;
  readonly #poller: SqsPoller;
  readonly #tally: ConsumerTally;
  readonly #backstop: () => Promise<unknown>;
  #backstopTimer: NodeJS.Timeout | undefined;
  #dead = false;
  #dieAfterNextWrite = false;

  constructor(options: {
    endpoints: Endpoints;
    queue: TestQueue;
    tables: Tables;
    tally: ConsumerTally;
    /** @default 100 */
    batchSize?: number;
    /** @default 200 */
    batchingWindowMs?: number;
  }) {
    const { tally } = options;
    this.#tally = tally;
    this.clients = engineClients(options.endpoints);
    for (const client of [this.clients.dynamo, this.clients.sqs]) {
      aroundRequests(client, async (command, send, input) => {
        if (this.#dead) throw new Error('consumer process killed');
        const answer = await send();
        if (this.#dieAfterNextWrite && counts(command, input)) this.#dead = true;
        return answer;
      });
    }
    const metering = composeMetering(
      loadMeteringConfig({
        [ENV.usageTable]: options.tables.usage,
        [ENV.keysTable]: options.tables.keys,
        [ENV.usageDlqUrl]: options.queue.dlqUrl,
        [ENV.usageQueueUrl]: options.queue.queueUrl,
        [ENV.transport]: 'sqs',
      }),
      {
        clients: {
          dynamo: documentClient(this.clients.dynamo),
          sqs: this.clients.sqs,
          kinesis: this.clients.kinesis,
        },
        logger: new Logger({ serviceName: SERVICE_NAMES.metering, logLevel: 'SILENT' }),
        metrics: drainingMetrics(SERVICE_NAMES.metering, tally.metrics),
      },
    );
    this.#backstop = () => metering.handler(LEDGER_BACKSTOP_EVENT).catch(() => undefined);
    const seed = keySeeder(documentClient(engineClients(options.endpoints).dynamo), options.tables.keys);
    this.#poller = new SqsPoller({
      sqs: this.clients.sqs,
      queueUrl: options.queue.queueUrl,
      queueArn: options.queue.queueArn,
      region: options.endpoints.region,
      batchSize: options.batchSize ?? 100,
      batchingWindowMs: options.batchingWindowMs ?? 200,
      handler: async (event: SQSEvent) => {
        // Keys for synthetic events, through a client the faults and the kill do not touch.
        await seed(event.Records.map((r) => r.body));
        let result: Awaited<ReturnType<typeof metering.handleBatch>>;
        try {
          result = await metering.handleBatch(event);
        } catch (error) {
          // A batch whose calls failed once the process died: crashed all the same.
          if (this.#dead) tally.crashedBatches++;
          throw error;
        }
        const { response, outcome } = result;
        tally.batches++;
        tally.counted += outcome.counted;
        tally.duplicates += outcome.duplicates;
        tally.deadLettered += outcome.deadLettered;
        if (this.#dead) {
          tally.crashedBatches++;
          throw new Error('consumer died mid-batch');
        }
        return response;
      },
      onError: () => {},
    });
  }

  start(): this {
    this.#poller.start();
    this.#backstopTimer = setInterval(() => {
      if (!this.#dead) void this.#backstop();
    }, LEDGER_BACKSTOP_INTERVAL_SECONDS * 1000);
    this.#backstopTimer.unref();
    return this;
  }

  /** @returns whether it died in the middle of a batch (after a write, before acknowledging). */
  async kill(): Promise<{ midBatch: boolean }> {
    this.#dieAfterNextWrite = true;
    // Long enough for the next commit whatever the batch is doing: it may wait a second for a flush
    // in progress, or for the batching window of a poller with nothing in hand, before it commits.
    const deadline = Date.now() + KILL_WAIT_MS;
    while (!this.#dead && Date.now() < deadline) await sleep(5);
    const midBatch = this.#dead;
    if (midBatch) this.#tally.killsLanded++;
    this.#dead = true;
    await this.stop();
    return { midBatch };
  }

  async stop(): Promise<void> {
    clearInterval(this.#backstopTimer);
    await this.#poller.stop();
    this.clients.dynamo.destroy();
    this.clients.sqs.destroy();
    this.clients.kinesis.destroy();
  }
}
