import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { ENV } from '../../../contracts/config';
import { SERVICE_NAMES } from '../../../contracts/metric-names';
import {
  LEDGER_BACKSTOP_EVENT,
  LEDGER_BACKSTOP_INTERVAL_SECONDS,
  LEDGER_QUEUE_BATCHING_WINDOW_SECONDS,
  usageQueue,
  usageStream,
} from '../../../contracts/resources';
import { composeMetering } from '../../../services/metering/compose';
import { loadMeteringConfig, type MeteringConfig } from '../../../services/metering/config';
import { kinesisClient, sqsClient } from '../../../services/platform/aws-clients';
import type { BootstrapResult } from '../bootstrap';
import { LOCAL_REGION, localCognitoClient } from '../local-aws';
import { localAlertSender } from '../mailbox';
import { recordBacklog, timedInvocations } from '../ops/invocations';
import { KinesisPoller } from '../pollers/kinesis-poller';
import { LOCAL_SQS_BATCHES_IN_FLIGHT, SqsPoller } from '../pollers/sqs-poller';
import { inParts, type StackContext, type StopList, type Stoppable } from './step';
import type { Wiring } from './wiring';

/** How often the local alerts schedule runs: EventBridge's rate on AWS (one minute). */
const LOCAL_ALERT_SCHEDULE_MS = 60_000;

type Metering = ReturnType<typeof composeMetering>;

/**
 * The metering consumer, fed like Lambda's event source mappings feed it on AWS. Both pollers
 * run: key-api publishes to whichever transport TOLLGATE_TRANSPORT selects, the other stays idle.
 * Beside them, the alerts schedule.
 */
export function startMetering(
  context: StackContext,
  wiring: Wiring,
  resources: BootstrapResult,
  cognitoEndpoint: string,
): Promise<Stoppable> {
  return inParts(async (parts) => {
    // Alerts read the owner's current address from the user pool, as on AWS.
    const config = loadMeteringConfig({ [ENV.alertUserPoolId]: resources.userPoolId, ...wiring.env });
    const metering = composeLocalMetering(context, wiring, config, cognitoEndpoint, parts);
    parts.add('alerts schedule', scheduleAlerts(context, metering));
    parts.add('ledger backstop schedule', scheduleLedgerBackstop(context, metering));
    pollQueue(context, wiring, resources, metering, parts, config);
    await pollStream(context, wiring, resources, metering, parts);
    return {};
  });
}

function composeLocalMetering(
  context: StackContext,
  wiring: Wiring,
  config: MeteringConfig,
  cognitoEndpoint: string,
  parts: StopList,
): Metering {
  const cognito = localCognitoClient(cognitoEndpoint);
  parts.add('alerts Cognito client', { stop: () => cognito.destroy() });
  const metering: Metering = composeMetering(config, {
    aws: wiring.aws,
    clients: { cognito },
    logger: wiring.logger(SERVICE_NAMES.metering),
    metrics: context.metrics.forService(SERVICE_NAMES.metering),
    // Quota alerts go where the verification codes go: the captured outbox (SES on AWS), whose
    // delivery event confirms the send, as SES's send event does through EventBridge.
    alerts: localAlertSender({
      dataDir: context.dataDir,
      notice: context.notice,
      onDelivered: (alertId, messageId) =>
        metering.alerts?.confirmDelivered(alertId, messageId) ?? Promise.resolve(false),
    }),
  });
  return metering;
}

/**
 * A schedule as EventBridge runs one on AWS (a rule every `intervalMs`): `run` is called on each
 * tick unless the previous run is still going (no overlap, no queue of stale runs).
 */
function schedule(
  context: StackContext,
  label: string,
  intervalMs: number,
  run: () => Promise<unknown>,
): Stoppable {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = run()
      .catch((error: unknown) => context.notice(`[metering] ${label} failed: ${(error as Error)?.message}`))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}

/** The alerts schedule: EventBridge's rule every minute on AWS (infra/cdk/constructs/alert-email.ts). */
function scheduleAlerts(context: StackContext, metering: Metering): Stoppable {
  const alertsHandler = metering.alertsHandler;
  if (!alertsHandler) return { stop: async () => {} };
  return schedule(context, 'alerts schedule', LOCAL_ALERT_SCHEDULE_MS, () =>
    alertsHandler({ source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }),
  );
}

/**
 * The SQS ledger's backstop: EventBridge's rule every minute on AWS (infra/cdk), the same event
 * through the same handler here.
 */
function scheduleLedgerBackstop(context: StackContext, metering: Metering): Stoppable {
  if (!metering.ledgerBackstop) return { stop: async () => {} };
  return schedule(context, 'ledger backstop', LEDGER_BACKSTOP_INTERVAL_SECONDS * 1000, () =>
    metering.handler(LEDGER_BACKSTOP_EVENT),
  );
}

/** Metering's handler as the pollers call it, its figures (and the backlog's) kept for the ops page. */
function consumer(context: StackContext, metering: Metering): Metering['handler'] {
  const timed = timedInvocations(context.metrics, 'metering', metering.handler);
  return (event) => {
    recordBacklog(context.metrics, event);
    return timed(event);
  };
}

function batchFailed(context: StackContext, source: string) {
  return (error: unknown) =>
    context.notice(`[metering] ${source} batch failed: ${(error as Error)?.message ?? error}`);
}

function pollQueue(
  context: StackContext,
  wiring: Wiring,
  resources: BootstrapResult,
  metering: Metering,
  parts: StopList,
  config: MeteringConfig,
): void {
  const sqs = sqsClient(wiring.aws);
  const poller = new SqsPoller({
    sqs,
    queueUrl: resources.usageQueueUrl,
    queueArn: resources.usageQueueArn,
    region: LOCAL_REGION,
    handler: consumer(context, metering),
    // The event source mapping's settings in CDK, from the same definitions.
    batchSize: usageQueue.eventSource.batchSize,
    batchingWindowMs: LEDGER_QUEUE_BATCHING_WINDOW_SECONDS[config[ENV.ledgerFlush]] * 1000,
    concurrency: LOCAL_SQS_BATCHES_IN_FLIGHT,
    onError: batchFailed(context, 'SQS'),
  });
  poller.start();
  parts.add('SQS poller', {
    stop: async () => {
      await poller.stop();
      sqs.destroy();
    },
  });
}

async function pollStream(
  context: StackContext,
  wiring: Wiring,
  resources: BootstrapResult,
  metering: Metering,
  parts: StopList,
): Promise<void> {
  const { redelivery } = context;
  const kinesis = kinesisClient(wiring.aws);
  const sqs = sqsClient(wiring.aws);
  const poller = new KinesisPoller({
    kinesis,
    streamName: resources.usageStreamName,
    streamArn: resources.usageStreamArn,
    region: LOCAL_REGION,
    handler: consumer(context, metering),
    batchSize: usageStream.eventSource.batchSize,
    batchingWindowMs: usageStream.eventSource.maxBatchingWindowSeconds * 1000,
    // Next to the stream's own data, so a restart resumes after the last record consumed.
    checkpointFile: join(context.dataDir, 'metering', 'kinesis-checkpoints.json'),
    // Retried until the record nears the late window, then described in the dead-letter queue
    // (npm run usage:redrive reads it back), as the event source mapping in CDK does.
    maxRecordAgeMs: redelivery.stream.maxRecordAgeSeconds * 1000,
    maxRetryAttempts: redelivery.stream.retryAttempts,
    bisectBatchOnError: true,
    onFailure: async (description) => {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: resources.usageDlqUrl, MessageBody: JSON.stringify(description) }),
      );
    },
    onError: batchFailed(context, 'Kinesis'),
  });
  parts.add('Kinesis poller', {
    stop: async () => {
      await poller.stop();
      kinesis.destroy();
      sqs.destroy();
    },
  });
  await poller.start();
}
