import { DAY_SECONDS, HOUR_SECONDS } from '../clock';
import { invalidRequest, StripeApiError } from '../errors';
import { newId } from '../ids';
import type { RequestContext, Routes } from '../router';
import type { MeterEventRecord, StandInState } from '../state';
import { type Meter, meterForEvent } from './meters';

/** "Must be within the past 35 calendar days or up to 5 minutes in the future" (Stripe's API reference). */
export const MAX_BACKDATE_SECONDS = 35 * DAY_SECONDS;
export const MAX_FUTURE_SECONDS = 5 * 60;
/** "We'll enforce uniqueness within a rolling 24 hour period." */
export const IDENTIFIER_WINDOW_MS = 24 * 3600 * 1000;

function checkIdentifier(state: StandInState, identifier: string, nowMs: number): void {
  const seenAt = state.identifiers.get(identifier);
  if (seenAt !== undefined && nowMs - seenAt < IDENTIFIER_WINDOW_MS) {
    // Worded as Stripe answers it; Stripe also tells the SDK that retrying cannot succeed.
    throw new StripeApiError(
      400,
      {
        type: 'invalid_request_error',
        message: `An event already exists with identifier ${identifier}.`,
        param: 'identifier',
      },
      { 'Stripe-Should-Retry': 'false' },
    );
  }
}

function checkTimestamp(timestamp: number, nowSeconds: number): void {
  if (timestamp < nowSeconds - MAX_BACKDATE_SECONDS) {
    throw invalidRequest(
      'Timestamp must be within the past 35 calendar days.',
      'timestamp',
      'timestamp_too_far_in_past',
    );
  }
  if (timestamp > nowSeconds + MAX_FUTURE_SECONDS) {
    throw invalidRequest(
      'Timestamp must be no more than 5 minutes in the future.',
      'timestamp',
      'timestamp_in_future',
    );
  }
}

/**
 * What Stripe checks later and reports in `v1.billing.meter.error_report_triggered` rather than
 * refusing the request: no meter for the event name, no or an unknown customer, a non-numeric value.
 */
function asyncProblem(
  state: StandInState,
  meter: Meter | undefined,
  customer: string | undefined,
  value: string | undefined,
) {
  if (meter === undefined)
    return { code: 'no_meter', message: 'No active meter was found for the event name.' };
  if (customer === undefined)
    return { code: 'meter_event_no_customer_defined', message: 'The payload names no customer.' };
  if (!state.customers.has(customer))
    return { code: 'meter_event_customer_not_found', message: `No such customer: '${customer}'` };
  if (value === undefined || !/^-?\d+(\.\d+)?$/.test(value)) {
    return { code: 'meter_event_invalid_value', message: 'The payload value is not a number.' };
  }
  return undefined;
}

function createMeterEvent({ params, state, time }: RequestContext) {
  const eventName = params.string('event_name');
  const payload = params.optionalObject('payload');
  if (payload === undefined)
    throw invalidRequest('Missing required param: payload.', 'payload', 'parameter_missing');
  const nowMs = time.nowMs();
  const identifier = params.optionalString('identifier') ?? newId('mtre').slice(5);
  checkIdentifier(state, identifier, nowMs);
  const timestamp = params.optionalInteger('timestamp') ?? time.nowSeconds();
  checkTimestamp(timestamp, time.nowSeconds());
  const meter = meterForEvent(state, eventName);
  const customer = payload.optionalString(meter?.customer_mapping.event_payload_key ?? 'stripe_customer_id');
  const rawValue = payload.optionalString(meter?.value_settings.event_payload_key ?? 'value');
  const answer = {
    object: 'billing.meter_event',
    created: time.nowSeconds(),
    event_name: eventName,
    identifier,
    livemode: false,
    payload: Object.fromEntries(Object.keys(payload.raw).map((key) => [key, payload.string(key)])),
    timestamp,
  };
  state.identifiers.set(identifier, nowMs);
  const problem = asyncProblem(state, meter, customer, rawValue);
  if (problem !== undefined) state.meterErrors.push({ meter: meter?.id, identifier, ...problem });
  const record: MeterEventRecord = {
    answer,
    eventName,
    customer,
    value: problem === undefined ? Number(rawValue) : undefined,
    sequence: state.nextSequence(),
    receivedAt: nowMs,
  };
  state.meterEvents.push(record);
  return answer;
}

/** The window an event falls in: UTC hours or days for pre-aggregated meters, none for raw ones. */
export function windowOf(meter: Meter, timestamp: number): number | undefined {
  if (meter.event_time_window === 'day') return Math.floor(timestamp / DAY_SECONDS);
  if (meter.event_time_window === 'hour') return Math.floor(timestamp / HOUR_SECONDS);
  return undefined;
}

/**
 * The events a meter counts for a customer. Pre-aggregated meters keep, per window, only the event
 * received last: "Stripe only uses the most recent meter event within the hourly or daily window
 * for aggregation. A newer event sent within the same hourly or daily window overwrites the
 * previous one."
 */
export function countedEvents(state: StandInState, meter: Meter, customer: string): MeterEventRecord[] {
  const mine = state.meterEvents.filter(
    (event) =>
      event.eventName === meter.event_name && event.customer === customer && event.value !== undefined,
  );
  if (meter.event_time_window === null) return mine;
  const newest = new Map<number, MeterEventRecord>();
  for (const event of mine) {
    const window = windowOf(meter, event.answer.timestamp) ?? 0;
    const kept = newest.get(window);
    if (kept === undefined || kept.sequence < event.sequence) newest.set(window, event);
  }
  return [...newest.values()];
}

export function aggregate(meter: Meter, events: readonly MeterEventRecord[]): number {
  if (meter.default_aggregation.formula === 'count') return events.length;
  return events.reduce((sum, event) => sum + (event.value ?? 0), 0);
}

export const meterEventRoutes: Routes = {
  'POST /v1/billing/meter_events': createMeterEvent,
};
