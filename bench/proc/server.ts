import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { startAlbAdapter } from '../../infra/local/alb-adapter';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { discardMetrics } from '../../services/platform/metrics';
import { createBaselineHandler } from '../baseline/handler';
import { serveParent } from '../lib/ipc';
import { installSdkCounter, snapshotCounts } from '../lib/sdk-counter';
import { summarize } from '../lib/stats';
import type { ServerSnapshot } from '../lib/types';

/**
 * Child process: one key-check service behind the local ALB adapter, as one Lambda function would
 * run behind an ALB. `tollgate` is key-api composed as its handler.ts composes it, from this
 * process's environment (TOLLGATE_TRANSPORT, queue, stream, tables; the SDK's AWS_* variables point
 * its clients at the local stack), with the local stack's quiet logging and no metrics written (no
 * CloudWatch here); `baseline` serves the article's handler (comparison only). Every AWS SDK
 * request is counted at the client.
 *
 * argv: <tollgate|baseline> <port>
 */
const [kind, portArg] = process.argv.slice(2);

serveParent(async () => {
  installSdkCounter();
  const port = Number(portArg);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`bad port ${portArg}`);

  let handler: (event: ALBEvent) => Promise<ALBResult>;
  if (kind === 'tollgate') {
    handler = composeKeyApi(loadKeyApiConfig(process.env), {
      logger: new Logger({ serviceName: SERVICE_NAMES.keyApi, logLevel: 'WARN' }),
      metrics: discardMetrics,
    }).handler;
  } else if (kind === 'baseline') {
    const tableName = process.env.BENCH_BASELINE_TABLE;
    if (!tableName) throw new Error('BENCH_BASELINE_TABLE is not set');
    handler = createBaselineHandler({
      client: DynamoDBDocumentClient.from(new DynamoDBClient({})),
      tableName,
    });
  } else {
    throw new Error(`unknown server kind ${kind}`);
  }

  // What this "function" answered, and (while recording) how long each invocation took: the
  // Lambda duration the cost model bills.
  const statuses: Record<string, number> = {};
  // Every 200 by the key it accepted (its body's keyId): the ledger the exactness checks compare
  // each key's and each account's counted usage with.
  const ok200ByKey: Record<string, number> = {};
  let invocations = 0;
  let recording: number[] | undefined;
  const measured = async (event: ALBEvent): Promise<ALBResult> => {
    const started = process.hrtime.bigint();
    const result = await handler(event);
    if (recording) recording.push(Number(process.hrtime.bigint() - started) / 1e6);
    invocations++;
    statuses[result.statusCode] = (statuses[result.statusCode] ?? 0) + 1;
    if (kind === 'tollgate' && result.statusCode === 200) {
      let keyId = '?';
      try {
        keyId = String((JSON.parse(result.body ?? '') as { keyId?: unknown }).keyId ?? '?');
      } catch {
        // A 200 without a JSON body would be a bug: it is counted under '?' and fails the checks.
      }
      ok200ByKey[keyId] = (ok200ByKey[keyId] ?? 0) + 1;
    }
    return result;
  };

  const adapter = await startAlbAdapter({
    port,
    handler: measured,
    targetGroupArn: `arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench-${kind}/0000000000000000`,
    onHandlerError: (error) => process.stderr.write(`[bench ${kind}] handler failed: ${String(error)}\n`),
  });

  return {
    ready: { endpoint: adapter.endpoint },
    handlers: {
      snapshot: (): ServerSnapshot => ({
        invocations,
        statuses: { ...statuses },
        ok200ByKey: { ...ok200ByKey },
        sdk: snapshotCounts(),
      }),
      startDurations: () => {
        recording = [];
      },
      stopDurations: () => {
        const durations = recording ?? [];
        recording = undefined;
        return summarize(durations);
      },
    },
    cleanUp: () => adapter.close(),
  };
});
