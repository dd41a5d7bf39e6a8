import type { StandInTime } from './clock';
import { newId } from './ids';
import { type StandInState, type StripeObject, snapshot } from './state';
import type { WebhookDispatcher } from './webhooks';

/** The API version events are rendered in: the one the official SDK this repository uses pins. */
export const EVENT_API_VERSION = '2026-11-18.endive';

/** The request that caused an event, as Stripe names it in `event.request`. */
export interface EventCause {
  readonly requestId: string | undefined;
  readonly idempotencyKey: string | undefined;
}

/**
 * Records events (`GET /v1/events/{id}` serves them) and hands each to the webhook endpoint, if one
 * is configured: snapshot events (`object: 'event'`, the object's state in `data.object`) and thin
 * events (`object: 'v2.core.event'`, fetched in full with `GET /v2/core/events/{id}`).
 */
export class EventPublisher {
  constructor(
    private readonly state: StandInState,
    private readonly time: StandInTime,
    private readonly webhook: WebhookDispatcher | undefined,
  ) {}

  publish(
    type: string,
    object: StripeObject,
    previous?: Record<string, unknown>,
    cause?: EventCause,
  ): StripeObject {
    const event: StripeObject = {
      id: newId('evt'),
      object: 'event',
      api_version: EVENT_API_VERSION,
      created: this.time.nowSeconds(),
      data: {
        object: snapshot(object),
        ...(previous === undefined ? {} : { previous_attributes: previous }),
      },
      livemode: false,
      pending_webhooks: this.webhook === undefined ? 0 : 1,
      request: { id: cause?.requestId ?? null, idempotency_key: cause?.idempotencyKey ?? null },
      type,
    };
    this.state.events.set(event.id, event);
    this.webhook?.deliver(event.id, type, JSON.stringify(event, null, 2));
    return event;
  }

  /** A thin event about `related` (e.g. a meter): the notification carries no data, the event does. */
  publishThin(
    type: string,
    related: StripeObject,
    relatedUrl: string,
    data: Record<string, unknown>,
  ): StripeObject {
    const notification: StripeObject = {
      id: newId('evt'),
      object: 'v2.core.event',
      type,
      created: new Date(this.time.nowMs()).toISOString(),
      livemode: false,
      related_object: { id: related.id, type: related.object, url: relatedUrl },
    };
    this.state.v2Events.set(notification.id, { ...notification, data });
    this.webhook?.deliver(notification.id, type, JSON.stringify(notification, null, 2));
    return notification;
  }
}
