import { Duration, Lazy, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULT_ACCEPTANCE_WINDOW, ENV } from '../../../contracts/config';
import { type UsageRedelivery, usageRedelivery } from '../../../contracts/redelivery';
import { queueName, streamName, usageQueue, usageStream } from '../../../contracts/resources';
import type { Transport } from '../../../contracts/transport';
import type { TollgateFunction } from './tollgate-function';

export interface UsageTransportProps {
  /** Part of the queue and stream names. */
  readonly stage: string;
  /** SQS for most; Kinesis for high volume with per-key ordering. */
  readonly transport: Transport;
  /**
   * Most records handed to one metering invocation: larger batches mean bigger aggregates and so
   * fewer counter writes per event (docs/metering.md). The local pollers use the same setting.
   * @default the transport's eventSource.batchSize in contracts/resources.ts (10,000)
   */
  readonly batchSize?: number;
  /**
   * How long the event source gathers records before invoking metering: adds to usage lag. The
   * stack sets the SQS ledger's flush profile's (LEDGER_QUEUE_BATCHING_WINDOW_SECONDS).
   * @default the transport's eventSource.maxBatchingWindowSeconds (1 s)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Kinesis only: provisioned shards, or `on-demand`.
   * @default usageStream.shardCount
   */
  readonly kinesisShards?: number | 'on-demand';
  /**
   * Metering's late window: the redelivery and every retention are derived from it
   * (contracts/redelivery.ts), and metering is configured with it (TOLLGATE_LATE_WINDOW_MS).
   * @default DEFAULT_ACCEPTANCE_WINDOW.lateMs (48 h)
   */
  readonly lateWindowMs?: number;
}

/**
 * Most metering batches in flight at once from the usage queue (the SQS event source's
 * MaximumConcurrency). Every batch commits through the one ledger head, a read-modify-write that
 * serializes: docs/metering.md ("Head contention on AWS") finds one head carries 1,000 events/s at
 * 5 pollers with up to a fifth of the attempts losing a race, and collapses near 100, which an
 * event source left alone passes during a backlog (it scales to 1,250). Five still carry tens of
 * thousands of events a second (a full batch is 10,000 records).
 */
export const SQS_CONSUMER_MAX_CONCURRENCY = 5;

/** What publishing a usage event is, per transport: the only actions the resource policies restrict. */
export const PUBLISH_ACTIONS = {
  sqs: ['sqs:SendMessage'],
  kinesis: ['kinesis:PutRecord', 'kinesis:PutRecords'],
} as const satisfies Record<Transport, readonly string[]>;

/** What the redrive role may do to the dead-letter queue: read, put back when it cannot finish, delete. */
const REDRIVE_DLQ_ACTIONS = [
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibility',
  'sqs:GetQueueAttributes',
  'sqs:GetQueueUrl',
];

/**
 * How usage events travel from key-api to metering: an SQS queue (default) or a Kinesis stream,
 * always with an SQS dead-letter queue. Settings come from contracts/resources.ts and, for how long
 * usage waits and is kept, contracts/redelivery.ts (both as in the local stack). The queues are
 * encrypted (SSE-SQS) and refuse plain-HTTP access.
 *
 * Usage waits out an outage instead of being skipped: SQS delivers a message again every
 * visibility timeout until the late window minus the redrive margin, the Kinesis event source
 * retries until a record is that old; only then does usage reach the dead-letter queue, from where
 * `npm run usage:redrive` (through `redriveRole`) sends it back while the late window still takes it.
 */
export class UsageTransport extends Construct {
  readonly transport: Transport;
  /** Dead letters: records metering refused (with a reason) and, for SQS, poison messages. */
  readonly deadLetterQueue: sqs.Queue;
  /** Set when transport is `sqs`. */
  readonly queue?: sqs.Queue;
  /** Set when transport is `kinesis`. */
  readonly stream?: kinesis.Stream;
  /**
   * Kinesis only: the queue the redrive sends given-up stream records to. metering counts it like
   * the SQS transport (a dedupe mark per event), since a record put back on the stream would get a
   * new sequence number that no counter's watermark knows (services/metering/redrive.ts).
   */
  readonly redriveQueue?: sqs.Queue;
  /** Where the redrive sends usage back to metering: the usage queue, or on Kinesis the redrive queue. */
  readonly redriveTarget: sqs.Queue;
  /**
   * The role `npm run usage:redrive` assumes on AWS (any principal of this account allowed to
   * assume it): reads the dead-letter queue and the stream, publishes to `redriveTarget` (the
   * resource policy admits it beside the gates), reads counters (allowRedriveCounterReads).
   */
  readonly redriveRole: iam.Role;
  /** The settings derived from the late window. */
  readonly redelivery: UsageRedelivery;
  readonly #props: UsageTransportProps;
  /** Roles of the functions given allowPublish(): the only principals the resource policy lets publish. */
  readonly #publishers: iam.IRole[] = [];

  constructor(scope: Construct, id: string, props: UsageTransportProps) {
    super(scope, id);
    this.#props = props;
    this.transport = props.transport;
    this.redelivery = usageRedelivery(props.lateWindowMs ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs);
    const { queue: queueSettings, deadLetter, stream: streamSettings } = this.redelivery;

    // SSE-SQS rather than a customer key: messages are already private to the account, and a KMS
    // key would add a key charge plus kms:GenerateDataKey on every publish.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: queueName(props.stage, usageQueue, true),
      retentionPeriod: Duration.seconds(deadLetter.retentionSeconds),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This is the dead-letter queue itself (redrive target of the usage queue, Kinesis on-failure ' +
        "destination and metering's dead-letter sink); a dead letter of dead letters would only hide them.",
    });

    const meteredQueue = (id: string, name: string) =>
      new sqs.Queue(this, id, {
        queueName: name,
        visibilityTimeout: Duration.seconds(queueSettings.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(queueSettings.retentionSeconds),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: queueSettings.maxReceiveCount },
      });
    if (props.transport === 'sqs') {
      this.queue = meteredQueue('Queue', queueName(props.stage, usageQueue));
      this.redriveTarget = this.queue;
    } else {
      this.stream = new kinesis.Stream(this, 'Stream', {
        streamName: streamName(props.stage, usageStream),
        ...(props.kinesisShards === 'on-demand'
          ? { streamMode: kinesis.StreamMode.ON_DEMAND }
          : {
              streamMode: kinesis.StreamMode.PROVISIONED,
              shardCount: props.kinesisShards ?? usageStream.shardCount,
            }),
        retentionPeriod: Duration.hours(streamSettings.retentionHours),
        // The AWS-managed key (aws/kinesis): encrypted at rest with no key to pay for or grant.
        encryption: kinesis.StreamEncryption.MANAGED,
        // In-flight usage only; the counters live in DynamoDB.
        removalPolicy: RemovalPolicy.DESTROY,
      });
      this.redriveQueue = meteredQueue('RedriveQueue', `${queueName(props.stage, usageQueue)}-redrive`);
      this.redriveTarget = this.redriveQueue;
    }
    this.redriveRole = new iam.Role(this, 'RedriveRole', {
      assumedBy: new iam.AccountRootPrincipal(),
      description: 'npm run usage:redrive: sends dead-lettered usage back to metering (docs/metering.md)',
    });
    this.deadLetterQueue.grant(this.redriveRole, ...REDRIVE_DLQ_ACTIONS);
    this.redriveTarget.grant(this.redriveRole, 'sqs:SendMessage', 'sqs:GetQueueUrl');
    this.stream?.grant(
      this.redriveRole,
      'kinesis:GetShardIterator',
      'kinesis:GetRecords',
      'kinesis:DescribeStreamSummary',
    );
    this.#denyPublishingToOthers();
  }

  /** The redrive reads counters' Kinesis watermarks (GetItem of the usage table, nothing else). */
  allowRedriveCounterReads(usageTable: dynamodb.ITable): void {
    usageTable.grant(this.redriveRole, 'dynamodb:GetItem');
  }

  /**
   * Event provenance: whatever IAM grants elsewhere in the account (an admin's `sqs:*`, a redrive
   * tool, a role with `kinesis:*`), only the publishers' roles may put a usage event on the queue or
   * stream, so no other principal can bill a tenant. An explicit Deny in the resource policy wins
   * over every Allow, which a policy of Allows alone could not do in the same account.
   *
   * Why this cannot lock anyone out: it denies the publish actions only (SendMessage; PutRecord(s)),
   * never the policy's own management (sqs:SetQueueAttributes, kinesis:PutResourcePolicy /
   * DeleteResourcePolicy) nor reading, deleting or purging. CloudFormation, the account's
   * administrators and the root user keep changing or removing this policy as before; metering keeps
   * receiving (its event source mapping), and SQS's own moves to the dead-letter queue are not
   * SendMessage calls. `aws:PrincipalArn` is the role's ARN for every session of that role (not the
   * session's), and is absent for AWS services, for which ArnNotEquals then holds: they are denied
   * too (nothing but our functions publishes usage). A dead-letter redrive back onto the queue is
   * admitted only for the redrive role (`redriveRole`), whose tool sends each dead letter back
   * once and whose events metering dedupes by their marks (docs/metering.md, runbook).
   */
  #denyPublishingToOthers(): void {
    const resource = this.queue ?? this.stream;
    if (!resource) return;
    const statement = new iam.PolicyStatement({
      sid: 'OnlyTheGatesPublishUsage',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: [...PUBLISH_ACTIONS[this.transport]],
      resources: [this.queue ? this.queue.queueArn : (this.stream as kinesis.Stream).streamArn],
      conditions: {
        ArnNotEquals: {
          'aws:PrincipalArn': Lazy.list({
            // The redrive role publishes to the queue only: on Kinesis it never puts a record on
            // the stream (a new sequence number would escape the watermarks), so it is not admitted there.
            produce: () => [
              ...this.#publishers.map((role) => role.roleArn),
              ...(this.queue ? [this.redriveRole.roleArn] : []),
            ],
          }),
        },
      },
    });
    resource.addToResourcePolicy(statement);
    // The redrive queue: only the redrive role puts usage on it (metering receives it).
    this.redriveQueue?.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'OnlyTheRedrivePublishesUsage',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: [...PUBLISH_ACTIONS.sqs],
        resources: [this.redriveQueue.queueArn],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': [this.redriveRole.roleArn] } },
      }),
    );
  }

  /** Memory of the metering function, sized for a full batch (see consumerTimeout). */
  static readonly CONSUMER_MEMORY_MB = 1024;

  /**
   * The longest a metering invocation may run: SQS hides a received batch for the queue's
   * visibility timeout, and AWS advises at least six times the function timeout so a batch is
   * not handed to a second consumer while the first still works on it.
   */
  static consumerTimeout(): Duration {
    return Duration.seconds(Math.floor(usageQueue.visibilityTimeoutSeconds / 6));
  }

  /**
   * key-api and every gate (services/gate): publishes one event per accepted request (SendMessage or
   * PutRecord, nothing else).
   */
  allowPublish(fn: TollgateFunction): void {
    if (!fn.function.role) throw new Error(`${fn.node.path} has no role to let publish`);
    this.#publishers.push(fn.function.role);
    fn.function.addEnvironment(ENV.transport, this.transport);
    if (this.queue) {
      this.queue.grant(fn.function, 'sqs:SendMessage');
      fn.function.addEnvironment(ENV.usageQueueUrl, this.queue.queueUrl);
    }
    if (this.stream) {
      this.stream.grant(fn.function, 'kinesis:PutRecord');
      fn.function.addEnvironment(ENV.usageStreamName, this.stream.streamName);
    }
  }

  /**
   * metering: consumes the transport with partial batch responses, and dead-letters refused
   * records itself (SendMessageBatch, authorised as sqs:SendMessage).
   */
  attachConsumer(fn: TollgateFunction): void {
    const eventSource = this.queue ? usageQueue.eventSource : usageStream.eventSource;
    const batchSize = this.#props.batchSize ?? eventSource.batchSize;
    const maxBatchingWindow =
      this.#props.maxBatchingWindow ?? Duration.seconds(eventSource.maxBatchingWindowSeconds);
    fn.function.addEnvironment(ENV.transport, this.transport);
    fn.function.addEnvironment(ENV.usageDlqUrl, this.deadLetterQueue.queueUrl);
    // The window the redelivery above was derived from, so metering refuses at the same age.
    fn.function.addEnvironment(ENV.lateWindowMs, String(this.redelivery.lateWindowMs));
    this.deadLetterQueue.grant(fn.function, 'sqs:SendMessage');
    if (this.queue) {
      // The SQS ledger schedules its tail flush as a delayed message on the queue itself
      // (contracts/resources.ts LEDGER_TICK_BODY), so metering publishes to it too. That lets it
      // add no usage it could not add anyway: it writes the counters.
      if (!fn.function.role) throw new Error(`${fn.node.path} has no role to send the ledger's ticks`);
      this.#publishers.push(fn.function.role);
      this.queue.grant(fn.function, 'sqs:SendMessage');
      fn.function.addEnvironment(ENV.usageQueueUrl, this.queue.queueUrl);
    }
    const queueSource = (queue: sqs.IQueue, maxConcurrency?: number) =>
      new SqsEventSource(queue, {
        batchSize,
        maxBatchingWindow,
        reportBatchItemFailures: true,
        ...(maxConcurrency === undefined ? {} : { maxConcurrency }),
      });
    if (this.queue) fn.function.addEventSource(queueSource(this.queue, SQS_CONSUMER_MAX_CONCURRENCY));
    if (this.redriveQueue) {
      // Little traffic (only what an operator redrives): batches as large, no reserved concurrency.
      fn.function.addEventSource(queueSource(this.redriveQueue));
    }
    if (this.stream) {
      const { retryAttempts, maxRecordAgeSeconds } = this.redelivery.stream;
      fn.function.addEventSource(
        new KinesisEventSource(this.stream, {
          startingPosition: StartingPosition.TRIM_HORIZON,
          batchSize,
          maxBatchingWindow,
          reportBatchItemFailures: true,
          // A batch that fails as a whole (a thrown error, a timeout) is halved until the record
          // that causes it stands alone; reported failures retry from the lowest one anyway.
          bisectBatchOnError: true,
          // One batch per shard at a time, in sequence order: the counters' sequence-number
          // watermarks (docs/metering.md) are exact only then. Scale with shards instead.
          parallelizationFactor: 1,
          // Retried without a count, until the record nears the late window (minus the redrive
          // margin): an outage of DynamoDB holds the shard instead of skipping its usage.
          retryAttempts,
          maxRecordAge: Duration.seconds(maxRecordAgeSeconds),
          // A batch given up on is described (shard, sequence numbers) in the dead-letter queue;
          // the redrive reads the records back from the stream, which retains them past the window.
          onFailure: new SqsDlq(this.deadLetterQueue),
        }),
      );
    }
  }
}
