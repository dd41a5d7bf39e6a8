import { invalidRequest, missingParam, noSuch } from '../errors';
import { newId } from '../ids';
import type { Routes } from '../router';
import type { StandInState, StripeObject } from '../state';

/** The fields of a meter that aggregation reads. */
export interface Meter extends StripeObject {
  event_name: string;
  event_time_window: 'day' | 'hour' | null;
  default_aggregation: { formula: 'sum' | 'count' };
  customer_mapping: { event_payload_key: string; type: 'by_id' };
  value_settings: { event_payload_key: string };
  status: 'active' | 'inactive';
}

export function meterById(state: StandInState, id: string): Meter {
  const meter = state.meters.get(id);
  if (meter === undefined) throw noSuch('billing meter', id, 'id');
  return meter as Meter;
}

/** The active meter an event name feeds: Stripe lets one event name feed one meter only. */
export function meterForEvent(state: StandInState, eventName: string): Meter | undefined {
  return [...state.meters.values()].find(
    (meter) => meter.event_name === eventName && meter.status === 'active',
  ) as Meter | undefined;
}

export const meterRoutes: Routes = {
  'POST /v1/billing/meters': ({ params, state, time }) => {
    const eventName = params.string('event_name');
    if (meterForEvent(state, eventName) !== undefined) {
      throw invalidRequest(`An active meter already exists for event_name '${eventName}'.`, 'event_name');
    }
    const formula = params.optionalObject('default_aggregation')?.oneOf('formula', ['sum', 'count'] as const);
    if (formula === undefined) throw missingParam('default_aggregation[formula]');
    const mapping = params.optionalObject('customer_mapping');
    const now = time.nowSeconds();
    const meter: Meter = {
      id: newId('mtr_test'),
      object: 'billing.meter',
      created: now,
      customer_mapping: {
        event_payload_key: mapping?.optionalString('event_payload_key') ?? 'stripe_customer_id',
        type: 'by_id',
      },
      default_aggregation: { formula },
      display_name: params.string('display_name'),
      event_name: eventName,
      event_time_window: params.oneOf('event_time_window', ['day', 'hour'] as const) ?? null,
      livemode: false,
      status: 'active',
      status_transitions: { deactivated_at: null },
      updated: now,
      value_settings: {
        event_payload_key:
          params.optionalObject('value_settings')?.optionalString('event_payload_key') ?? 'value',
      },
    };
    state.meters.set(meter.id, meter);
    return meter;
  },
  'GET /v1/billing/meters/{id}': ({ path, state }) => meterById(state, path.id ?? ''),
};
