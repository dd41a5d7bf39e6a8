/**
 * The billing provider as the usage exporter sees it: somewhere an account-day's usage total is
 * delivered to, and that can say what it holds. Stripe is the first adapter (stripe-sink.ts).
 *
 * Tollgate's counters are exact and per account per day, and never decrease, so what the exporter
 * sends is an account-day's exact RUNNING TOTAL. That is safe only on a provider that keeps the
 * newest value of a window rather than summing everything it received:
 *
 *  - **Stripe** (stripe-sink.ts): a meter with daily pre-aggregation (`event_time_window: day`)
 *    keeps the newest event of a UTC day window, so re-pushing a total after a retry, a crash or a
 *    late event replaces the day's value and can never double-bill; `identifier` is unique over
 *    24 hours (a duplicate answers 400 naming `identifier`: already delivered).
 *  - **Metronome, Paddle, Polar, OpenMeter** sum the events they receive and dedupe on an id
 *    (Metronome `transaction_id`, Paddle's usage record id, Polar's `external_id`, OpenMeter's
 *    CloudEvents `id`). An adapter for them pushes DELTAS: per account and hour, the hour's units
 *    not yet reported, under an id that is deterministic per (account, hour, cumulative total), e.g.
 *    `tg-<accountId>-<yyyy-mm-ddThh>-<total>`, so a retried push is dropped as a duplicate by the
 *    provider; `push` then receives `total` as the day's running total and the adapter sends
 *    `total − what its own ledger says it sent`. Their usage queries (Metronome's usage API,
 *    OpenMeter's meter query with `windowSize=DAY`) answer `reportedTotals`.
 */
export interface UsageSink {
  /**
   * Delivers an account-day's running total. `'duplicate'`: the provider already had this
   * identifier, which counts as delivered (the same total under the same identifier).
   *
   * @throws DependencyError when the push may or may not have been received (5xx, timeout, 429
   * after the client's retries): retryable, the exporter leaves the day for its next run. Any other
   * error (a refused parameter, a wrong key) is a bug or a misconfiguration, and is thrown as is.
   */
  push(usage: UsagePush): Promise<PushOutcome>;
  /** The provider's own totals per UTC day (`yyyy-mm-dd`) in [fromDay, toDay]; days without usage may be absent. */
  reportedTotals(customerId: string, fromDay: string, toDay: string): Promise<Map<string, number>>;
}

export interface UsagePush {
  /** The provider's customer (Stripe `cus_…`). */
  readonly customerId: string;
  /** The UTC day the total is for, `yyyy-mm-dd`. */
  readonly day: string;
  /** The day's running total: every billed unit counted for the account that day. */
  readonly total: number;
  /** Unique per push, deterministic per push (a retry of the same push repeats it). */
  readonly identifier: string;
  /** When the usage happened, inside the day's window and never in the future. */
  readonly timestamp: Date;
}

export type PushOutcome = 'delivered' | 'duplicate';
