/** One email to an account's owner, with the alert's identity (the same on every attempt). */
export interface AlertMessage {
  /** The alert's id (alert-outbox.ts `alertIdOf`): the one identity of this email everywhere. */
  id: string;
  to: string;
  subject: string;
  text: string;
}

/** What a sender reports for a delivered email. */
export interface AlertSent {
  /** The provider's id of the message (SES MessageId). */
  messageId?: string;
}

/**
 * Delivers alert emails: Amazon SES on AWS (ses-sender.ts), the captured outbox locally
 * (infra/local/mailbox.ts). A sender throws {@link AlertNotSentError} only when the email surely
 * was not delivered (the outbox then sends it again after a backoff); any other failure counts as
 * "may have been delivered", which the outbox sends again only if no confirmation of the delivery
 * arrives within its confirmation window.
 */
export interface AlertSender {
  send(message: AlertMessage): Promise<AlertSent | undefined>;
}

/** The email was surely not delivered (refused, or never reached the provider): safe to send again. */
export class AlertNotSentError extends Error {
  override readonly name = 'AlertNotSentError';
}
