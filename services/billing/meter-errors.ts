import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type Stripe from 'stripe';
import { BillingMetric } from '../../contracts/metric-names';
import { type Clock, systemClock } from '../platform/clock';
import type { MetricsRecorder } from '../platform/metrics';
import type { ExportLedger } from './export-ledger';
import { parsePushIdentifier } from './exporter';

/** The thin event `v1.billing.meter.error_report_triggered` as `stripe.parseEventNotification` gives it. */
export type MeterErrorNotification = Pick<
  Stripe.V2.Core.Events.V1BillingMeterErrorReportTriggeredEventNotification,
  'fetchEvent'
>;

export interface MeterErrorOutcome {
  /** Samples in the report. */
  readonly samples: number;
  /** Account-days forgotten by the ledger: the next export pushes them again. */
  readonly invalidated: { accountId: string; day: string }[];
  /** Samples whose identifier is not one of ours, or names a push a newer one replaced. */
  readonly ignored: number;
}

/**
 * Stripe accepted some meter events (200) and refused them later, in its asynchronous validation
 * (an unknown customer, a value it could not read): it names them, by identifier, in a meter error
 * report. The ledger must stop believing those days delivered, or billed ≠ metered forever; the
 * day's ledger entry is invalidated, so the next export re-pushes it under a new identifier.
 */
export class MeterErrorReports {
  readonly #ledger: ExportLedger;
  readonly #metrics: MetricsRecorder;
  readonly #logger: Logger;
  readonly #clock: Clock;

  constructor(options: { ledger: ExportLedger; metrics: MetricsRecorder; logger: Logger; clock?: Clock }) {
    this.#ledger = options.ledger;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#clock = options.clock ?? systemClock;
  }

  /** Handles one notification (fetches the event for its samples: the thin event carries none). */
  async onMeterErrorReport(notification: MeterErrorNotification): Promise<MeterErrorOutcome> {
    const event = await notification.fetchEvent();
    const now = this.#clock.now();
    const invalidated: { accountId: string; day: string }[] = [];
    let samples = 0;
    let ignored = 0;
    const seen = new Set<string>();
    for (const type of event.data.reason.error_types) {
      for (const sample of type.sample_errors) {
        samples++;
        const identifier = sample.request.identifier;
        const named = parsePushIdentifier(identifier);
        if (!named || seen.has(identifier)) {
          ignored++;
          continue;
        }
        seen.add(identifier);
        this.#logger.warn('meter event refused after it was accepted', {
          ...named,
          identifier,
          code: type.code,
          message: sample.error_message,
        });
        if (await this.#ledger.invalidate(named.accountId, named.day, now, identifier)) {
          invalidated.push(named);
        } else {
          ignored++;
        }
      }
    }
    this.#metrics.addMetric(BillingMetric.meterErrors, MetricUnit.Count, samples);
    return { samples, invalidated, ignored };
  }
}
