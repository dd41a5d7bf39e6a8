import { SESv2Client, type SESv2ClientConfig, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { ALERT_ID_TAG } from '../../contracts/resources';
import { type AlertMessage, AlertNotSentError, type AlertSender, type AlertSent } from './alert-sender';

/**
 * SES clients of metering: a request timeout that throws (without `throwOnRequestTimeout` the SDK
 * only logs that the time passed and keeps waiting), and no SDK retries: SendEmail has no
 * idempotency token, so a retry after a lost answer is a second email. Retries are the outbox's,
 * which knows whether the first may have been delivered (alert-outbox.ts).
 */
export const sesClientConfig = {
  requestHandler: { connectionTimeout: 2000, requestTimeout: 5000, throwOnRequestTimeout: true },
  maxAttempts: 1,
} satisfies SESv2ClientConfig;

/**
 * Quota alerts through Amazon SES (v2 API), from the owner's verified sender address. Each email
 * carries the alert's id as a message tag, and goes through the configuration set (when one is
 * given) whose event destination reports SES's "Email Sent" event with that tag: the confirmation
 * that settles a send whose answer was lost (alert-events.ts, infra/cdk/constructs/alert-email.ts).
 */
export class SesAlertSender implements AlertSender {
  readonly #ses: SESv2Client;
  readonly #from: string;
  readonly #configurationSet: string | undefined;

  constructor(options: { from: string; configurationSet?: string; client?: SESv2Client }) {
    this.#ses = options.client ?? new SESv2Client(sesClientConfig);
    this.#from = options.from;
    this.#configurationSet = options.configurationSet;
  }

  async send(message: AlertMessage): Promise<AlertSent> {
    try {
      const out = await this.#ses.send(
        new SendEmailCommand({
          FromEmailAddress: this.#from,
          Destination: { ToAddresses: [message.to] },
          Content: {
            Simple: {
              Subject: { Data: message.subject, Charset: 'UTF-8' },
              Body: { Text: { Data: message.text, Charset: 'UTF-8' } },
              // For the recipient's mail system and for whoever reads a bounce: the same on every copy.
              Headers: [{ Name: 'X-Tollgate-Alert-Id', Value: message.id }],
            },
          },
          EmailTags: [{ Name: ALERT_ID_TAG, Value: message.id }],
          ...(this.#configurationSet ? { ConfigurationSetName: this.#configurationSet } : {}),
        }),
      );
      return out.MessageId ? { messageId: out.MessageId } : {};
    } catch (error) {
      if (refusedForSure(error)) throw new AlertNotSentError('SES refused the email', { cause: error });
      throw error;
    }
  }
}

/** Failures before any byte of the request can have reached SES. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

/**
 * Whether SES surely did not send: it answered with a 4xx (throttling included: the request was
 * refused as a whole), or no connection was ever made. Everything else (the request timeout, a
 * reset connection, a 5xx) may have been delivered.
 */
export function refusedForSure(error: unknown): boolean {
  const e = error as
    | { $metadata?: { httpStatusCode?: number }; code?: unknown; message?: unknown }
    | undefined;
  const status = e?.$metadata?.httpStatusCode;
  if (status !== undefined) return status >= 400 && status < 500;
  if (typeof e?.code === 'string' && NOT_CONNECTED.has(e.code)) return true;
  return typeof e?.message === 'string' && e.message.includes('did not establish a connection');
}
