import { z } from 'zod';
import { ALERT_ID_TAG } from '../../contracts/resources';

/**
 * The EventBridge events metering's alerts entry takes (infra/cdk/constructs/alert-email.ts):
 *  - the schedule's `Scheduled Event`, every minute: send what is due in the outbox;
 *  - SES's `Email Sent` (the configuration set's event destination, the default event bus): an
 *    alert email SES accepted, named by its message tag, so the outbox records it sent even when
 *    the answer to SendEmail was lost.
 */
const scheduledEventSchema = z.looseObject({
  source: z.literal('aws.events'),
  'detail-type': z.literal('Scheduled Event'),
});

const sesSentEventSchema = z.looseObject({
  source: z.literal('aws.ses'),
  'detail-type': z.literal('Email Sent'),
  detail: z.looseObject({
    mail: z.looseObject({
      messageId: z.string().min(1).optional(),
      tags: z.record(z.string(), z.array(z.string())).optional(),
    }),
  }),
});

export type AlertsEvent =
  | { kind: 'schedule' }
  | { kind: 'delivered'; alertId: string; messageId?: string }
  /** An SES send event of an email that is no alert (no tag): nothing to do. */
  | { kind: 'other' };

/** Whether an event is the alerts entry's (an EventBridge event), not a usage batch. */
export function isAlertsEvent(event: unknown): boolean {
  return typeof event === 'object' && event !== null && 'detail-type' in event && 'source' in event;
}

/** @throws on an event this entry does not take (a wiring mistake: the rule's pattern and this disagree) */
export function parseAlertsEvent(event: unknown): AlertsEvent {
  if (scheduledEventSchema.safeParse(event).success) return { kind: 'schedule' };
  const sent = sesSentEventSchema.safeParse(event);
  if (sent.success) {
    const alertId = sent.data.detail.mail.tags?.[ALERT_ID_TAG]?.[0];
    if (!alertId) return { kind: 'other' };
    const messageId = sent.data.detail.mail.messageId;
    return { kind: 'delivered', alertId, ...(messageId ? { messageId } : {}) };
  }
  throw new Error('not an alerts event: expected a Scheduled Event or an SES Email Sent event');
}
