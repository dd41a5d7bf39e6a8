import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

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
