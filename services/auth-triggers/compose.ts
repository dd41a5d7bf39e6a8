import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { PostConfirmationTriggerEvent } from 'aws-lambda';
import { ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { KeyStore } from '../accounts/key-store';
import { type AwsOptions, callerWaitingClientConfig, documentClient } from '../platform/aws-clients';
import { type Clock, systemClock } from '../platform/clock';
import type { AuthTriggersConfig } from './config';
import { onPostConfirmation } from './post-confirmation';

export interface AuthTriggersOverrides {
  /** Where the DynamoDB client built here points; ignored when `clients.dynamo` is given. */
  readonly aws?: AwsOptions;
  readonly clients?: { readonly dynamo?: DynamoDBDocumentClient };
  readonly logger?: Logger;
  readonly clock?: Clock;
}

export type PostConfirmationHandler = (
  event: PostConfirmationTriggerEvent,
) => Promise<PostConfirmationTriggerEvent>;

/** auth-triggers: its configuration and clients → the Cognito PostConfirmation handler. */
export function composeAuthTriggers(
  config: AuthTriggersConfig,
  overrides: AuthTriggersOverrides = {},
): { handler: PostConfirmationHandler } {
  const logger = overrides.logger ?? new Logger({ serviceName: SERVICE_NAMES.authTriggers });
  const clock = overrides.clock ?? systemClock;
  const store = new KeyStore({
    // Cognito waits 5 s for the trigger: bounded (callerWaitingClientConfig), a hung DynamoDB fails
    // it in time, and Cognito's retry (or the user's next try) provisions exactly once.
    client: overrides.clients?.dynamo ?? documentClient(overrides.aws ?? {}, callerWaitingClientConfig),
    accountsTable: config[ENV.accountsTable],
    keysTable: config[ENV.keysTable],
    keyPrefix: config[ENV.keyPrefix],
  });
  /**
   * Failures are thrown, not swallowed as the article did: Cognito then reports the error to the
   * signing-up client, and because provisioning is idempotent a retry (or a replay of the
   * trigger) completes it without a second account or key.
   */
  const handler: PostConfirmationHandler = async (event) => {
    try {
      const outcome = await onPostConfirmation(event, { store, clock });
      logger.info('post confirmation handled', { outcome, userName: event.userName });
      return event;
    } catch (error) {
      logger.error('post confirmation failed', { error, triggerSource: event?.triggerSource });
      throw error;
    }
  };
  return { handler };
}
