import { DAY_SECONDS, HOUR_SECONDS } from '../clock';
import { invalidRequest } from '../errors';
import type { RequestContext, Routes } from '../router';
import { aggregate, countedEvents } from './meter-events';
import { meterById } from './meters';

const MAX_LIMIT = 100;

function minuteAligned(value: number, param: string): number {
  if (value % 60 !== 0) throw invalidRequest(`${param} must be aligned with minute boundaries.`, param);
  return value;
}

/** [start, end) cut at `step` from `start` (UTC days when `start` is a UTC midnight). */
function windows(start: number, end: number, step: number | undefined): Array<readonly [number, number]> {
  if (step === undefined) return [[start, end]];
  const out: Array<readonly [number, number]> = [];
  for (let from = start; from < end; from += step) out.push([from, Math.min(from + step, end)]);
  return out;
}

/**
 * `GET /v1/billing/meters/{id}/event_summaries`: a customer's aggregated usage in [start_time,
 * end_time), one summary for the range or one per hour or day (`value_grouping_window`), the
 * earliest first. Windows without a counted event are left out. Pages by `limit`/`starting_after`.
 */
function listSummaries({ params, path, state }: RequestContext) {
  const meter = meterById(state, path.id ?? '');
  const customer = params.string('customer');
  const start = minuteAligned(params.integer('start_time'), 'start_time');
  const end = minuteAligned(params.integer('end_time'), 'end_time');
  if (end <= start) throw invalidRequest('end_time must be after start_time.', 'end_time');
  const grouping = params.oneOf('value_grouping_window', ['day', 'hour'] as const);
  const step = grouping === 'day' ? DAY_SECONDS : grouping === 'hour' ? HOUR_SECONDS : undefined;
  const events = countedEvents(state, meter, customer);
  const summaries = windows(start, end, step).flatMap(([from, to]) => {
    const inside = events.filter((event) => event.answer.timestamp >= from && event.answer.timestamp < to);
    if (inside.length === 0) return [];
    return [
      {
        id: `mtrusg_test_${meter.id.slice(-10)}_${customer.slice(-10)}_${from}_${to}`,
        object: 'billing.meter_event_summary',
        aggregated_value: aggregate(meter, inside),
        end_time: to,
        livemode: false,
        meter: meter.id,
        start_time: from,
      },
    ];
  });
  const after = params.optionalString('starting_after');
  const from = after === undefined ? 0 : summaries.findIndex((summary) => summary.id === after) + 1;
  const limit = Math.min(params.optionalInteger('limit') ?? 10, MAX_LIMIT);
  const data = summaries.slice(from, from + limit);
  return {
    object: 'list',
    data,
    has_more: from + limit < summaries.length,
    url: `/v1/billing/meters/${meter.id}/event_summaries`,
  };
}

export const summaryRoutes: Routes = {
  'GET /v1/billing/meters/{id}/event_summaries': listSummaries,
};
