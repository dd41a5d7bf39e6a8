import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type Stripe from 'stripe';
import { ENV } from '../../contracts/config';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { PlanStore } from '../accounts/plan-store';
import { BillingAccounts } from '../billing/billing-accounts';
import { ExportLedger } from '../billing/export-ledger';
import { UsageExporter } from '../billing/exporter';
import { MeterErrorReports } from '../billing/meter-errors';
import { Reconciler } from '../billing/reconciler';
import { type BillingSecrets, secretsManagerSecrets } from '../billing/secrets';
import { stripeClient } from '../billing/stripe-client';
import { StripeMeterSink } from '../billing/stripe-sink';
import { SubscriptionSync } from '../billing/subscription-sync';
import { type AwsOptions, documentClient } from '../platform/aws-clients';
import { type Clock, systemClock } from '../platform/clock';
import { type MetricsRecorder, writeAtOnce } from '../platform/metrics';
import { UsageReader } from '../usage/usage-reader';
import type { BillingJobsConfig } from './config';
import { createWebhookApp, type WebhookDeps } from './webhook';

export type BillingJob = 'export' | 'reconcile';

/** What a caller may provide instead of what the billing jobs build from their configuration. */
export interface BillingJobsOverrides {
  readonly aws?: AwsOptions;
  readonly logger?: Logger;
  /** @default Powertools Metrics (namespace METRICS_NAMESPACE, service billing), each written at once */
  readonly metrics?: MetricsRecorder;
  readonly clock?: Clock;
  /** @default Secrets Manager, by the ARNs of the configuration */
  readonly secrets?: BillingSecrets;
}

/** The parts of billing, built once the Stripe secret key is known (on the first request or run). */
interface BillingParts {
  stripe: Stripe;
  accounts: BillingAccounts;
  sync: SubscriptionSync;
  exporter: UsageExporter;
  reconciler: Reconciler;
  meterErrors: MeterErrorReports;
}

/**
 * The billing jobs: the Stripe webhook (API Gateway → `webhook`) and the scheduled runs
 * (EventBridge → `runJob`). Both build on the same parts, made on first use: the Stripe key comes
 * from Secrets Manager, which a cold start should not wait on before it is needed.
 */
export function composeBillingJobs(config: BillingJobsConfig, overrides: BillingJobsOverrides = {}) {
  const logger = overrides.logger ?? new Logger({ serviceName: SERVICE_NAMES.billing });
  const metrics =
    overrides.metrics ??
    writeAtOnce(new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.billing }));
  const clock = overrides.clock ?? systemClock;
  const secrets =
    overrides.secrets ??
    secretsManagerSecrets({
      stripeSecretKey: config[ENV.stripeSecretKeyArn],
      webhookSecret: config[ENV.stripeWebhookSecretArn],
    });
  const dynamo = documentClient(overrides.aws ?? {});
  let parts: Promise<BillingParts> | undefined;
  const build = async (): Promise<BillingParts> => {
    const stripe = stripeClient(await secrets.stripeSecretKey(), {
      ...(config[ENV.stripeApiUrl] ? { apiUrl: config[ENV.stripeApiUrl] } : {}),
    });
    const accounts = new BillingAccounts({ client: dynamo, table: config[ENV.billingTable] });
    const plans = new PlanStore({
      client: dynamo,
      plansTable: config[ENV.plansTable],
      accountsTable: config[ENV.accountsTable],
    });
    const ledger = new ExportLedger({ client: dynamo, table: config[ENV.billingTable] });
    const usage = new UsageReader({ client: dynamo, table: config[ENV.usageTable] });
    const sink = new StripeMeterSink({
      stripe,
      eventName: config[ENV.billingMeterEvent],
      meterId: config[ENV.billingMeterId],
    });
    const customers = () => accounts.listCustomers();
    const common = { ledger, usage, customers, metrics, logger, clock, sink };
    const exporter = new UsageExporter({ ...common, lateWindowMs: config[ENV.lateWindowMs] });
    return {
      stripe,
      accounts,
      sync: new SubscriptionSync({
        stripe,
        accounts,
        plans,
        graceMs: config[ENV.pastDueGraceMs],
        logger,
        clock,
      }),
      exporter,
      reconciler: new Reconciler({ ...common, exporter }),
      meterErrors: new MeterErrorReports({ ledger, metrics, logger, clock }),
    };
  };
  const ready = (): Promise<BillingParts> => {
    parts ??= build().catch((error: unknown) => {
      parts = undefined; // a failed secret read is retried by the next request
      throw error;
    });
    return parts;
  };
  const deps: WebhookDeps = { ready, webhookSecret: () => secrets.webhookSecret(), logger, metrics, clock };
  return {
    webhook: createWebhookApp(deps),
    async runJob(job: BillingJob): Promise<unknown> {
      const { sync, exporter, reconciler } = await ready();
      if (job === 'reconcile') return reconciler.reconcile(clock.now());
      // No event comes when a grace ends: each export run also suspends what is overdue.
      const suspended = await sync.sweepGrace(clock.now());
      return { suspended, export: await exporter.runExport(clock.now()) };
    },
  };
}
