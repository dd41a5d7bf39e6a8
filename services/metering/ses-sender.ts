import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import type { AlertMessage, AlertSender } from './quota-alerts';

/** Quota alerts through Amazon SES (v2 API), from the owner's verified sender address. */
export class SesAlertSender implements AlertSender {
  readonly #ses: SESv2Client;
  readonly #from: string;

  constructor(options: { from: string; client?: SESv2Client }) {
    this.#ses = options.client ?? new SESv2Client({});
    this.#from = options.from;
  }

  async send(message: AlertMessage): Promise<void> {
    await this.#ses.send(
      new SendEmailCommand({
        FromEmailAddress: this.#from,
        Destination: { ToAddresses: [message.to] },
        Content: {
          Simple: {
            Subject: { Data: message.subject, Charset: 'UTF-8' },
            Body: { Text: { Data: message.text, Charset: 'UTF-8' } },
          },
        },
      }),
    );
  }
}
