import { describe, expect, it, vi } from 'vitest';
import { ENV } from '../../contracts/config';
import { composeAuthTriggers } from '../../services/auth-triggers/compose';
import { loadAuthTriggersConfig } from '../../services/auth-triggers/config';
import { composeGate, loadGateConfig } from '../../services/gate/index';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { composeMetering } from '../../services/metering/compose';
import { loadMeteringConfig } from '../../services/metering/config';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';

// Every AWS client a deployable's compose function builds, as Lambda builds it (no client given),
// has a connection timeout, a request timeout that throws (without `throwOnRequestTimeout` the SDK
// only logs a warning and keeps waiting), and a bounded number of attempts, whose worst case fits
// the deployable's deadline. The SDK's client classes are subclassed only to record each instance
// as it is constructed; nothing is sent. Behaviour against a hung endpoint:
// test/integ/client-timeouts.integ.test.ts.

const built = vi.hoisted(() => [] as Array<{ service: string; client: unknown }>);

function recording(service: string, module: Record<string, unknown>, className: string) {
  const Base = module[className] as new (...args: unknown[]) => object;
  class Recorded extends Base {
    constructor(...args: unknown[]) {
      super(...args);
      built.push({ service, client: this });
    }
  }
  return { ...module, [className]: Recorded };
}

vi.mock('@aws-sdk/client-dynamodb', async (original) =>
  recording('DynamoDB', await original(), 'DynamoDBClient'),
);
vi.mock('@aws-sdk/client-sqs', async (original) => recording('SQS', await original(), 'SQSClient'));
vi.mock('@aws-sdk/client-kinesis', async (original) =>
  recording('Kinesis', await original(), 'KinesisClient'),
);
vi.mock('@aws-sdk/client-sesv2', async (original) => recording('SES', await original(), 'SESv2Client'));
vi.mock('@aws-sdk/client-cognito-identity-provider', async (original) =>
  recording('Cognito', await original(), 'CognitoIdentityProviderClient'),
);

interface Budget {
  service: string;
  connectionTimeout: unknown;
  requestTimeout: unknown;
  throwOnRequestTimeout: unknown;
  maxAttempts: number;
}

/** What a client resolved its request handler and attempts to (the SDK resolves both lazily). */
async function budgetOf(entry: { service: string; client: unknown }): Promise<Budget> {
  const config = (entry.client as { config: { requestHandler: unknown; maxAttempts: () => Promise<number> } })
    .config;
  const handler = config.requestHandler as { configProvider?: Promise<Record<string, unknown>> };
  const resolved = (await handler.configProvider) ?? {};
  return {
    service: entry.service,
    connectionTimeout: resolved.connectionTimeout,
    requestTimeout: resolved.requestTimeout,
    throwOnRequestTimeout: resolved.throwOnRequestTimeout,
    maxAttempts: await config.maxAttempts(),
  };
}

/** The clients `compose` builds, each with its budget. */
async function clientsOf(compose: () => unknown): Promise<Budget[]> {
  built.length = 0;
  compose();
  return Promise.all(built.map(budgetOf));
}

/** About the longest one call can take: every attempt times out (backoff aside). */
const worstMs = (b: Budget) =>
  b.maxAttempts * Math.max(Number(b.connectionTimeout), Number(b.requestTimeout));

function expectBounded(budgets: readonly Budget[], services: readonly string[], maxWorstMs: number) {
  expect(budgets.map((b) => b.service).sort()).toEqual([...services].sort());
  for (const b of budgets) {
    expect(b.connectionTimeout, b.service).toBeGreaterThan(0);
    expect(b.requestTimeout, b.service).toBeGreaterThan(0);
    expect(b.throwOnRequestTimeout, b.service).toBe(true);
    expect(worstMs(b), b.service).toBeLessThanOrEqual(maxWorstMs);
  }
}

const TABLES = {
  [ENV.accountsTable]: 'accounts',
  [ENV.keysTable]: 'keys',
  [ENV.usageTable]: 'usage',
  [ENV.plansTable]: 'plans',
};
const QUEUE = 'https://sqs.us-east-1.amazonaws.com/000000000000/usage';

describe('every AWS client a deployable composes is bounded in time', () => {
  it('user-api: within its 10 s function timeout, with room for a second call', async () => {
    const budgets = await clientsOf(() =>
      composeUserApi(
        loadUserApiConfig({
          ...TABLES,
          [ENV.jwtIssuer]: 'https://cognito-idp.us-east-1.amazonaws.com/pool',
          [ENV.jwksUri]: 'https://cognito-idp.us-east-1.amazonaws.com/pool/.well-known/jwks.json',
          [ENV.userPoolClientId]: 'client',
        }),
      ),
    );
    expectBounded(budgets, ['DynamoDB'], 4000);
  });

  it('auth-triggers: within the 5 s Cognito waits, for its two calls', async () => {
    const budgets = await clientsOf(() => composeAuthTriggers(loadAuthTriggersConfig(TABLES)));
    expectBounded(budgets, ['DynamoDB'], 2000);
  });

  it('key-api and a gate, on either transport: within the 5 s function timeout, lookup and publish together', async () => {
    const sqs = { ...TABLES, [ENV.usageQueueUrl]: QUEUE };
    const kinesis = { ...TABLES, [ENV.transport]: 'kinesis', [ENV.usageStreamName]: 'usage' };
    for (const env of [sqs, kinesis]) {
      const publisher = env === sqs ? 'SQS' : 'Kinesis';
      expectBounded(
        await clientsOf(() => composeKeyApi(loadKeyApiConfig(env))),
        ['DynamoDB', publisher],
        2000,
      );
      expectBounded(await clientsOf(() => composeGate(loadGateConfig(env))), ['DynamoDB', publisher], 2000);
    }
  });

  it('metering: a hung dependency fails the batch well inside the 30 s consumer timeout', async () => {
    const env = { ...TABLES, [ENV.usageDlqUrl]: `${QUEUE}-dlq` };
    expectBounded(
      await clientsOf(() => composeMetering(loadMeteringConfig(env))),
      ['DynamoDB', 'SQS', 'Kinesis'],
      15_000,
    );
    // With quota alerts: the SES sender and the owner's address (Cognito) too.
    const alerting = {
      ...env,
      [ENV.alertFromAddress]: 'alerts@example.com',
      [ENV.alertUserPoolId]: 'us-east-1_pool',
    };
    expectBounded(
      await clientsOf(() => composeMetering(loadMeteringConfig(alerting))),
      ['DynamoDB', 'SQS', 'Kinesis', 'SES', 'Cognito'],
      15_000,
    );
  });
});
