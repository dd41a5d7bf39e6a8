import { parseArgs } from 'node:util';
import { accountsTable, tableName } from '../../contracts/resources';
import { dynamoDbClient } from '../../services/platform/aws-clients';
import { backfillAccountDirectory } from '../local/resources/account-directory';

/**
 * `npm run accounts:directory -- --stage prod [--region eu-west-1]`: after the deploy that adds
 * the accounts table's AccountDirectory index (contracts/resources.ts), puts the accounts
 * provisioned before it into the index, so the admin's account list and month reports show them
 * (sign-ups since write its attributes themselves). The local stack does the same at every start
 * (infra/local/bootstrap.ts), with the same function. Safe to run again: one Scan of the accounts
 * table, one conditional UpdateItem per account without the attributes. Needs dynamodb:Scan and
 * dynamodb:UpdateItem on the table, from the SDK's own credential chain (an operator's profile).
 */

const USAGE = 'usage: npm run accounts:directory -- --stage <stage> [--region <region>]';

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      stage: { type: 'string' },
      region: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.stage) {
    console.log(USAGE);
    if (!values.help) process.exitCode = 1;
    return;
  }
  const table = tableName(values.stage, accountsTable);
  const client = dynamoDbClient(values.region ? { region: values.region } : {});
  try {
    const added = await backfillAccountDirectory(client, table);
    console.log(JSON.stringify({ table, added }));
  } finally {
    client.destroy();
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(`accounts:directory failed: ${(error as Error)?.message ?? error}`);
    process.exitCode = 1;
  });
}
