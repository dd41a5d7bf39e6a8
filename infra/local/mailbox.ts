import { randomUUID } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AlertMessage, AlertSender, AlertSent } from '../../services/metering/compose';

/**
 * The local stack sends no email: every code cognito-local would deliver is appended here as one
 * JSON line, so sign-up works offline and tests and scripts can read the code back.
 */
export interface CapturedMessage {
  /** ISO time of delivery. */
  readonly at: string;
  /** A verification code (cognito-local; the default) or a quota alert (metering). */
  readonly kind?: 'code' | 'quota_alert';
  /** Cognito user name (a UUID when users sign in with their email). */
  readonly username: string;
  /** The email address (or phone number) the code was for. */
  readonly destination: string;
  readonly code: string;
  readonly subject?: string;
  readonly message?: string;
  /**
   * A quota alert's identity (services/usage/alert-outbox.ts `alertIdOf`), the one SES carries as
   * a message tag: every captured line is one email sent, so two lines with one id are a duplicate.
   */
  readonly alertId?: string;
  /** The id the local "provider" gave the email, as SES answers a MessageId. */
  readonly messageId?: string;
}

export function outboxPath(dataDir: string): string {
  return join(dataDir, 'mail', 'outbox.jsonl');
}

export async function appendCapturedMessage(dataDir: string, message: CapturedMessage): Promise<void> {
  const path = outboxPath(dataDir);
  await mkdir(dirname(path), { recursive: true });
  await appendFile(path, `${JSON.stringify(message)}\n`, 'utf8');
}

/** Every captured message, oldest first; none when nothing was sent yet. */
export async function readCapturedCodes(dataDir: string): Promise<CapturedMessage[]> {
  let text: string;
  try {
    text = await readFile(outboxPath(dataDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const messages: CapturedMessage[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      messages.push(JSON.parse(line) as CapturedMessage);
    } catch {
      // A line cut short by a crash mid-append must not hide the lines around it.
    }
  }
  return messages;
}

/** The quota alerts captured, oldest first; only those of one alert when `alertId` is given. */
export async function capturedAlerts(dataDir: string, alertId?: string): Promise<CapturedMessage[]> {
  return (await readCapturedCodes(dataDir)).filter(
    (m) => m.kind === 'quota_alert' && (alertId === undefined || m.alertId === alertId),
  );
}

/** The most recent code sent to this address (case-insensitive), if any. */
export async function latestCode(dataDir: string, email: string): Promise<string | undefined> {
  const wanted = email.trim().toLowerCase();
  const messages = await readCapturedCodes(dataDir);
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message && message.kind !== 'quota_alert' && message.destination.toLowerCase() === wanted) {
      return message.code;
    }
  }
  return undefined;
}

/**
 * Quota alerts into the captured outbox, as SES sends them on AWS: one line per email, with the
 * alert's identity, and a delivery event afterwards (SES's "Email Sent" through EventBridge), which
 * `onDelivered` receives apart from the send's own answer: an answer lost after this point leaves
 * the alert to be confirmed by the event, as on AWS.
 */
export function localAlertSender(options: {
  dataDir: string;
  onDelivered?: (alertId: string, messageId: string) => Promise<unknown>;
  notice?: (line: string) => void;
}): AlertSender {
  return {
    send: async (alert: AlertMessage): Promise<AlertSent> => {
      const messageId = randomUUID();
      await appendCapturedMessage(options.dataDir, {
        at: new Date().toISOString(),
        kind: 'quota_alert',
        username: '',
        destination: alert.to,
        code: '',
        subject: alert.subject,
        message: alert.text,
        alertId: alert.id,
        messageId,
      });
      options.notice?.(`[mail] quota alert for ${alert.to}: ${alert.subject}`);
      const deliver = options.onDelivered;
      if (deliver) {
        // Like EventBridge: on its own path, after the send; a failed delivery event is retried once.
        setImmediate(() => {
          deliver(alert.id, messageId).catch(() =>
            setTimeout(() => deliver(alert.id, messageId).catch(() => undefined), 1000),
          );
        });
      }
      return { messageId };
    },
  };
}
