import { randomBytes } from 'node:crypto';
import { BILLING_WEBHOOK_PATH } from '../../../contracts/billing';
import { ENV } from '../../../contracts/config';
import { SERVICE_NAMES } from '../../../contracts/metric-names';
import { fixedSecrets } from '../../../services/billing/secrets';
import { type BillingJob, composeBillingJobs } from '../../../services/billing-jobs/compose';
import { loadBillingJobsConfig } from '../../../services/billing-jobs/config';
import type { BootstrapResult } from '../bootstrap';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION, localUrl } from '../local-aws';
import { listenAs } from '../ports';
import { type LocalBilling, saveProPlan, seedStripeCatalog, writeBillingFile } from '../resources/billing';
import { type StripeStandIn, startStripeStandIn } from '../stripe/index';
import { type Served, serveHono } from './apis';
import { inParts, type StackContext, type StopList, type Stoppable } from './step';
import type { Wiring } from './wiring';

/** Where the webhook is served, as API Gateway's route is on AWS (services/billing-jobs/webhook.ts). */

/** How often the local export runs unless given: short, so `npm start` shows billed = metered soon. */
export const LOCAL_EXPORT_INTERVAL_MS = 5000;
/** The reconciliation is daily on AWS; locally every minute, so its figures can be seen. */
const LOCAL_RECONCILE_INTERVAL_MS = 60_000;

export interface StripeStep extends Stoppable {
  readonly standIn: StripeStandIn;
  readonly billing: LocalBilling;
  /** The handlers' billing settings (contracts/config.ts names), for user-api and the billing jobs. */
  readonly settings: Readonly<Record<string, string>>;
}

/**
 * The Stripe stand-in (infra/local/stripe: test infrastructure, docs/stripe-stand-in.md) on its
 * port, its webhook pointed at the billing webhook's, with the meter, the `pro` price and plan a
 * deployment creates in Stripe by hand (docs/billing.md), and `<dataDir>/billing.json`.
 */
export async function startStripe(
  context: StackContext,
  resources: BootstrapResult,
  aws: Wiring['aws'],
): Promise<StripeStep> {
  const { ports } = context;
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const standIn = await listenAs(ports, 'stripe', () =>
    startStripeStandIn({
      port: ports.stripe,
      webhook: { url: `${localUrl(ports.billingWebhook)}${BILLING_WEBHOOK_PATH}`, secret: webhookSecret },
    }),
  );
  try {
    const billing = await seedStripeCatalog(standIn, webhookSecret);
    await saveProPlan(aws, resources.tables.plans, billing.prices.pro as string);
    await writeBillingFile(context.dataDir, billing);
    const secretArn = (name: string) =>
      `arn:aws:secretsmanager:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:secret:${name}`;
    return {
      standIn,
      billing,
      // Secret ARNs only, as on AWS: the values reach the handlers through their overrides.
      settings: {
        [ENV.billingTable]: resources.tables.billing,
        [ENV.stripeSecretKeyArn]: secretArn(`tollgate-${context.stage}-stripe-secret-key`),
        [ENV.stripeWebhookSecretArn]: secretArn(`tollgate-${context.stage}-stripe-webhook-secret`),
        [ENV.stripeApiUrl]: standIn.url,
        [ENV.billingMeterId]: billing.meterId,
        [ENV.billingMeterEvent]: billing.eventName,
        [ENV.billingReturnUrl]: `${localUrl(ports.web)}/`,
      },
      stop: () => standIn.stop(),
    };
  } catch (error) {
    await standIn.stop();
    throw error;
  }
}

/**
 * The billing jobs as on AWS: the webhook behind its own server (API Gateway), the export on a
 * timer (EventBridge every 5 minutes there, every few seconds here) and the reconciliation.
 */
export function startBillingJobs(
  context: StackContext,
  wiring: Wiring,
  stripe: StripeStep,
  options: { exportIntervalMs?: number } = {},
): Promise<Served> {
  return inParts(async (parts) => {
    const jobs = composeBillingJobs(loadBillingJobsConfig(wiring.env), {
      aws: wiring.aws,
      logger: wiring.logger(SERVICE_NAMES.billing),
      metrics: context.metrics.forService(SERVICE_NAMES.billing),
      secrets: fixedSecrets({
        stripeSecretKey: stripe.billing.secretKey,
        webhookSecret: stripe.billing.webhookSecret,
      }),
    });
    const served = parts.add(
      'billing webhook',
      await serveHono(context, 'billingWebhook', jobs.webhook.fetch),
    );
    schedule(context, parts, jobs, 'export', options.exportIntervalMs ?? LOCAL_EXPORT_INTERVAL_MS);
    schedule(context, parts, jobs, 'reconcile', LOCAL_RECONCILE_INTERVAL_MS);
    return { endpoint: `${served.endpoint}${BILLING_WEBHOOK_PATH}` };
  });
}

function schedule(
  context: StackContext,
  parts: StopList,
  jobs: ReturnType<typeof composeBillingJobs>,
  job: BillingJob,
  intervalMs: number,
): void {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = jobs
      .runJob(job)
      .catch((error: unknown) => context.notice(`[billing] ${job} failed: ${(error as Error)?.message}`))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  parts.add(`billing ${job} schedule`, {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  });
}
