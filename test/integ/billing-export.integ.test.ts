import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { BillingMetric } from '../../contracts/metric-names';
import { utcDay } from '../../contracts/usage-event';
import { closeServer, listen } from '../../infra/local/http-util';
import { type StripeStandIn, startStripeStandIn } from '../../infra/local/stripe/index';
import { BillingSummary } from '../../services/billing/billing-summary';
import { ExportLedger } from '../../services/billing/export-ledger';
import { type BillingCustomer, DAY_MS, pushIdentifier, UsageExporter } from '../../services/billing/exporter';
import { MeterErrorReports } from '../../services/billing/meter-errors';
import type { PushOutcome, UsagePush, UsageSink } from '../../services/billing/provider';
import { Reconciler } from '../../services/billing/reconciler';
import { stripeClient } from '../../services/billing/stripe-client';
import { StripeMeterSink } from '../../services/billing/stripe-sink';
import { documentClient } from '../../services/platform/aws-clients';
import type { MetricsRecorder } from '../../services/platform/metrics';
import { UsageReader } from '../../services/usage/usage-reader';
import { UsageStore } from '../../services/usage/usage-store';
import { recordFigures } from '../support/figures';

// Usage out to Stripe, exactly: counters written the way metering writes them (UsageStore on the
// test stack's DynamoDB Local), exported through the official SDK to the Stripe stand-in's
// pre-aggregated meter, under every fault the issue names. Each fault ends with the same check:
// Stripe's daily totals equal Tollgate's counters, never more.

const WEBHOOK_SECRET = 'whsec_billing_export_test';
const env = inject('env');
const aws = inject('aws');
const dynamo = documentClient(aws);
const usageTable = env[ENV.usageTable] as string;
// The billing table exists in every stack (contracts/resources.ts `tables`); its name is in the
// settings once the stack's billing jobs are wired, and follows the same naming until then.
const billingTable = env[ENV.billingTable] ?? usageTable.replace(/-usage$/, '-billing');
const counters = new UsageStore({ client: dynamo, table: usageTable });
const usage = new UsageReader({ client: dynamo, table: usageTable });
const ledger = new ExportLedger({ client: dynamo, table: billingTable });
const logger = new Logger({ serviceName: 'billing-export-test', logLevel: 'SILENT' });

const metricTotals = new Map<string, number>();
const metrics: MetricsRecorder = {
  addMetric: (name, _unit, value) => metricTotals.set(name, (metricTotals.get(name) ?? 0) + value),
};

let standIn: StripeStandIn;
let stripe: Stripe;
let sink: StripeMeterSink;
let meter: Stripe.Billing.Meter;
const received: Array<{ body: string; signature: string }> = [];
const receiver = createServer((req: IncomingMessage, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    received.push({
      body: Buffer.concat(chunks).toString('utf8'),
      signature: String(req.headers['stripe-signature']),
    });
    res.writeHead(200).end();
  });
});

beforeAll(async () => {
  await listen(receiver, 0);
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/billing/webhook`;
  standIn = await startStripeStandIn({ webhook: { url, secret: WEBHOOK_SECRET, retryDelaysMs: [50] } });
  stripe = stripeClient(standIn.secretKey, { apiUrl: standIn.url, maxNetworkRetries: 1, timeoutMs: 1500 });
  meter = await stripe.billing.meters.create({
    display_name: 'Tollgate requests',
    event_name: `tollgate_requests_${randomUUID().slice(0, 8)}`,
    default_aggregation: { formula: 'sum' },
    event_time_window: 'day',
  });
  sink = new StripeMeterSink({ stripe, eventName: meter.event_name, meterId: meter.id });
});

/** What each fault case measured, for RELIABILITY.md (`npm run reliability:report`); all cases or none. */
const figures: Record<string, unknown> = {};
const CASES = 8;

afterAll(async () => {
  if (Object.keys(figures).length >= CASES) await recordFigures('billing-export-faults', figures);
  await standIn?.stop();
  await closeServer(receiver);
});

const today = () => utcDay(Date.now());
const daysAgo = (n: number) => utcDay(Date.now() - n * DAY_MS);

async function customerAccount(label: string): Promise<BillingCustomer> {
  const customer = await stripe.customers.create({ description: label });
  return { accountId: `bx-${label}-${randomUUID()}`, customerId: customer.id };
}

/** `n` billed calls of the account on `day`, counted as metering counts them. */
async function meterCalls(accountId: string, day: string, n: number): Promise<void> {
  const at = day === today() ? Date.now() - 60_000 : Date.parse(`${day}T12:00:00Z`);
  const events = Array.from({ length: n }, (_, i) => ({ id: randomUUID(), ts: at + i, units: 1 }));
  await counters.applyTransaction(
    [{ owner: { accountId, keyId: 'key-1', day }, events, recordIds: events.map((e) => e.id) }],
    new Date(),
  );
}

function exporterFor(customers: BillingCustomer[], over: Partial<{ sink: UsageSink }> = {}): UsageExporter {
  return new UsageExporter({
    sink: over.sink ?? sink,
    ledger,
    usage,
    customers: async () => customers,
    metrics,
    logger,
    concurrency: 1,
  });
}

/**
 * The check every fault ends with: Stripe's daily totals equal the counters, day by day. Returns
 * the sums, for the figures.
 */
async function expectBilledEqualsMetered(
  account: BillingCustomer,
  days: string[],
): Promise<{ billed: number; metered: number }> {
  const sorted = [...days].sort();
  const first = sorted[0] as string;
  const last = sorted.at(-1) as string;
  const billed = await sink.reportedTotals(account.customerId, first, last);
  const metered = new Map(
    (await usage.dailyCounts({ accountId: account.accountId }, first, last)).map((d) => [d.date, d.count]),
  );
  const sums = { billed: 0, metered: 0 };
  for (const day of sorted) {
    expect({ day, billed: billed.get(day) ?? 0 }).toEqual({ day, billed: metered.get(day) ?? 0 });
    sums.billed += billed.get(day) ?? 0;
    sums.metered += metered.get(day) ?? 0;
  }
  return sums;
}

const meterEventRequests = () => standIn.answers.filter((a) => a.route === 'POST /v1/billing/meter_events');

describe('usage export to a pre-aggregated Stripe meter', () => {
  it('pushes the running total: N calls are N on Stripe, a rerun adds nothing, more calls replace the total', async () => {
    const account = await customerAccount('plain');
    await meterCalls(account.accountId, today(), 7);
    const exporter = exporterFor([account]);
    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 1, failed: 0 });
    await expectBilledEqualsMetered(account, [today()]);
    expect((await sink.reportedTotals(account.customerId, today(), today())).get(today())).toBe(7);

    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 0, failed: 0 });
    await meterCalls(account.accountId, today(), 5);
    const summary = new BillingSummary({ accounts: { standing: async () => account }, usage, ledger });
    const pending = await summary.summary(account.accountId, new Date());
    expect(pending).toMatchObject({ inSync: false, usage: { metered: 12, reported: 7 } });

    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 1, lagSeconds: 0 });
    expect((await sink.reportedTotals(account.customerId, today(), today())).get(today())).toBe(12);
    const billing = await summary.summary(account.accountId, new Date());
    expect(billing).toMatchObject({ customerId: account.customerId, inSync: true });
    expect(billing.usage).toMatchObject({ metered: 12, reported: 12 });
  });

  it('survives an exporter killed between the push and the ledger write: the rerun is a duplicate, not a second bill', async () => {
    const account = await customerAccount('killed');
    await meterCalls(account.accountId, today(), 9);
    const killed: UsageSink = {
      push: async (push) => {
        await sink.push(push);
        throw new Error('process killed before the ledger write');
      },
      reportedTotals: (...args) => sink.reportedTotals(...args),
    };
    expect(await exporterFor([account], { sink: killed }).runExport(new Date())).toMatchObject({ failed: 1 });
    expect((await ledger.reportedDays(account.accountId, today(), today())).size).toBe(0);

    const outcomes: PushOutcome[] = [];
    const watched: UsageSink = {
      push: async (push: UsagePush) => {
        const outcome = await sink.push(push);
        outcomes.push(outcome);
        return outcome;
      },
      reportedTotals: (...args) => sink.reportedTotals(...args),
    };
    expect(await exporterFor([account], { sink: watched }).runExport(new Date())).toMatchObject({
      pushed: 1,
    });
    expect(outcomes).toEqual(['duplicate']);
    expect((await ledger.reportedDays(account.accountId, today(), today())).get(today())?.reported).toBe(9);
    figures.killedMidPush = { ...(await expectBilledEqualsMetered(account, [today()])), rerun: outcomes };
  });

  // How many attempts the SDK makes of one push: a 5xx is retried (maxNetworkRetries 1); a 429 is
  // not (stripe 23.2.0 retries a 429 only when Stripe answers `Stripe-Should-Retry: true`).
  const faults = [
    ['a 5xx', { kind: 'server_error' }, 2],
    ['a 429', { kind: 'rate_limit', retryAfterSeconds: 0 }, 1],
  ] as const;
  for (const [name, fault, attempts] of faults) {
    it(`leaves the day for the next run on ${name} (after the SDK's retries), and exports the other accounts`, async () => {
      const failing = await customerAccount('fault');
      const healthy = await customerAccount('healthy');
      await meterCalls(failing.accountId, today(), 4);
      await meterCalls(healthy.accountId, today(), 6);
      const failuresBefore = metricTotals.get(BillingMetric.pushFailures) ?? 0;
      // Every attempt of the first account's push fails; the second account's push gets through.
      standIn.injectFault(fault, attempts, 'POST /v1/billing/meter_events');
      const exporter = exporterFor([failing, healthy]);
      const failed = await exporter.runExport(new Date());
      expect(failed).toMatchObject({ pushed: 1, failed: 1 });
      // The failing account's calls, a minute old, are unreported: the lag says so.
      expect(failed.lagSeconds).toBeGreaterThan(0);
      expect(metricTotals.get(BillingMetric.pushFailures)).toBe(failuresBefore + 1);
      expect((await sink.reportedTotals(failing.customerId, today(), today())).get(today())).toBeUndefined();
      await expectBilledEqualsMetered(healthy, [today()]);

      expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 1, failed: 0 });
      figures[fault.kind] = {
        ...(await expectBilledEqualsMetered(failing, [today()])),
        failedRuns: 1,
        parameters: { attempts },
      };
    });
  }

  it('leaves the day for the next run when Stripe times out', async () => {
    const account = await customerAccount('timeout');
    await meterCalls(account.accountId, today(), 3);
    const impatient = stripeClient(standIn.secretKey, {
      apiUrl: standIn.url,
      maxNetworkRetries: 0,
      timeoutMs: 300,
    });
    const impatientSink = new StripeMeterSink({
      stripe: impatient,
      eventName: meter.event_name,
      meterId: meter.id,
    });
    standIn.injectFault({ kind: 'hang' }, 1, 'POST /v1/billing/meter_events');
    const exporter = exporterFor([account], { sink: impatientSink });
    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 0, failed: 1 });
    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 1, failed: 0 });
    figures.timeout = { ...(await expectBilledEqualsMetered(account, [today()])), failedRuns: 1 };
  });

  it('counts a duplicate-identifier 400 as delivered (the provider already holds that push)', async () => {
    const account = await customerAccount('duplicate');
    await meterCalls(account.accountId, today(), 11);
    // An earlier exporter's push of the same total, which Stripe took and our ledger never heard of.
    await sink.push({
      customerId: account.customerId,
      day: today(),
      total: 11,
      identifier: pushIdentifier(account.accountId, today(), 11, 0),
      timestamp: new Date(),
    });
    const before = meterEventRequests().length;
    expect(await exporterFor([account]).runExport(new Date())).toMatchObject({ pushed: 1, failed: 0 });
    const answer = meterEventRequests().slice(before);
    expect(answer.map((a) => a.status)).toEqual([400]);
    figures.duplicateIdentifier = {
      ...(await expectBilledEqualsMetered(account, [today()])),
      answers: answer.map((a) => a.status),
    };
    expect((await ledger.reportedDays(account.accountId, today(), today())).get(today())?.reported).toBe(11);
  });

  it('re-pushes yesterday when a late event arrives after it was pushed: the total replaces, never adds', async () => {
    const account = await customerAccount('late');
    const yesterday = daysAgo(1);
    await meterCalls(account.accountId, yesterday, 5);
    await meterCalls(account.accountId, today(), 2);
    const exporter = exporterFor([account]);
    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 2 });
    await meterCalls(account.accountId, yesterday, 3);
    expect(await exporter.runExport(new Date())).toMatchObject({ pushed: 1 });
    const billed = await sink.reportedTotals(account.customerId, yesterday, today());
    expect([billed.get(yesterday), billed.get(today())]).toEqual([8, 2]);
    figures.lateEvent = {
      ...(await expectBilledEqualsMetered(account, [yesterday, today()])),
      yesterday: billed.get(yesterday),
      parameters: { before: 5, late: 3 },
    };
  });

  it('never pushes a day older than Stripe accepts, and never while another exporter holds the account', async () => {
    const account = await customerAccount('old');
    const old = daysAgo(36);
    await meterCalls(account.accountId, old, 4);
    await meterCalls(account.accountId, today(), 1);
    const exporter = exporterFor([account]);
    const before = meterEventRequests().length;
    expect(
      await exporter.exportAccount(account.accountId, account.customerId, [old], new Date()),
    ).toMatchObject({
      pushed: 0,
      failed: 0,
    });
    expect(meterEventRequests().length).toBe(before);

    const now = new Date();
    expect(await ledger.acquireLease(account.accountId, 'another-exporter', now, 60_000)).toBe(true);
    expect(await exporter.exportAccount(account.accountId, account.customerId, [today()], now)).toMatchObject(
      {
        leased: true,
        pushed: 0,
      },
    );
    // Two exporters at once, once the lease expired: the account-day is pushed once.
    const rival = exporterFor([account]);
    const requests = meterEventRequests().length;
    const both = await Promise.all([
      exporter.exportAccount(
        account.accountId,
        account.customerId,
        [today()],
        new Date(now.getTime() + 61_000),
      ),
      rival.exportAccount(account.accountId, account.customerId, [today()], new Date(now.getTime() + 61_000)),
    ]);
    expect(both.reduce((sum, r) => sum + r.pushed, 0)).toBe(1);
    expect(meterEventRequests().length).toBe(requests + 1);
    await expectBilledEqualsMetered(account, [today()]);
  });
});

describe('meter error reports and reconciliation', () => {
  it('re-pushes the account-days a meter error report names, under a new identifier', async () => {
    const account = await customerAccount('meter-error');
    await meterCalls(account.accountId, today(), 6);
    // Pushed to a customer Stripe does not know: accepted (200), refused later, nothing counted.
    const misrouted = { ...account, customerId: 'cus_unknown' };
    expect(await exporterFor([misrouted]).runExport(new Date())).toMatchObject({ pushed: 1 });
    expect(await exporterFor([account]).runExport(new Date())).toMatchObject({ pushed: 0 });

    const eventId = standIn.emitMeterErrorReport(meter.id);
    await standIn.webhooksIdle();
    const delivered = received.find(({ body }) => body.includes(eventId));
    const notification = stripe.parseEventNotification(
      delivered?.body ?? '',
      delivered?.signature ?? '',
      WEBHOOK_SECRET,
    );
    if (notification.type !== 'v1.billing.meter.error_report_triggered') throw new Error(notification.type);
    const errorsBefore = metricTotals.get(BillingMetric.meterErrors) ?? 0;
    const outcome = await new MeterErrorReports({ ledger, metrics, logger }).onMeterErrorReport(notification);
    expect(outcome.invalidated).toEqual([{ accountId: account.accountId, day: today() }]);
    expect(metricTotals.get(BillingMetric.meterErrors)).toBeGreaterThan(errorsBefore);

    expect(await exporterFor([account]).runExport(new Date())).toMatchObject({ pushed: 1, failed: 0 });
    figures.meterErrorReport = {
      ...(await expectBilledEqualsMetered(account, [today()])),
      invalidated: outcome.invalidated.length,
    };
  });

  it('reconciles: re-pushes short days (even past the late window), never lowers a day Stripe holds more of', async () => {
    const account = await customerAccount('reconcile');
    const lost = daysAgo(5);
    const over = daysAgo(3);
    await meterCalls(account.accountId, lost, 10);
    await meterCalls(account.accountId, over, 4);
    await meterCalls(account.accountId, today(), 2);
    // `lost`: the ledger believes it delivered, Stripe never got it. `over`: Stripe holds more.
    await ledger.recordPush(account.accountId, lost, {
      total: 10,
      identifier: pushIdentifier(account.accountId, lost, 10, 0),
      generation: 0,
      pushedAt: new Date(),
    });
    await sink.push({
      customerId: account.customerId,
      day: over,
      total: 7,
      identifier: `foreign-${randomUUID()}`,
      timestamp: new Date(Date.parse(`${over}T12:00:00Z`)),
    });
    const exporter = exporterFor([account]);
    const reconciler = new Reconciler({
      sink,
      ledger,
      usage,
      customers: async () => [account],
      exporter,
      metrics,
      logger,
    });
    const driftBefore = metricTotals.get(BillingMetric.drift) ?? 0;
    const result = await reconciler.reconcile(new Date());
    expect(result.customers[0]).toMatchObject({ repaired: [lost, today()], over: [over], drift: 3 });
    expect(metricTotals.get(BillingMetric.drift)).toBe(driftBefore + 3);
    const billed = await sink.reportedTotals(account.customerId, lost, today());
    expect([billed.get(lost), billed.get(over), billed.get(today())]).toEqual([10, 7, 2]);
    figures.reconciliation = {
      ...(await expectBilledEqualsMetered(account, [lost, today()])),
      repaired: result.customers[0]?.repaired.length,
      drift: result.drift,
      overDay: { billed: billed.get(over), metered: 4 },
    };
  });
});
