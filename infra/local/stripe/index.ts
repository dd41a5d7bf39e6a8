import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer, listen } from '../http-util';
import { type Clock, StandInTime } from './clock';
import { EventPublisher } from './events';
import { type Fault, FaultPlan } from './faults';
import { IdempotencyStore } from './idempotency';
import { newId } from './ids';
import { catalogRoutes } from './resources/catalog';
import { checkoutRoutes } from './resources/checkout';
import { customerRoutes } from './resources/customers';
import { eventRoutes } from './resources/events';
import { invoiceRoutes } from './resources/invoices';
import { catchUpSubscriptions, settleSubscription } from './resources/lifecycle';
import { meterEventRoutes } from './resources/meter-events';
import { meterRoutes } from './resources/meters';
import { portalRoutes } from './resources/portal';
import { subscriptionById, subscriptionRoutes } from './resources/subscriptions';
import { summaryRoutes } from './resources/summaries';
import { type RouteKey, Router } from './router';
import { createRequestListener, type RecordedAnswer } from './server';
import { StandInState, type StripeObject } from './state';
import { type DeliveryAttempt, WebhookDispatcher, type WebhookOptions } from './webhooks';

export type { Fault } from './faults';
export type { RecordedAnswer } from './server';
export type { DeliveryAttempt, WebhookOptions } from './webhooks';
export { signatureHeader } from './webhooks';

export interface StripeStandInOptions {
  /** Where to listen on 127.0.0.1; a free port unless given. */
  readonly port?: number;
  /** Where events are delivered, signed with `secret` (Tollgate's billing webhook). */
  readonly webhook?: WebhookOptions;
  /** The base clock (ms); the wall clock unless given. `advanceTime` moves the stand-in past it. */
  readonly clock?: Clock;
  /**
   * How many days before a renewal `invoice.upcoming` is sent (Stripe's "upcoming renewal events"
   * setting); 0 sends none. @default 3
   */
  readonly upcomingRenewalDays?: number;
}

/** A running stand-in: its address and key for the SDK, and the controls tests use. */
export interface StripeStandIn {
  /** e.g. `http://127.0.0.1:12111`. */
  readonly url: string;
  readonly port: number;
  /** The one API key it accepts (`sk_test_…`). */
  readonly secretKey: string;
  /** Every API answer given so far, for the fidelity check against Stripe's schemas. */
  readonly answers: readonly RecordedAnswer[];
  /** Every webhook delivery attempt so far. */
  readonly deliveries: readonly DeliveryAttempt[];
  /**
   * Moves the stand-in's time forward, then runs what became due, in order: `invoice.upcoming`,
   * period ends (cancellations; renewals with `invoice.created`), finalizations an hour later.
   */
  advanceTime(seconds: number): void;
  nowSeconds(): number;
  /** The next `times` API requests (to `only`, if given) fail with `fault`. */
  injectFault(fault: Fault, times?: number, only?: RouteKey): void;
  /** Renewals of this customer's subscriptions are declined (→ `past_due`) until set back. */
  declineRenewals(customerId: string, decline?: boolean): void;
  /** A `past_due`/`unpaid` subscription paid: `active` again. */
  settle(subscriptionId: string): void;
  /** Emits `v1.billing.meter.error_report_triggered` for the meter's pending async errors; its event id. */
  emitMeterErrorReport(meterId: string): string;
  /** Resolves when every webhook delivery started so far has finished (delivered or given up). */
  webhooksIdle(): Promise<void>;
  stop(): Promise<void>;
}

const ROUTES = {
  ...customerRoutes,
  ...catalogRoutes,
  ...checkoutRoutes,
  ...subscriptionRoutes,
  ...portalRoutes,
  ...invoiceRoutes,
  ...meterRoutes,
  ...meterEventRoutes,
  ...summaryRoutes,
  ...eventRoutes,
};

function errorReportData(state: StandInState, meterId: string, nowMs: number): Record<string, unknown> {
  const samples = state.meterErrors.filter((error) => error.meter === meterId);
  state.meterErrors.splice(
    0,
    state.meterErrors.length,
    ...state.meterErrors.filter((error) => error.meter !== meterId),
  );
  const codes = [...new Set(samples.map((sample) => sample.code))];
  return {
    developer_message_summary: `${samples.length} meter event(s) failed validation`,
    reason: {
      error_count: samples.length,
      error_types: codes.map((code) => {
        const mine = samples.filter((sample) => sample.code === code);
        const sample_errors = mine.map((s) => ({
          error_message: s.message,
          request: { identifier: s.identifier },
        }));
        return { code, error_count: mine.length, sample_errors };
      }),
    },
    validation_end: new Date(nowMs).toISOString(),
    validation_start: new Date(nowMs - 3600 * 1000).toISOString(),
  };
}

/** Starts the local Stripe stand-in on 127.0.0.1 (see docs/stripe-stand-in.md). */
export async function startStripeStandIn(options: StripeStandInOptions = {}): Promise<StripeStandIn> {
  const state = new StandInState();
  const time = new StandInTime(options.clock);
  const dispatcher = options.webhook === undefined ? undefined : new WebhookDispatcher(options.webhook);
  const events = new EventPublisher(state, time, dispatcher);
  const faults = new FaultPlan();
  const answers: RecordedAnswer[] = [];
  const hanging = new Set<ServerResponse>();
  const secretKey = `sk_test_${newId('standin').slice(8)}`;
  let url = '';
  const listener = createRequestListener({
    router: new Router(ROUTES),
    ...{ state, time, events, faults, answers, hanging, secretKey },
    idempotency: new IdempotencyStore(),
    baseUrl: () => url,
  });
  const server = createServer((req, res) => void listener(req, res));
  await listen(server, options.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    secretKey,
    answers,
    deliveries: dispatcher?.attempts ?? [],
    advanceTime(seconds) {
      time.advance(seconds);
      catchUpSubscriptions(state, events, time.nowSeconds(), options.upcomingRenewalDays);
    },
    nowSeconds: () => time.nowSeconds(),
    injectFault: (fault, times, only) => faults.add(fault, times, only),
    declineRenewals(customerId, decline = true) {
      if (decline) state.decliningCustomers.add(customerId);
      else state.decliningCustomers.delete(customerId);
    },
    settle: (subscriptionId) => settleSubscription(subscriptionById(state, subscriptionId), events),
    emitMeterErrorReport(meterId) {
      const meter = state.meters.get(meterId) as StripeObject;
      const data = errorReportData(state, meterId, time.nowMs());
      return events.publishThin(
        'v1.billing.meter.error_report_triggered',
        meter,
        `/v1/billing/meters/${meterId}`,
        data,
      ).id;
    },
    webhooksIdle: () => dispatcher?.idle() ?? Promise.resolve(),
    async stop() {
      dispatcher?.stop();
      for (const res of hanging) res.destroy();
      await closeServer(server);
    },
  };
}
