import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { AdminUpdateUserAttributesCommand } from '@aws-sdk/client-cognito-identity-provider';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import type { PlanBody } from '../../contracts/plans';
import { ALERT_MARK_PREFIX } from '../../contracts/resources';
import { newUsageEvent, type UsageEvent } from '../../contracts/usage-event';
import { capturedAlerts, localAlertSender } from '../../infra/local/mailbox';
import { PlanStore } from '../../services/accounts/plan-store';
import { type AlertMessage, AlertNotSentError, type AlertSender } from '../../services/metering/alert-sender';
import { composeMetering, type Metering } from '../../services/metering/compose';
import { loadMeteringConfig } from '../../services/metering/config';
import { SesAlertSender, sesClientConfig } from '../../services/metering/ses-sender';
import { discardMetrics } from '../../services/platform/metrics';
import { alertIdOf, type OutboxTiming } from '../../services/usage/alert-items';
import { recordFigures } from '../support/figures';
import { cognitoClient, endpoints, localClients, signUpAndSignIn, stackEnv } from '../support/local-stack';
import { keySeeder } from '../support/seed-keys';
import { eventually, sleep } from '../support/wait';

// Quota alerts exactly once, against the shared stack's DynamoDB and the captured outbox (the local
// mailbox, which records every email with its alert id: two lines with one id are a duplicate). Each
// test composes metering itself, so the faults it injects (into the sender, into the DynamoDB client)
// stay its own, and feeds it SQS batches directly.

const QUOTA = 10;
/** Short windows, so a test sees leases run out and confirmation windows pass. */
const TIMING: OutboxTiming = { leaseMs: 1000, confirmWindowMs: 1500, retryBaseMs: 200, retryMaxMs: 1000 };
const SCHEDULED = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };

const env = stackEnv();
const dataDir = inject('dataDir');
const clients = localClients();
const plans = new PlanStore({
  client: clients.doc,
  plansTable: env[ENV.plansTable] as string,
  accountsTable: env[ENV.accountsTable] as string,
});
const seed = keySeeder(clients.doc, env[ENV.keysTable] as string);
const silent = new Logger({ serviceName: 'quota-alerts-test', logLevel: 'SILENT' });
const figures: Record<string, unknown> = {};

let planCount = 0;
async function planOf(
  accountId: string,
  body: PlanBody = { name: 'Alerted', quota: { requests: QUOTA, period: 'day' } },
) {
  const planId = `alerts-${process.pid}-${Date.now()}-${planCount++}`;
  await plans.putPlan(planId, body, new Date());
  expect(await plans.assignPlan(accountId, planId)).toBe(true);
}

/** A signed-up owner (its account provisioned by the stack's PostConfirmation trigger) on a 10-a-day plan. */
async function newAccount(label: string): Promise<{ accountId: string; email: string }> {
  const owner = await signUpAndSignIn(label);
  const payload = owner.idToken.split('.')[1] ?? '';
  const { sub } = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string };
  await planOf(sub);
  return { accountId: sub, email: owner.email };
}

/** What reached the sender for one account (the schedule sends every account's due alerts). */
const ofAccount = (sends: readonly AlertMessage[], accountId: string) =>
  sends.filter((m) => m.id.endsWith(`-${accountId}`));

function sqsEvent(events: readonly UsageEvent[]): SQSEvent {
  return {
    Records: events.map((event) => ({
      messageId: randomUUID(),
      receiptHandle: 'r',
      body: JSON.stringify(event),
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'test',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:eu-west-1:000000000000:usage',
      awsRegion: 'eu-west-1',
    })),
  };
}

function eventsOf(accountId: string, count: number, at = new Date()): UsageEvent[] {
  const keyId = `key_alerts_${accountId.slice(0, 8)}`;
  return Array.from({ length: count }, () => newUsageEvent({ keyId, accountId, now: at }));
}

interface Consumer {
  metering: Metering;
  /** Counts the batch, its quota alerts included. */
  consume(events: readonly UsageEvent[]): Promise<void>;
  /** One run of the alerts schedule (EventBridge's rule on AWS, the local stack's timer). */
  schedule(): Promise<unknown>;
  /** Calls that reached the sender. */
  sends: AlertMessage[];
}

/**
 * One metering container: composeMetering over the stack's tables, its alerts sent to the captured
 * outbox, whose delivery events confirm them (as SES's send events do) unless `confirm` is false.
 */
function consumer(
  options: {
    dynamo?: DynamoDBDocumentClient;
    wrap?: (real: AlertSender) => AlertSender;
    confirm?: boolean;
    /** @default true: the owner's address is read from the user pool, as on AWS */
    userPool?: boolean;
  } = {},
): Consumer {
  const sends: AlertMessage[] = [];
  let metering: Metering | undefined;
  const real = localAlertSender({
    dataDir,
    ...(options.confirm === false
      ? {}
      : {
          onDelivered: (alertId, messageId) =>
            metering?.alerts?.confirmDelivered(alertId, messageId) ?? Promise.resolve(),
        }),
  });
  const wrapped = options.wrap ? options.wrap(real) : real;
  const counting: AlertSender = {
    send: (message) => {
      sends.push(message);
      return wrapped.send(message);
    },
  };
  metering = composeMetering(
    loadMeteringConfig({
      [ENV.usageTable]: env[ENV.usageTable],
      [ENV.keysTable]: env[ENV.keysTable],
      [ENV.accountsTable]: env[ENV.accountsTable],
      [ENV.plansTable]: env[ENV.plansTable],
      [ENV.usageDlqUrl]: env[ENV.usageDlqUrl],
      [ENV.transport]: 'sqs',
      ...(options.userPool !== false ? { [ENV.alertUserPoolId]: endpoints().cognito.userPoolId } : {}),
    }),
    {
      clients: {
        dynamo: options.dynamo ?? clients.doc,
        keys: clients.doc,
        sqs: clients.sqs,
        ...(options.userPool !== false ? { cognito: cognitoClient() } : {}),
      },
      logger: silent,
      metrics: discardMetrics,
      alerts: counting,
      alertTiming: TIMING,
    },
  );
  const composed = metering;
  return {
    metering: composed,
    sends,
    consume: async (events) => {
      await seed(events.map((e) => JSON.stringify(e)));
      const { outcome } = await composed.handleBatch(sqsEvent(events));
      expect(outcome.failedRecordIds).toEqual([]);
    },
    schedule: () => (composed.alertsHandler as (event: unknown) => Promise<unknown>)(SCHEDULED),
  };
}

const alertId = (accountId: string, percent: number, at = new Date()) =>
  alertIdOf({
    accountId,
    period: 'day',
    periodStart: new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate())),
    percent,
  });

/** Emails captured for each of the account's two alerts of the day of `at`. */
async function emailsOf(accountId: string, at = new Date()) {
  return {
    80: (await capturedAlerts(dataDir, alertId(accountId, 80, at))).length,
    100: (await capturedAlerts(dataDir, alertId(accountId, 100, at))).length,
  };
}

async function stateOf(accountId: string, percent: number, at = new Date()) {
  const periodStart = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  const out = await clients.doc.send(
    new GetCommand({
      TableName: env[ENV.usageTable],
      Key: { pk: `${ALERT_MARK_PREFIX}${accountId}`, sk: `${periodStart.toISOString()}#${percent}` },
      ConsistentRead: true,
    }),
  );
  return out.Item as Record<string, unknown> | undefined;
}

/** A DynamoDB client whose calls `fault` picks fail (a crash at that point: nothing after it runs). */
function faulty(fault: (command: unknown) => boolean): DynamoDBDocumentClient {
  const real = clients.doc;
  return {
    send: (command: unknown) => {
      if (fault(command)) return Promise.reject(new Error('worker crashed here (injected)'));
      return real.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
}

const isLease = (command: unknown) =>
  command instanceof UpdateCommand &&
  (command.input.UpdateExpression ?? '').startsWith('SET #state = :sending');

/** The SDK's own error for a request past its requestTimeout (node-http-handler). */
function requestTimeout(): Error {
  return Object.assign(new Error('a request has exceeded the configured 5000 ms requestTimeout.'), {
    name: 'TimeoutError',
    code: 'ETIMEDOUT',
  });
}

/** Runs the schedule every `everyMs` until `done`, as the timer would; returns how long it took. */
async function scheduleUntil(c: Consumer, done: () => Promise<boolean>, everyMs = 250, timeoutMs = 15_000) {
  const started = Date.now();
  while (!(await done())) {
    if (Date.now() - started > timeoutMs) throw new Error('the schedule did not get there in time');
    await c.schedule();
    await sleep(everyMs);
  }
  return Date.now() - started;
}

describe('quota alerts: exactly one 80 % and one 100 % email', () => {
  afterAll(() => clients.doc.destroy());

  it('a crash between claim and send: the schedule sends what the dead worker claimed, once', async () => {
    // A: the worker dies after the claim, before it takes the lease (the item is `pending`).
    const a = await newAccount('crash-claim');
    const dead = consumer({ dynamo: faulty((command) => isLease(command)) });
    await dead.consume(eventsOf(a.accountId, QUOTA));
    expect(ofAccount(dead.sends, a.accountId)).toEqual([]);
    expect((await stateOf(a.accountId, 80))?.state).toBe('pending');
    expect((await stateOf(a.accountId, 100))?.state).toBe('pending');

    // B: the worker dies holding the lease, inside the send, before anything reached the provider.
    const b = await newAccount('crash-send');
    const hung = consumer({ wrap: () => ({ send: () => new Promise(() => {}) }) });
    void hung.consume(eventsOf(b.accountId, QUOTA));
    await eventually(async () => ofAccount(hung.sends, b.accountId).length === 1, 10_000, 50);
    const crashedAt = Date.now();

    // The next container's schedule (no more traffic for either account).
    const next = consumer();
    const pendingSentMs = await scheduleUntil(next, async () => (await emailsOf(a.accountId))[100] === 1);
    // B's 100 % was never leased (the worker died on its 80 %): sent at once; its 80 % only once the
    // dead worker's lease and the confirmation window have passed.
    await scheduleUntil(next, async () => (await emailsOf(b.accountId))[80] === 1);
    const leasedSentAfterMs = Date.now() - crashedAt;
    expect(leasedSentAfterMs).toBeGreaterThanOrEqual(TIMING.leaseMs + TIMING.confirmWindowMs - 100);
    // More runs, later: nothing more.
    for (let i = 0; i < 4; i++) {
      await next.schedule();
      await sleep(TIMING.confirmWindowMs / 2);
    }
    expect(await emailsOf(a.accountId)).toEqual({ 80: 1, 100: 1 });
    expect(await emailsOf(b.accountId)).toEqual({ 80: 1, 100: 1 });
    expect((await stateOf(b.accountId, 80))?.attempts).toBe(2);
    figures.crashBetweenClaimAndSend = {
      emails: { claimedNotLeased: await emailsOf(a.accountId), diedInSend: await emailsOf(b.accountId) },
      claimedNotLeasedSentAfterMs: pendingSentMs,
      diedInSendSentAfterMs: leasedSentAfterMs,
    };
  });

  it('a lost SES reply: the delivery event settles the alert, and no second email follows', async () => {
    const a = await newAccount('lost-reply');
    const lost = consumer({
      wrap: (real) => ({
        send: async (message) => {
          await real.send(message);
          // The answer is lost: the caller sees the SDK's timeout, after the email went out.
          throw requestTimeout();
        },
      }),
    });
    await lost.consume(eventsOf(a.accountId, QUOTA));
    await eventually(async () => (await stateOf(a.accountId, 100))?.state === 'sent', 5000, 20);
    // Confirmed by the delivery event, not by the send's answer.
    const confirmedAfterMs: number[] = [];
    for (const percent of [80, 100]) {
      const item = await stateOf(a.accountId, percent);
      const [email] = await capturedAlerts(dataDir, alertId(a.accountId, percent));
      expect(item?.confirmedAt).toBeDefined();
      expect(item?.providerMessageId).toBe(email?.messageId);
      confirmedAfterMs.push(Date.parse(String(item?.confirmedAt)) - Date.parse(String(email?.at)));
    }
    // The confirmation window passes; the schedule runs: nothing is sent again.
    const after = consumer();
    for (let i = 0; i < 4; i++) {
      await after.schedule();
      await sleep(TIMING.confirmWindowMs / 2);
    }
    expect(ofAccount(after.sends, a.accountId)).toEqual([]);
    expect(
      ofAccount(lost.sends, a.accountId)
        .map((m) => m.id)
        .sort(),
    ).toEqual([alertId(a.accountId, 100), alertId(a.accountId, 80)].sort());
    expect(await emailsOf(a.accountId)).toEqual({ 80: 1, 100: 1 });

    // The residual window: a reply lost AND its delivery event later than the confirmation window.
    // The outbox cannot tell that send from one that never reached SES, and sends it again.
    const b = await newAccount('lost-reply-and-event');
    const blind = consumer({
      confirm: false,
      wrap: (real) => ({
        send: async (message) => {
          await real.send(message);
          throw requestTimeout();
        },
      }),
    });
    await blind.consume(eventsOf(b.accountId, QUOTA));
    expect(await emailsOf(b.accountId)).toEqual({ 80: 1, 100: 1 });
    const retry = consumer({ confirm: false });
    const resentAfterMs = await scheduleUntil(retry, async () => (await emailsOf(b.accountId))[80] === 2);
    await scheduleUntil(retry, async () => (await emailsOf(b.accountId))[100] === 2);
    // Settled by the resend's own answer: no third.
    for (let i = 0; i < 3; i++) {
      await retry.schedule();
      await sleep(TIMING.confirmWindowMs / 2);
    }
    expect(await emailsOf(b.accountId)).toEqual({ 80: 2, 100: 2 });
    expect(resentAfterMs).toBeGreaterThanOrEqual(TIMING.confirmWindowMs - 300);
    expect((await stateOf(b.accountId, 80))?.state).toBe('sent');

    figures.lostReply = {
      emails: await emailsOf(a.accountId),
      sendCalls: ofAccount(lost.sends, a.accountId).length,
      confirmedAfterMs: Math.max(...confirmedAfterMs),
      residual: { emailsWhenEventLost: await emailsOf(b.accountId), resentAfterMs },
    };
  });

  it('two consumers at once, one batch delivered to both and another to each: one email per alert', async () => {
    const a = await newAccount('two-consumers');
    // Each send takes a while, so the two workers' claims and leases overlap.
    const slow = (real: AlertSender): AlertSender => ({
      send: async (message) => {
        await sleep(150);
        return real.send(message);
      },
    });
    const one = consumer({ wrap: slow });
    const two = consumer({ wrap: slow });
    const shared = eventsOf(a.accountId, 6);
    await Promise.all([
      one.consume([...shared, ...eventsOf(a.accountId, 2)]),
      two.consume([...shared, ...eventsOf(a.accountId, 2)]),
    ]);
    await Promise.all([one.consume(shared), two.consume(shared)]);
    await Promise.all([one.schedule(), two.schedule()]);
    expect(await emailsOf(a.accountId)).toEqual({ 80: 1, 100: 1 });
    const calls = {
      first: ofAccount(one.sends, a.accountId).length,
      second: ofAccount(two.sends, a.accountId).length,
    };
    expect(calls.first + calls.second).toBe(2);
    figures.twoConsumers = { emails: await emailsOf(a.accountId), sendCalls: calls };
  });

  it('100 % reached with no traffic after it: the schedule sends the alert SES refused in the batch', async () => {
    const a = await newAccount('no-traffic');
    let refusals = 0;
    const throttled = consumer({
      wrap: (real) => ({
        send: async (message) => {
          if (message.id === alertId(a.accountId, 100) && refusals < 2) {
            refusals++;
            throw new AlertNotSentError('SES refused the email', {
              cause: Object.assign(new Error('Maximum sending rate exceeded'), {
                name: 'TooManyRequestsException',
                $metadata: { httpStatusCode: 429 },
              }),
            });
          }
          return real.send(message);
        },
      }),
    });
    await throttled.consume(eventsOf(a.accountId, QUOTA));
    const reachedAt = Date.now();
    expect(await emailsOf(a.accountId)).toEqual({ 80: 1, 100: 0 });
    expect((await stateOf(a.accountId, 100))?.state).toBe('pending');
    // No batch comes again for the account (the gate refuses it): only the schedule.
    const sentAfterMs = await scheduleUntil(throttled, async () => (await emailsOf(a.accountId))[100] === 1);
    for (let i = 0; i < 3; i++) {
      await throttled.schedule();
      await sleep(300);
    }
    expect(await emailsOf(a.accountId)).toEqual({ 80: 1, 100: 1 });
    expect(refusals).toBe(2);
    figures.noTrafficAfter = {
      emails: await emailsOf(a.accountId),
      refusedAttempts: refusals,
      sentAfterMs: Math.max(sentAfterMs, Date.now() - reachedAt - 900),
      parameters: { scheduleEveryMs: 250, retryBaseMs: TIMING.retryBaseMs },
    };
  });

  it("checks a late event against its own period: yesterday's quota, not today's", async () => {
    const a = await newAccount('late');
    const yesterday = new Date(Date.now() - 86_400_000);
    yesterday.setUTCHours(22, 0, 0, 0);
    const c = consumer();
    await c.consume(eventsOf(a.accountId, QUOTA, yesterday));
    expect(await emailsOf(a.accountId, yesterday)).toEqual({ 80: 1, 100: 1 });
    expect(await emailsOf(a.accountId)).toEqual({ 80: 0, 100: 0 });
    const day = yesterday.toISOString().slice(0, 10);
    const [full] = await capturedAlerts(dataDir, alertId(a.accountId, 100, yesterday));
    expect(full?.subject).toBe(`You have used all ${QUOTA} requests of your Alerted plan on ${day}`);
    // Today's events of the same account reach today's thresholds on their own.
    await c.consume(eventsOf(a.accountId, 8));
    expect(await emailsOf(a.accountId)).toEqual({ 80: 1, 100: 0 });
    figures.lateEvents = {
      yesterday: await emailsOf(a.accountId, yesterday),
      today: await emailsOf(a.accountId),
    };
  });

  it('goes to the address the owner has now, read from the user pool (cognito-local) at send time', async () => {
    const owner = await signUpAndSignIn('alert-address');
    const accountId = (
      JSON.parse(Buffer.from(owner.idToken.split('.')[1] ?? '', 'base64url').toString()) as {
        sub: string;
      }
    ).sub;
    await planOf(accountId);
    // The owner changes the address (the page's UpdateUserAttributes, or an admin): once verified, it
    // is the pool's `email`. The accounts table still holds the sign-up address.
    const changed = `changed-${Date.now()}@example.com`;
    const cognito = cognitoClient();
    await cognito.send(
      new AdminUpdateUserAttributesCommand({
        UserPoolId: endpoints().cognito.userPoolId,
        Username: owner.email,
        UserAttributes: [
          { Name: 'email', Value: changed },
          { Name: 'email_verified', Value: 'true' },
        ],
      }),
    );
    cognito.destroy();
    const stored = await clients.doc.send(
      new GetCommand({ TableName: env[ENV.accountsTable], Key: { accountId }, ConsistentRead: true }),
    );
    expect(stored.Item?.email).toBe(owner.email);

    const c = consumer();
    await c.consume(eventsOf(accountId, QUOTA));
    const emails = await capturedAlerts(dataDir);
    const sent = emails.filter(
      (m) => m.alertId === alertId(accountId, 80) || m.alertId === alertId(accountId, 100),
    );
    expect(sent.map((m) => m.destination)).toEqual([changed, changed]);
    figures.addressChange = {
      destinations: sent.length,
      toChangedAddress: sent.filter((m) => m.destination === changed).length,
    };
  });

  it('gives up on SES within its request timeout, and tells a refused send from one that may have gone out', async () => {
    const hanging: Server = createServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const port = (hanging.address() as AddressInfo).port;
    const ses = new SESv2Client({
      ...sesClientConfig,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      endpoint: `http://127.0.0.1:${port}`,
    });
    const sender = new SesAlertSender({ from: 'alerts@example.com', client: ses });
    const message = { id: '80-day-20260310-a', to: 'o@example.com', subject: 's', text: 't' };
    const started = Date.now();
    const hung = await sender.send(message).catch((error: unknown) => error);
    const gaveUpAfterMs = Date.now() - started;
    expect(hung).toMatchObject({ name: 'TimeoutError' });
    expect(hung).not.toBeInstanceOf(AlertNotSentError);
    expect(gaveUpAfterMs).toBeLessThan(sesClientConfig.requestHandler.requestTimeout + 1000);
    await new Promise<void>((resolve) => hanging.close(() => resolve()));

    // Nothing listens any more: the connection is refused, nothing can have been sent.
    const refused = await sender.send(message).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AlertNotSentError);
    ses.destroy();
    figures.sesTimeout = {
      gaveUpAfterMs,
      parameters: { requestTimeoutMs: sesClientConfig.requestHandler.requestTimeout, maxAttempts: 1 },
    };
  });

  it('records the figures', async () => {
    for (const part of [
      'crashBetweenClaimAndSend',
      'lostReply',
      'twoConsumers',
      'noTrafficAfter',
      'lateEvents',
      'addressChange',
      'sesTimeout',
    ]) {
      expect(figures[part], part).toBeDefined();
    }
    await recordFigures('quota-alerts', { ...figures, parameters: { quota: QUOTA, timing: TIMING } });
  });
});
