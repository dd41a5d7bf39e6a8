import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CognitoIdentityProviderClient,
  ConfirmSignUpCommand,
  DescribeUserPoolClientCommand,
  DescribeUserPoolCommand,
  InitiateAuthCommand,
  SignUpCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import {
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, inject, it } from 'vitest';
import { DEFAULT_ACCEPTANCE_WINDOW, ENV } from '../../contracts/config';
import { usageRedelivery } from '../../contracts/redelivery';
import {
  KEY_LOOKUP_INDEX,
  usageQueue,
  userPool,
  userPoolClientName,
  userPoolName,
} from '../../contracts/resources';
import { latestCode, outboxPath, readCapturedCodes } from '../../infra/local/mailbox';
import { findFreePorts, PORT_NAMES, portProblem } from '../../infra/local/ports';
import { startLocalStack } from '../../infra/local/stack';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const endpoints = inject('endpoints');
const env = inject('env');
const dataDir = inject('dataDir');
const region = endpoints.region;

const dynamodb = () => new DynamoDBClient({ region, endpoint: endpoints.dynamodb, credentials });
const cognito = () =>
  new CognitoIdentityProviderClient({ region, endpoint: endpoints.cognito.endpoint, credentials });

function jwtPayload(token: string): Record<string, unknown> {
  const [, payload = ''] = token.split('.');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('the local stack', () => {
  it('writes endpoints.json with every endpoint', async () => {
    const written = JSON.parse(await readFile(join(dataDir, 'endpoints.json'), 'utf8'));
    expect(written).toEqual(endpoints);
    const url = expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(written).toEqual({
      region: 'us-east-1',
      cognito: { endpoint: url, userPoolId: expect.any(String), clientId: expect.any(String) },
      userApi: url,
      keyApi: url,
      exampleApi: url,
      dynamodb: url,
      sqs: url,
      kinesis: url,
      lambda: url,
      web: url,
      stripe: url,
      billingWebhook: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/billing\/webhook$/),
      ops: url,
    });
  });

  it('runs billing against its Stripe stand-in: billing.json, the pro plan with its price, a webhook that refuses unsigned deliveries', async () => {
    const billing = JSON.parse(await readFile(join(dataDir, 'billing.json'), 'utf8'));
    expect(billing).toEqual({
      secretKey: expect.stringMatching(/^sk_test_/),
      webhookSecret: expect.stringMatching(/^whsec_/),
      meterId: expect.stringMatching(/^mtr_/),
      eventName: 'tollgate_requests',
      prices: { pro: expect.stringMatching(/^price_/) },
    });
    const plan = await dynamodb().send(
      new GetItemCommand({
        TableName: env[ENV.plansTable],
        Key: { planId: { S: 'pro' } },
        ConsistentRead: true,
      }),
    );
    expect(plan.Item?.billing?.M?.priceId?.S).toBe(billing.prices.pro);
    const meter = await fetch(`${endpoints.stripe}/v1/billing/meters/${billing.meterId}`, {
      headers: { authorization: `Bearer ${billing.secretKey}` },
    });
    expect(await meter.json()).toMatchObject({
      id: billing.meterId,
      default_aggregation: { formula: 'sum' },
    });
    // The price is metered on that meter: the renewal invoice bills what Tollgate reported.
    const price = await fetch(`${endpoints.stripe}/v1/prices/${billing.prices.pro}`, {
      headers: { authorization: `Bearer ${billing.secretKey}` },
    });
    expect(await price.json()).toMatchObject({
      recurring: { interval: 'month', usage_type: 'metered', meter: billing.meterId },
    });
    expect(plan.Item).toMatchObject({ quota: { M: expect.anything() }, rateLimit: { M: expect.anything() } });
    const unsigned = await fetch(endpoints.billingWebhook, { method: 'POST', body: '{}' });
    expect(unsigned.status).toBe(400);
    // The environment names the Stripe secrets' ARNs, never their values.
    expect(Object.values(env)).not.toContain(billing.secretKey);
    expect(Object.values(env)).not.toContain(billing.webhookSecret);
  });

  it('creates the tables of contracts/resources.ts, with the KeyLookup index', async () => {
    const client = dynamodb();
    const keys = (await client.send(new DescribeTableCommand({ TableName: env.TOLLGATE_KEYS_TABLE }))).Table;
    expect(keys?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(keys?.KeySchema).toEqual([
      { AttributeName: 'accountId', KeyType: 'HASH' },
      { AttributeName: 'keyId', KeyType: 'RANGE' },
    ]);
    const lookup = keys?.GlobalSecondaryIndexes?.find((index) => index.IndexName === KEY_LOOKUP_INDEX);
    expect(lookup?.KeySchema).toEqual([{ AttributeName: 'keyHash', KeyType: 'HASH' }]);
    expect(lookup?.Projection?.ProjectionType).toBe('INCLUDE');
    expect(lookup?.Projection?.NonKeyAttributes).toEqual(expect.arrayContaining(['status', 'expiresAt']));

    const accounts = (await client.send(new DescribeTableCommand({ TableName: env.TOLLGATE_ACCOUNTS_TABLE })))
      .Table;
    expect(accounts?.TableStatus).toBe('ACTIVE');
    client.destroy();
  });

  it('creates the usage queue with the redelivery of the CDK stack for its late window, then its dead-letter queue', async () => {
    const client = new SQSClient({ region, endpoint: endpoints.sqs, credentials });
    const queue = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: env.TOLLGATE_USAGE_QUEUE_URL, AttributeNames: ['All'] }),
    );
    const dlq = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: env.TOLLGATE_USAGE_DLQ_URL, AttributeNames: ['QueueArn'] }),
    );
    const redelivery = usageRedelivery(Number(env[ENV.lateWindowMs] ?? DEFAULT_ACCEPTANCE_WINDOW.lateMs));
    expect(queue.Attributes?.VisibilityTimeout).toBe(String(usageQueue.visibilityTimeoutSeconds));
    const redrive = JSON.parse(queue.Attributes?.RedrivePolicy ?? '{}');
    expect(redrive.deadLetterTargetArn).toBe(dlq.Attributes?.QueueArn);
    // Delivered again until the late window nears (840 times with 48 h), as on AWS.
    expect(Number(redrive.maxReceiveCount)).toBe(redelivery.queue.maxReceiveCount);
    expect(Number(redrive.maxReceiveCount)).toBeGreaterThan(5);
    client.destroy();
  });

  it('creates the usage stream (reachable with the default, HTTP/2 Kinesis client)', async () => {
    const client = new KinesisClient({ region, endpoint: endpoints.kinesis, credentials });
    const summary = (
      await client.send(new DescribeStreamSummaryCommand({ StreamName: env.TOLLGATE_USAGE_STREAM_NAME }))
    ).StreamDescriptionSummary;
    expect(summary?.StreamStatus).toBe('ACTIVE');
    expect(summary?.OpenShardCount).toBe(1);
    client.destroy();
  });

  it('creates the user pool and its public app client', async () => {
    const client = cognito();
    const pool = (
      await client.send(new DescribeUserPoolCommand({ UserPoolId: endpoints.cognito.userPoolId }))
    ).UserPool;
    expect(pool?.Name).toBe(userPoolName('local'));
    expect(pool?.UsernameAttributes).toEqual(['email']);
    expect(pool?.AutoVerifiedAttributes).toEqual(['email']);
    expect(pool?.Policies?.PasswordPolicy?.MinimumLength).toBe(userPool.passwordPolicy.minimumLength);

    const appClient = (
      await client.send(
        new DescribeUserPoolClientCommand({
          UserPoolId: endpoints.cognito.userPoolId,
          ClientId: endpoints.cognito.clientId,
        }),
      )
    ).UserPoolClient;
    expect(appClient?.ClientName).toBe(userPoolClientName('local'));
    expect(appClient?.ClientSecret).toBeUndefined();
    expect(appClient?.ExplicitAuthFlows).toEqual(
      expect.arrayContaining(['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH']),
    );
    client.destroy();
  });

  it('signs a user up with the emailed code captured locally, then signs them in', async () => {
    const client = cognito();
    const email = `stack-${Date.now()}@example.com`;
    const password = 'Local-Stack-2024';
    const signUp = await client.send(
      new SignUpCommand({
        ClientId: endpoints.cognito.clientId,
        Username: email,
        Password: password,
        UserAttributes: [{ Name: 'email', Value: email }],
      }),
    );
    expect(signUp.UserConfirmed).toBe(false);

    const code = await latestCode(dataDir, email);
    expect(code).toMatch(/^\d{6}$/);
    const captured = (await readCapturedCodes(dataDir)).find((message) => message.destination === email);
    expect(captured).toMatchObject({ code, username: signUp.UserSub });
    expect(outboxPath(dataDir)).toBe(join(dataDir, 'mail', 'outbox.jsonl'));

    // Runs the PostConfirmation trigger through the local Lambda Invoke server.
    await client.send(
      new ConfirmSignUpCommand({
        ClientId: endpoints.cognito.clientId,
        Username: email,
        ConfirmationCode: code,
      }),
    );
    const auth = await client.send(
      new InitiateAuthCommand({
        ClientId: endpoints.cognito.clientId,
        AuthFlow: 'USER_PASSWORD_AUTH',
        AuthParameters: { USERNAME: email, PASSWORD: password },
      }),
    );
    const idToken = auth.AuthenticationResult?.IdToken;
    expect(idToken).toBeTruthy();
    const claims = jwtPayload(idToken ?? '');
    expect(claims).toMatchObject({
      iss: env.TOLLGATE_JWT_ISSUER,
      aud: endpoints.cognito.clientId,
      token_use: 'id',
      email,
      email_verified: true,
    });

    const jwks = await fetch(env.TOLLGATE_JWKS_URI ?? '');
    expect(jwks.status).toBe(200);
    expect(((await jwks.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    client.destroy();
  });
});

describe('a restarted local stack', () => {
  it('keeps its user pool, app client and table data; the pro plan gets the new stand-in price', async () => {
    const ownDataDir = await mkdtemp(join(tmpdir(), 'tollgate-restart-'));
    // The same ports for both runs, as a developer's second `npm start` has them.
    const ports = await findFreePorts();
    try {
      const first = await startLocalStack({ dataDir: ownDataDir, ports, quiet: true });
      const table = first.env.TOLLGATE_ACCOUNTS_TABLE;
      const billingFile = () => readFile(join(ownDataDir, 'billing.json'), 'utf8').then(JSON.parse);
      const firstPrice = (await billingFile()).prices.pro;
      try {
        const client = new DynamoDBClient({ region, endpoint: first.endpoints.dynamodb, credentials });
        await client.send(
          new PutItemCommand({ TableName: table, Item: { accountId: { S: 'restart-check' } } }),
        );
        client.destroy();
      } finally {
        await first.stop();
      }

      const second = await startLocalStack({ dataDir: ownDataDir, ports, quiet: true });
      try {
        expect(second.endpoints.cognito.userPoolId).toBe(first.endpoints.cognito.userPoolId);
        expect(second.endpoints.cognito.clientId).toBe(first.endpoints.cognito.clientId);
        const client = new DynamoDBClient({ region, endpoint: second.endpoints.dynamodb, credentials });
        const item = await client.send(
          new GetItemCommand({ TableName: table, Key: { accountId: { S: 'restart-check' } } }),
        );
        expect(item.Item?.accountId?.S).toBe('restart-check');
        // The stand-in starts empty each time: a new price, and the plan saved with it.
        const secondPrice = (await billingFile()).prices.pro;
        expect(secondPrice).not.toBe(firstPrice);
        const plan = await client.send(
          new GetItemCommand({
            TableName: second.env[ENV.plansTable],
            Key: { planId: { S: 'pro' } },
            ConsistentRead: true,
          }),
        );
        expect(plan.Item?.billing?.M?.priceId?.S).toBe(secondPrice);
        client.destroy();
      } finally {
        await second.stop();
      }
    } finally {
      await rm(ownDataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('a local stack that fails to start part-way', () => {
  it('stops what it had started, in reverse order, and leaves the data dir free', async () => {
    const ownDataDir = await mkdtemp(join(tmpdir(), 'tollgate-failed-'));
    const ports = await findFreePorts();
    try {
      // Read when the deployables are composed: after the engines are up and bootstrap has run.
      const start = startLocalStack({
        dataDir: ownDataDir,
        ports,
        quiet: true,
        settings: { [ENV.keyCacheFreshMs]: 'soon' },
      });
      await expect(start).rejects.toThrow(ENV.keyCacheFreshMs);
      // Bootstrap did run: the admin's sign-in was written.
      await expect(access(join(ownDataDir, 'admin.json'))).resolves.toBeUndefined();
      // DynamoDB Local's JVM has exited and every server is closed: each port is free again.
      for (const name of PORT_NAMES) expect(await portProblem(ports[name]), name).toBeUndefined();
      for (const file of ['stack.lock', 'dynamodb.pid', 'endpoints.json']) {
        await expect(access(join(ownDataDir, file)), file).rejects.toThrow('ENOENT');
      }
    } finally {
      await rm(ownDataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
