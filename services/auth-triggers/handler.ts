import { Logger } from '@aws-lambda-powertools/logger';
import type { PostConfirmationTriggerEvent } from 'aws-lambda';
import { systemClock } from '../shared/clock';
import { keyDataEnv, loadConfig } from '../shared/config';
import { createDocumentClient } from '../shared/dynamodb';
import { KeyStore } from '../shared/key-store';
import { onPostConfirmation } from './post-confirmation';

const config = loadConfig('auth-triggers', keyDataEnv);
const logger = new Logger({ serviceName: 'auth-triggers' });
const store = new KeyStore({
  client: createDocumentClient(),
  accountsTable: config.TOLLGATE_ACCOUNTS_TABLE,
  keysTable: config.TOLLGATE_KEYS_TABLE,
  keyPrefix: config.TOLLGATE_KEY_PREFIX,
});

/**
 * Cognito PostConfirmation trigger. Failures are thrown, not swallowed as the article did: Cognito
 * then reports the error to the signing-up client, and because provisioning is idempotent a retry
 * (or a replay of the trigger) completes it without a second account or key.
 */
export async function handler(event: PostConfirmationTriggerEvent): Promise<PostConfirmationTriggerEvent> {
  try {
    const outcome = await onPostConfirmation(event, { store, clock: systemClock });
    logger.info('post confirmation handled', { outcome, userName: event.userName });
    return event;
  } catch (error) {
    logger.error('post confirmation failed', { error, triggerSource: event?.triggerSource });
    throw error;
  }
}
