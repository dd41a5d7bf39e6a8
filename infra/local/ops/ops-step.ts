import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../../../contracts/config';
import { type OperationsDefinition, operationsDefinition } from '../../../contracts/dashboard';
import { SERVICE_NAMES } from '../../../contracts/metric-names';
import type { Transport } from '../../../contracts/transport';
import { sqsClient } from '../../../services/platform/aws-clients';
import { createCognitoIdTokenVerifier } from '../../../services/user-api/token-verifier';
import type { BootstrapResult } from '../bootstrap';
import { type Served, serveHono } from '../steps/apis';
import { inParts, type StackContext, type Stoppable } from '../steps/step';
import type { Wiring } from '../steps/wiring';
import { awsMetricKey, type MetricStore } from './metric-store';
import { createOpsApp } from './ops-app';

/** How often the queues' depth is read (CloudWatch's SQS metrics come every minute). */
const QUEUE_DEPTH_INTERVAL_MS = 5_000;

/**
 * The dashboard's definition for the local stack: the example API is the owner API behind its own
 * ALB stand-in, and the billing jobs run (against the Stripe stand-in).
 */
export function localOpsDefinition(stage: string, transport: Transport): OperationsDefinition {
  return operationsDefinition({
    stage,
    transport,
    ownerApiService: SERVICE_NAMES.exampleApi,
    ownerApiTargetGroup: true,
    billing: true,
  });
}

export interface OpsPageOptions {
  readonly wiring: Wiring;
  readonly resources: BootstrapResult;
  readonly cognitoEndpoint: string;
}

/**
 * The ops page on its own port: the dashboard's widgets over the context's metric store, the
 * alarms as states, for the pool's admins. Beside it, the queues' depth read into the store.
 */
export function startOpsPage(context: StackContext, options: OpsPageOptions): Promise<Served> {
  const { wiring, resources } = options;
  return inParts(async (parts) => {
    const sqs = sqsClient(wiring.aws);
    parts.add('queue depth reader', readQueueDepths(context.metrics, sqs, resources));
    const app = createOpsApp({
      definition: localOpsDefinition(context.stage, wiring.env[ENV.transport] as Transport),
      store: context.metrics,
      verifier: createCognitoIdTokenVerifier({
        issuer: wiring.env[ENV.jwtIssuer] as string,
        jwksUri: wiring.env[ENV.jwksUri] as string,
        clientId: resources.userPoolClientId,
      }),
      cognito: { endpoint: options.cognitoEndpoint, clientId: resources.userPoolClientId },
    });
    const served = parts.add('ops page', await serveHono(context, 'ops', app.fetch));
    return { endpoint: served.endpoint };
  });
}

/** SQS's ApproximateNumberOfMessagesVisible, as the queue's attribute says it. */
function readQueueDepths(store: MetricStore, sqs: SQSClient, resources: BootstrapResult): Stoppable {
  const queues = [
    { role: 'usage', url: resources.usageQueueUrl },
    { role: 'deadLetter', url: resources.usageDlqUrl },
  ] as const;
  let reading: Promise<unknown> | undefined;
  const read = () =>
    Promise.all(
      queues.map(async ({ role, url }) => {
        const { Attributes } = await sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }),
        );
        const depth = Number(Attributes?.ApproximateNumberOfMessages);
        store.record(awsMetricKey({ type: 'queue', role }, 'ApproximateNumberOfMessagesVisible'), depth);
      }),
    );
  const timer = setInterval(() => {
    // A slow engine is not read twice at once; a failed read leaves a gap, as a missed sample would.
    reading ??= read()
      .catch(() => undefined)
      .finally(() => {
        reading = undefined;
      });
  }, QUEUE_DEPTH_INTERVAL_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await reading;
      sqs.destroy();
    },
  };
}
