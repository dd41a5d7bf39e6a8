/**
 * COMPARISON ONLY: not part of Tollgate, never deployed. A faithful TypeScript port of the Test API
 * handler of the article Tollgate grew out of (shared/seed, "Users Only: Quickstart for creating a
 * SaaS"; Python there), so the benchmark can measure that design next to Tollgate's on the same
 * engines. Per request: one query on the `KeyLookup` GSI by the plaintext key, then one
 * `SET Count = Count + 1` UpdateItem with ReturnValues UPDATED_NEW, and the new count in the answer.
 *
 * Kept as the article wrote it, flaws included (plaintext keys, a 500 for an unknown key, no
 * checksum, no cache): fixing them would change what is being compared.
 */
import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ALBEvent, ALBResult } from 'aws-lambda';

export const BASELINE_INDEX = 'KeyLookup';

export interface BaselineDeps {
  readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
}

export function createBaselineHandler(deps: BaselineDeps): (event: ALBEvent) => Promise<ALBResult> {
  return async (event) => {
    const response: ALBResult = {
      isBase64Encoded: false,
      headers: {
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-origin': '*',
        'access-control-allow-headers': 'Content-Type, Access-Control-Allow-Headers',
      },
      statusCode: 500,
    };
    try {
      if (event.httpMethod === 'POST') {
        // json.loads(event["body"]).get("key")
        const key = (JSON.parse(event.body ?? '') as { key?: unknown }).key;
        // table.query(IndexName='KeyLookup', KeyConditionExpression=Key('Key').eq(key)); boto3
        // names the attribute through a placeholder (KEY is a reserved word).
        const keySearch = await deps.client.send(
          new QueryCommand({
            TableName: deps.tableName,
            IndexName: BASELINE_INDEX,
            KeyConditionExpression: '#n0 = :v0',
            ExpressionAttributeNames: { '#n0': 'Key' },
            ExpressionAttributeValues: { ':v0': key },
          }),
        );
        const item = keySearch.Items?.[0];
        if (!item) throw new Error('list index out of range');
        const keyUpdate = await deps.client.send(
          new UpdateCommand({
            TableName: deps.tableName,
            Key: { Id: item.Id },
            UpdateExpression: 'set #c = #c +:num',
            ExpressionAttributeNames: { '#c': 'Count' },
            ExpressionAttributeValues: { ':num': 1 },
            ReturnValues: 'UPDATED_NEW',
          }),
        );
        const count = keyUpdate.Attributes?.Count as number;
        response.body = JSON.stringify({ COUNT: Math.trunc(count) });
        response.statusCode = 200;
      } else if (event.httpMethod === 'OPTIONS') {
        response.statusCode = 200;
      } else {
        throw new Error('Method not accepted');
      }
    } catch {
      // The article prints the error (print("ERR: ", err)); the benchmark only keeps the 500.
      response.statusCode = 500;
    }
    return response;
  };
}
