import Stripe from 'stripe';
import { DependencyError } from '../platform/errors';
import type { PushOutcome, UsagePush, UsageSink } from './provider';

const DAY_MS = 24 * 3600_000;

/**
 * Usage to a Stripe meter with daily pre-aggregation (`event_time_window: day`): Stripe keeps the
 * newest event of each UTC day window, so each push carries the account-day's exact running total
 * and a re-push (retry, crash, late event) replaces the day's value instead of adding to it.
 */
export class StripeMeterSink implements UsageSink {
  readonly #stripe: Stripe;
  readonly #eventName: string;
  readonly #meterId: string;

  /**
   * @param options.stripe the official SDK (stripe-client.ts), whose own retries cover 429s and 5xx
   * @param options.eventName the meter's `event_name` (meter events are sent under it)
   * @param options.meterId the meter's id (event summaries are read from it)
   */
  constructor(options: { stripe: Stripe; eventName: string; meterId: string }) {
    this.#stripe = options.stripe;
    this.#eventName = options.eventName;
    this.#meterId = options.meterId;
  }

  async push(usage: UsagePush): Promise<PushOutcome> {
    try {
      await this.#stripe.billing.meterEvents.create({
        event_name: this.#eventName,
        payload: { stripe_customer_id: usage.customerId, value: String(usage.total) },
        identifier: usage.identifier,
        timestamp: Math.floor(usage.timestamp.getTime() / 1000),
      });
      return 'delivered';
    } catch (error) {
      // Stripe enforces identifier uniqueness over 24 hours and answers a repeat with a 400 naming
      // `identifier` (no documented code): the event under that identifier is already there.
      if (error instanceof Stripe.errors.StripeInvalidRequestError && error.param === 'identifier') {
        return 'duplicate';
      }
      throw retryable(error);
    }
  }

  async reportedTotals(customerId: string, fromDay: string, toDay: string): Promise<Map<string, number>> {
    // Daily grouping wants UTC-midnight bounds (which are minute-aligned too); end is exclusive.
    const start = Date.parse(`${fromDay}T00:00:00Z`) / 1000;
    const end = (Date.parse(`${toDay}T00:00:00Z`) + DAY_MS) / 1000;
    const totals = new Map<string, number>();
    try {
      const summaries = this.#stripe.billing.meters.listEventSummaries(this.#meterId, {
        customer: customerId,
        start_time: start,
        end_time: end,
        value_grouping_window: 'day',
        limit: 100,
      });
      for await (const summary of summaries) {
        const day = new Date(summary.start_time * 1000).toISOString().slice(0, 10);
        totals.set(day, (totals.get(day) ?? 0) + summary.aggregated_value);
      }
    } catch (error) {
      throw retryable(error);
    }
    return totals;
  }
}

/** Unavailability (5xx, 429 after the SDK's retries, timeouts, no connection) is retried later. */
function retryable(error: unknown): unknown {
  const unavailable =
    error instanceof Stripe.errors.StripeAPIError ||
    error instanceof Stripe.errors.StripeRateLimitError ||
    error instanceof Stripe.errors.StripeConnectionError ||
    (error instanceof Stripe.errors.StripeError && (error.statusCode ?? 0) >= 500);
  return unavailable ? new DependencyError('stripe', { cause: error }) : error;
}
