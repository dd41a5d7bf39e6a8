import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { Hono } from 'hono';
import Stripe from 'stripe';
import { BILLING_WEBHOOK_PATH } from '../../contracts/billing';
import { errorBody } from '../../contracts/errors';
import { BillingMetric } from '../../contracts/metric-names';
import type { BillingAccounts } from '../billing/billing-accounts';
import type { UsageExporter } from '../billing/exporter';
import type { MeterErrorReports } from '../billing/meter-errors';
import type { SubscriptionSync } from '../billing/subscription-sync';
import type { Clock } from '../platform/clock';
import { DependencyError } from '../platform/errors';
import type { MetricsRecorder } from '../platform/metrics';

const METER_ERROR_REPORT = 'v1.billing.meter.error_report_triggered';
const INVOICE_EVENTS = new Set(['invoice.upcoming', 'invoice.created']);

export interface WebhookDeps {
  ready(): Promise<{
    stripe: Stripe;
    accounts: BillingAccounts;
    sync: SubscriptionSync;
    exporter: UsageExporter;
    meterErrors: MeterErrorReports;
  }>;
  webhookSecret(): Promise<string>;
  logger: Logger;
  metrics: MetricsRecorder;
  clock: Clock;
}

/**
 * `POST /billing/webhook`: Stripe's signed deliveries. The signature is checked by the official SDK
 * over the raw body before anything else (a bad or missing one is 400 and changes nothing). Each
 * event is handled once: a replay is answered 200 and does nothing. What cannot be done now (a
 * DynamoDB or Stripe outage) is 503, and Stripe delivers again later.
 */
export function createWebhookApp(deps: WebhookDeps): Hono {
  const app = new Hono();
  app.post(BILLING_WEBHOOK_PATH, async (c) => {
    const raw = await c.req.text();
    const signature = c.req.header('stripe-signature');
    const refuse = (message: string) => {
      deps.metrics.addMetric(BillingMetric.webhookRejected, MetricUnit.Count, 1);
      return c.json(errorBody('invalid_request', message), 400);
    };
    if (!signature) return refuse('the Stripe-Signature header is missing');
    const [secret, parts] = await Promise.all([deps.webhookSecret(), deps.ready()]);
    if (isThinEvent(raw)) {
      let notification: Stripe.V2.Core.EventNotification;
      try {
        notification = parts.stripe.parseEventNotification(raw, signature, secret);
      } catch {
        return refuse('the Stripe-Signature header does not verify');
      }
      if (notification.type === METER_ERROR_REPORT) {
        await parts.meterErrors.onMeterErrorReport(
          notification as Stripe.V2.Core.Events.V1BillingMeterErrorReportTriggeredEventNotification,
        );
      }
      return c.json({ received: true });
    }
    let event: Stripe.Event;
    try {
      event = parts.stripe.webhooks.constructEvent(raw, signature, secret);
    } catch {
      return refuse('the Stripe-Signature header does not verify');
    }
    if (await parts.accounts.isHandled(event.id)) return c.json({ received: true, duplicate: true });
    const outcome = await handleEvent(parts, event, deps.clock.now());
    if (outcome === 'applied') deps.metrics.addMetric(BillingMetric.webhookApplied, MetricUnit.Count, 1);
    // Marked only once its effects are written: a crash before this is a redelivery that redoes them.
    await parts.accounts.markHandled(event.id, event.type, deps.clock.now());
    return c.json({ received: true, outcome });
  });
  app.notFound((c) => c.json(errorBody('not_found', 'no such route'), 404));
  app.onError((error, c) => {
    if (isUnavailable(error)) {
      deps.logger.warn('billing webhook: a dependency is unavailable', { error });
      c.header('retry-after', '5');
      return c.json(errorBody('service_unavailable', 'a dependency is unavailable, retry'), 503);
    }
    deps.logger.error('billing webhook failed', { error });
    return c.json(errorBody('internal_error', 'internal error'), 500);
  });
  return app;
}

async function handleEvent(
  parts: Awaited<ReturnType<WebhookDeps['ready']>>,
  event: Stripe.Event,
  now: Date,
): Promise<string> {
  if (INVOICE_EVENTS.has(event.type)) {
    // The invoice is a draft until Stripe finalizes it: push every day it may bill now.
    const invoice = event.data.object as Stripe.Invoice;
    const customer = typeof invoice.customer === 'string' ? invoice.customer : invoice.customer?.id;
    const accountId = customer ? await parts.accounts.accountOfCustomer(customer) : undefined;
    if (!accountId || !customer) return 'ignored';
    const result = await parts.exporter.exportBeforeInvoice(accountId, customer, now);
    // A push that failed (or an account another exporter holds) must not mark the event handled.
    // A 503: Stripe delivers again, by when the scheduled export has released the account.
    if (result.failed > 0 || result.leased) throw new DependencyError('the billing provider');
    return 'exported';
  }
  return parts.sync.handle(event);
}

function isThinEvent(raw: string): boolean {
  try {
    return (JSON.parse(raw) as { object?: unknown }).object === 'v2.core.event';
  } catch {
    return false;
  }
}

function isUnavailable(error: unknown): boolean {
  if (error instanceof DependencyError) return true;
  return (
    error instanceof Stripe.errors.StripeConnectionError ||
    error instanceof Stripe.errors.StripeRateLimitError ||
    (error instanceof Stripe.errors.StripeAPIError && (error.statusCode ?? 500) >= 500)
  );
}
