import { type ConflictRetryPolicy, conflictBackoffMs } from '../platform/dynamodb';
import { ConflictError } from '../platform/errors';
import type { KeyRecord } from './records';

/**
 * The transaction items KeyStore's writes are made of, and the optimistic retry around them: kept
 * apart from the store so each write reads as "what it checks, what it writes".
 */

/** What an optimistic attempt answers when a concurrent write moved the account's keysVersion. */
export const LOST_RACE = Symbol('lost race');

/**
 * Runs an optimistic attempt again while it loses its race (another write moved the account's
 * keysVersion between its read and its commit), with the jittered backoff of conflicts; one
 * that keeps losing is a ConflictError (409), as a write that keeps conflicting is.
 */
export async function optimistic<T>(
  policy: ConflictRetryPolicy,
  attempt: () => Promise<T | typeof LOST_RACE>,
): Promise<T> {
  for (let retry = 0; ; retry++) {
    const result = await attempt();
    if (result !== LOST_RACE) return result;
    if (retry >= policy.retries) throw new ConflictError('DynamoDB');
    const wait = conflictBackoffMs(retry, policy);
    await (policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))))(wait);
  }
}

/**
 * The transaction item that bumps the account's keysVersion: on the condition that it is still
 * `version` (what the write's count was read at), or with 'any' only that the account exists.
 */
export function keysChangedItem(
  accountsTable: string,
  accountId: string,
  version: number | undefined | 'any',
) {
  const condition =
    version === 'any'
      ? { ConditionExpression: 'attribute_exists(accountId)' }
      : version === undefined
        ? { ConditionExpression: 'attribute_exists(accountId) AND attribute_not_exists(keysVersion)' }
        : {
            ConditionExpression: 'keysVersion = :version',
            ExpressionAttributeValues: { ':version': version },
          };
  return {
    Update: {
      TableName: accountsTable,
      Key: { accountId },
      UpdateExpression: 'ADD keysVersion :one',
      ...condition,
      ExpressionAttributeValues: { ':one': 1, ...condition.ExpressionAttributeValues },
    },
  };
}

/** A new key, written only where no key of its id exists. */
export function putNewKeyItem(keysTable: string, record: KeyRecord) {
  return { Put: { TableName: keysTable, Item: record, ConditionExpression: 'attribute_not_exists(keyId)' } };
}

/** The rolled key turns expiring (until `expiresAt`) and names its replacement, if still active. */
export function expireRolledKeyItem(keysTable: string, old: KeyRecord, expiresAt: string, next: string) {
  return {
    Update: {
      TableName: keysTable,
      Key: { accountId: old.accountId, keyId: old.keyId },
      UpdateExpression: 'SET #status = :expiring, expiresAt = :expiresAt, replacedBy = :next',
      ConditionExpression: '#status = :active',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':expiring': 'expiring',
        ':active': 'active',
        ':expiresAt': expiresAt,
        ':next': next,
      },
    },
  };
}

/**
 * An expiring predecessor's grace ends `now` (it reads as expired from here on), unless it was
 * revoked or changed since it was read: then the roll's attempt is retried.
 */
export function endGraceItem(keysTable: string, ending: KeyRecord, now: Date) {
  return {
    Update: {
      TableName: keysTable,
      Key: { accountId: ending.accountId, keyId: ending.keyId },
      UpdateExpression: 'SET expiresAt = :now',
      ConditionExpression: '#status = :expiring AND expiresAt = :was',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':expiring': 'expiring',
        ':was': ending.expiresAt,
        ':now': now.toISOString(),
      },
    },
  };
}
