import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { callDynamo } from '../platform/dynamodb';
import { DependencyError } from '../platform/errors';

/** The (key, account) pair an event names. */
export interface KeyClaim {
  readonly keyId: string;
  readonly accountId: string;
}

/** The map key of a claim in answers about many claims (KeyClaims.held, metering's provenance verdicts). */
export const claimId = (claim: KeyClaim): string => `${claim.accountId}\u0000${claim.keyId}`;

/** BatchGetItem takes at most 100 keys per request. */
const BATCH_GET_MAX = 100;
/** Rounds of UnprocessedKeys (throttling) before the check gives up as unavailable. */
const UNPROCESSED_ROUNDS = 4;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * "Does this account hold this key?" asked of the keys table for many claims at once: the primary
 * key is (accountId, keyId), so the answer is exact. What metering's provenance check reads
 * (services/metering/provenance.ts decides what to cache and believe).
 */
export class KeyClaims {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #onRead: ((keys: number, consistent: boolean) => void) | undefined;

  constructor(options: {
    client: DynamoDBDocumentClient;
    keysTable: string;
    /** Called once per BatchGetItem request sent (the read cost, for metrics and tests). */
    onRead?: (keys: number, consistent: boolean) => void;
  }) {
    this.#db = options.client;
    this.#table = options.keysTable;
    this.#onRead = options.onRead;
  }

  /**
   * The claims the keys table holds, by claimId: one BatchGetItem per 100 distinct claims,
   * projected to the key attributes; DependencyError when it cannot say (throttled throughout).
   */
  async held(claims: readonly KeyClaim[], consistent: boolean): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < claims.length; i += BATCH_GET_MAX) {
      let keys: Record<string, unknown>[] | undefined = claims
        .slice(i, i + BATCH_GET_MAX)
        .map((c) => ({ accountId: c.accountId, keyId: c.keyId }));
      for (let round = 0; keys && keys.length > 0; round++) {
        if (round > UNPROCESSED_ROUNDS) {
          // Throttled through every round: the same as DynamoDB unavailable, never "not found".
          throw new DependencyError('DynamoDB', {
            cause: new Error(`${keys.length} keys left unprocessed by BatchGetItem`),
          });
        }
        if (round > 0) await sleep(25 * 2 ** round * (0.5 + Math.random() / 2));
        const request: Record<string, unknown>[] = keys;
        this.#onRead?.(request.length, consistent);
        const out: BatchGetCommandOutput = await callDynamo(() =>
          this.#db.send(
            new BatchGetCommand({
              RequestItems: {
                [this.#table]: {
                  Keys: request,
                  ProjectionExpression: 'accountId, keyId',
                  ConsistentRead: consistent,
                },
              },
            }),
          ),
        );
        for (const item of out.Responses?.[this.#table] ?? []) {
          found.add(claimId({ accountId: String(item.accountId), keyId: String(item.keyId) }));
        }
        keys = out.UnprocessedKeys?.[this.#table]?.Keys;
      }
    }
    return found;
  }
}
