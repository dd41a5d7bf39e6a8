/** Any object of Stripe's API as the stand-in stores and answers it: JSON, with an id and a type. */
export interface StripeObject {
  id: string;
  object: string;
  [field: string]: unknown;
}

/** A meter event as received, with what aggregation needs beside the answer Stripe gives. */
export interface MeterEventRecord {
  readonly answer: {
    readonly identifier: string;
    readonly timestamp: number;
    readonly [field: string]: unknown;
  };
  readonly eventName: string;
  readonly customer: string | undefined;
  readonly value: number | undefined;
  /** Arrival order: in a pre-aggregated window, the event received last is the one kept. */
  readonly sequence: number;
  readonly receivedAt: number;
}

/** An error Stripe reports asynchronously for a meter event (in `v1.billing.meter.error_report_triggered`). */
export interface MeterErrorSample {
  readonly meter: string | undefined;
  readonly code: string;
  readonly message: string;
  readonly identifier: string;
}

/** Everything the stand-in knows, in memory: it starts empty and lives as long as the process. */
export class StandInState {
  readonly customers = new Map<string, StripeObject>();
  readonly products = new Map<string, StripeObject>();
  readonly prices = new Map<string, StripeObject>();
  readonly checkoutSessions = new Map<string, StripeObject>();
  readonly subscriptions = new Map<string, StripeObject>();
  readonly portalSessions = new Map<string, StripeObject>();
  readonly invoices = new Map<string, StripeObject>();
  /** Per subscription, the period end its `invoice.upcoming` was sent for (once per renewal). */
  readonly upcomingAnnounced = new Map<string, number>();
  readonly meters = new Map<string, StripeObject>();
  readonly meterEvents: MeterEventRecord[] = [];
  /** Meter event identifiers by when they were received (ms), for the 24-hour uniqueness rule. */
  readonly identifiers = new Map<string, number>();
  readonly meterErrors: MeterErrorSample[] = [];
  readonly events = new Map<string, StripeObject>();
  readonly v2Events = new Map<string, StripeObject>();
  /** Customers whose renewals are declined (a test's stand-in for a failing card). */
  readonly decliningCustomers = new Set<string>();
  private sequence = 0;

  nextSequence(): number {
    this.sequence += 1;
    return this.sequence;
  }
}

/** A copy deep enough that later changes to the stored object do not reach an answer already given. */
export function snapshot<T>(value: T): T {
  return structuredClone(value);
}
