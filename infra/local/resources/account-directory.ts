import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { accountDirectoryAttributes } from '../../../contracts/resources';

/**
 * Local data outlives changes to resources.ts: accounts provisioned before the AccountDirectory
 * index existed lack its attributes, so the admin's list would not show them. Each is given them
 * here (a paged Scan, one conditional UpdateItem per account without `directory`): safe to run on
 * every start and alongside sign-ups, which write the attributes themselves.
 * @returns how many accounts it added to the index
 */
export async function backfillAccountDirectory(
  client: DynamoDBClient,
  accountsTable: string,
): Promise<number> {
  const db = DynamoDBDocumentClient.from(client);
  let added = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new ScanCommand({
        TableName: accountsTable,
        ProjectionExpression: 'accountId, email, directory',
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      if (item.directory !== undefined || typeof item.email !== 'string') continue;
      const { directory, emailKey } = accountDirectoryAttributes(item.email);
      try {
        await db.send(
          new UpdateCommand({
            TableName: accountsTable,
            Key: { accountId: item.accountId },
            UpdateExpression: 'SET directory = :d, emailKey = :e',
            ConditionExpression: 'attribute_exists(accountId) AND attribute_not_exists(directory)',
            ExpressionAttributeValues: { ':d': directory, ':e': emailKey },
          }),
        );
        added++;
      } catch (error) {
        if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return added;
}
