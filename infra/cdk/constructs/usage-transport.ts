import { Duration, Lazy, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { KinesisEventSource, SqsDlq, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../../../contracts/config';
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
   * How long the event source gathers records before invoking metering: adds to usage lag.
   * @default the transport's eventSource.maxBatchingWindowSeconds (1 s)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * Kinesis only: provisioned shards, or `on-demand`.
   * @default usageStream.shardCount
   */
  readonly kinesisShards?: number | 'on-demand';
  /**
   * Kinesis only: retries of a failing batch before it is given up and its description sent to
   * the dead-letter queue. (SQS retries are the queue's `maxReceiveCount` in contracts/resources.ts.)
   * @default 10
   */
  readonly retryAttempts?: number;
}

/** What publishing a usage event is, per transport: the only actions the resource policies restrict. */
export const PUBLISH_ACTIONS = {
  sqs: ['sqs:SendMessage'],
  kinesis: ['kinesis:PutRecord', 'kinesis:PutRecords'],
} as const satisfies Record<Transport, readonly string[]>;

/**
 * How usage events travel from key-api to metering: an SQS queue (default) or a Kinesis stream,
 * always with an SQS dead-letter queue. Settings come from contracts/resources.ts, as in the local
 * stack. Both queues are encrypted (SSE-SQS) and refuse plain-HTTP access.
 */
export class UsageTransport extends Construct {
  readonly transport: Transport;
  /** Dead letters: records metering refused (with a reason) and, for SQS, poison messages. */
  readonly deadLetterQueue: sqs.Queue;
  /** Set when transport is `sqs`. */
  readonly queue?: sqs.Queue;
  /** Set when transport is `kinesis`. */
  readonly stream?: kinesis.Stream;
  readonly #props: UsageTransportProps;
  /** Roles of the functions given allowPublish(): the only principals the resource policy lets publish. */
  readonly #publishers: iam.IRole[] = [];

  constructor(scope: Construct, id: string, props: UsageTransportProps) {
    super(scope, id);
    this.#props = props;
    this.transport = props.transport;

    // SSE-SQS rather than a customer key: messages are already private to the account, and a KMS
    // key would add a key charge plus kms:GenerateDataKey on every publish.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      queueName: queueName(props.stage, usageQueue, true),
      retentionPeriod: Duration.seconds(usageQueue.deadLetterRetentionSeconds),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This is the dead-letter queue itself (redrive target of the usage queue, Kinesis on-failure ' +
        "destination and metering's dead-letter sink); a dead letter of dead letters would only hide them.",
    });

    if (props.transport === 'sqs') {
      this.queue = new sqs.Queue(this, 'Queue', {
        queueName: queueName(props.stage, usageQueue),
        visibilityTimeout: Duration.seconds(usageQueue.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(usageQueue.retentionSeconds),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: usageQueue.maxReceiveCount },
      });
    } else {
      this.stream = new kinesis.Stream(this, 'Stream', {
        streamName: streamName(props.stage, usageStream),
        ...(props.kinesisShards === 'on-demand'
          ? { streamMode: kinesis.StreamMode.ON_DEMAND }
          : {
              streamMode: kinesis.StreamMode.PROVISIONED,
              shardCount: props.kinesisShards ?? usageStream.shardCount,
            }),
        retentionPeriod: Duration.hours(usageStream.retentionHours),
        // The AWS-managed key (aws/kinesis): encrypted at rest with no key to pay for or grant.
        encryption: kinesis.StreamEncryption.MANAGED,
        // In-flight usage only; the counters live in DynamoDB.
        removalPolicy: RemovalPolicy.DESTROY,
      });
    }
    this.#denyPublishingToOthers();
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
   * denied as well, on purpose: see docs/deploy.md.
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
          'aws:PrincipalArn': Lazy.list({ produce: () => this.#publishers.map((role) => role.roleArn) }),
        },
      },
    });
    resource.addToResourcePolicy(statement);
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
    this.deadLetterQueue.grant(fn.function, 'sqs:SendMessage');
    if (this.queue) {
      fn.function.addEventSource(
        new SqsEventSource(this.queue, { batchSize, maxBatchingWindow, reportBatchItemFailures: true }),
      );
    }
    if (this.stream) {
      fn.function.addEventSource(
        new KinesisEventSource(this.stream, {
          startingPosition: StartingPosition.TRIM_HORIZON,
          batchSize,
          maxBatchingWindow,
          reportBatchItemFailures: true,
          // Failures are reported per counter; halving a batch would only break aggregates up.
          bisectBatchOnError: false,
          // One batch per shard at a time, in sequence order: the counters' sequence-number
          // watermarks (docs/metering.md) are exact only then. Scale with shards instead.
          parallelizationFactor: 1,
          retryAttempts: this.#props.retryAttempts ?? 10,
          // A batch given up on is described (shard, sequence numbers) in the dead-letter queue,
          // from where the records can be read back while the stream retains them.
          onFailure: new SqsDlq(this.deadLetterQueue),
        }),
      );
    }
  }
}
