import { newUsageEvent, utcDay } from '../../contracts/usage-event';
import type { Endpoints } from '../../infra/local/stack';
import { generateApiKey } from '../../services/accounts/api-key';
import { callerWaitingClientConfig, SqsUsagePublisher } from '../../services/gate/publisher';
import { type KeyTotals, UsageReader } from '../../services/usage/usage-reader';
import { behindAlb } from './alb';
import { engineClients } from './aws';
import { ConsumerProcess, newTally } from './consumer-process';
import { quantile } from './figures';
import { buildKeyApi, keyStore, tablesFrom } from './key-api';
import { createTestQueue, queueDepth, receiveAll, sendBodies } from './queues';
import { sleep } from './wait';

// No vitest here: `npm run soak` (test/reliability/soak.ts) runs this outside the test runner.

export interface SoakOptions {
  endpoints: Endpoints;
  /** The local stack's handler variables (table names). */
  env: Record<string, string | undefined>;
  /** Seconds of traffic. */
  seconds: number;
  /** @default 5 */
  accounts?: number;
  /** @default 10 */
  keysPerAccount?: number;
  /** Requests in flight at once. @default 8 */
  concurrency?: number;
  /** Progress lines (the soak script prints them; the test stays quiet). */
  log?: (line: string) => void;
}

export interface SoakReport {
  seconds: number;
  accounts: number;
  keys: number;
  concurrency: number;
  requestsSent: number;
  /** 200 answers: the billable requests. */
  accepted: number;
  /** Answers by status and error code, e.g. `401 unknown_key`. */
  refused: Record<string, number>;
  requestsPerSecond: number;
  acceptedLatencyMs: { p50: number; p99: number; max: number };
  /** Sum of every key's all-time counter in DynamoDB once the pipeline settled. */
  counted: number;
  /** Sum of the accounts' day counters over the run's days. */
  countedByAccounts: number;
  /** Keys whose counter differs from the 200s they were given (must be empty). */
  mismatchedKeys: Array<{ keyId: string; accepted: number; counted: number }>;
  /** Each account's 200s and the sum of its day counters over the run's days. */
  byAccount: Array<{ accountId: string; accepted: number; counted: number }>;
  /** Accounts whose day counters differ from the 200s their keys were given (must be empty). */
  mismatchedAccounts: Array<{ accountId: string; accepted: number; counted: number }>;
  /** One entry per kill attempted; `midBatch` as the consumer process reported it. */
  consumerKills: Array<{ atSecond: number; midBatch: boolean; restartedAtSecond: number }>;
  /** Kills that landed mid-batch, as counted by the consumer processes themselves. */
  killsLanded: number;
  /** Batches whose consumer died after some writes and before acknowledging. */
  crashedBatches: number;
  /** Events met again after a crash or redelivery and dropped as already counted (a dedupe mark, or the ledger's claimed numbers). */
  duplicatesDropped: number;
  poisonInjected: number;
  /** Messages found in the DLQ, by reason (`moved_by_sqs` = maxReceiveCount, no reason given). */
  deadLettered: Record<string, number>;
  /** Distinct source records among them (a crash can dead-letter one record twice). */
  deadLetteredDistinct: number;
  /** Distinct source records by their `reason` attribute: must equal `poisonReasons`. */
  deadLetteredDistinctByReason: Record<string, number>;
  /** The reasons the injected poison must be dead-lettered with, and how many of each. */
  poisonReasons: Record<string, number>;
  /** Messages still queued when the traffic stopped (the consumer's backlog). */
  backlogAtTrafficEnd: number;
  /** From the end of traffic until every accepted request was counted. */
  settleMs: number;
}

interface Issued {
  keyId: string;
  accountId: string;
  key: string;
}

/** Records that must never be counted: each is dead-lettered with its reason. */
function poisonBodies(
  keyId: string,
  accountId: string,
): { bodies: string[]; reasons: Record<string, number> } {
  const valid = newUsageEvent({ keyId, accountId, now: new Date() });
  return {
    bodies: [
      'this is not JSON',
      '{"v":1,"id":',
      JSON.stringify({ ...valid, id: 'poison-negative-units', units: -1 }),
      '{}',
      JSON.stringify(newUsageEvent({ keyId, accountId, now: new Date(Date.now() - 3 * 86_400_000) })),
      JSON.stringify(newUsageEvent({ keyId, accountId, now: new Date(Date.now() + 3_600_000) })),
    ],
    reasons: { invalid_json: 2, invalid_event: 2, too_old: 1, future: 1 },
  };
}

/**
 * Concurrent traffic over many keys through a local ALB into a key-api "container", while the
 * metering consumer is killed mid-batch and restarted twice and a batch is poisoned; then checks
 * that every key's counter equals the 200s it was given, exactly.
 */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => {});
  const accounts = options.accounts ?? 5;
  const keysPerAccount = options.keysPerAccount ?? 10;
  const concurrency = options.concurrency ?? 8;
  const tables = tablesFrom(options.env);
  const admin = engineClients(options.endpoints);
  const run = `${process.pid}${Date.now()}`;

  // Accounts and keys, written by the real KeyStore.
  const store = keyStore(admin.dynamo, tables);
  const issued: Issued[] = [];
  for (let a = 0; a < accounts; a++) {
    const accountId = `soak_${run}_${a}`;
    await store.provisionAccount({
      accountId,
      email: `${accountId}@example.com`,
      userName: accountId,
      now: new Date(),
    });
    for (let k = 0; k < keysPerAccount; k++) {
      const created = await store.createKey({ accountId, name: `soak ${k}`, now: new Date() });
      if (!created.ok) throw new Error('could not create a soak key');
      issued.push({ keyId: created.value.record.keyId, accountId, key: created.value.secret.key });
    }
  }
  log(`soak: ${issued.length} keys over ${accounts} accounts`);

  const queue = await createTestQueue(admin.sqs, 'soak', { visibilityTimeoutSeconds: 5, maxReceiveCount: 5 });
  // key-api's clients, with the timeouts and retries it ships with.
  const keyApiClients = engineClients(options.endpoints, callerWaitingClientConfig);
  const keyApi = buildKeyApi({
    dynamo: keyApiClients.dynamo,
    tables,
    publisher: new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: keyApiClients.sqs }),
  });
  const alb = await behindAlb(keyApi.handler);

  const tally = newTally();
  const newConsumer = () =>
    new ConsumerProcess({ endpoints: options.endpoints, queue, tables, tally }).start();
  let consumer = newConsumer();

  const acceptedByKey = new Map<string, number>();
  const acceptedByAccount = new Map<string, number>();
  const refused: Record<string, number> = {};
  const latencies: number[] = [];
  let sent = 0;
  let accepted = 0;
  const started = Date.now();
  const end = started + options.seconds * 1000;
  const at = (fraction: number) => started + fraction * options.seconds * 1000;
  const second = () => Math.round((Date.now() - started) / 100) / 10;

  async function request(): Promise<void> {
    const roll = Math.random();
    const target = issued[Math.floor(Math.random() * issued.length)] as Issued;
    const key = roll < 0.9 ? target.key : roll < 0.95 ? generateApiKey('tg').key : `tg_${run}`;
    const how = sent % 3;
    const init: RequestInit =
      how === 0
        ? { method: 'GET', headers: { 'x-api-key': key } }
        : how === 1
          ? { method: 'GET', headers: { authorization: `Bearer ${key}` } }
          : {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ key }),
            };
    sent++;
    const t0 = performance.now();
    const response = await fetch(alb.endpoint, init);
    const body = (await response.json()) as { keyId?: string; error?: { code?: string } };
    if (response.status === 200) {
      latencies.push(performance.now() - t0);
      if (key !== target.key || body.keyId !== target.keyId)
        throw new Error('a key was accepted for another');
      accepted++;
      acceptedByKey.set(target.keyId, (acceptedByKey.get(target.keyId) ?? 0) + 1);
      acceptedByAccount.set(target.accountId, (acceptedByAccount.get(target.accountId) ?? 0) + 1);
    } else {
      const label = `${response.status} ${body.error?.code ?? '?'}`;
      refused[label] = (refused[label] ?? 0) + 1;
    }
  }

  const traffic = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) await request();
    }),
  );

  // The chaos timeline, while the traffic runs: kill, restart, poison, kill, restart.
  const kills: SoakReport['consumerKills'] = [];
  const poison = poisonBodies(issued[0]?.keyId ?? '', issued[0]?.accountId ?? '');
  const until = (fraction: number) => sleep(Math.max(0, at(fraction) - Date.now()));
  const killAndRestart = async (killAt: number, restartAt: number) => {
    await until(killAt);
    const killedAt = second();
    const { midBatch } = await consumer.kill();
    log(`soak: ${killedAt} s: consumer killed${midBatch ? ' mid-batch' : ''}`);
    await until(restartAt);
    consumer = newConsumer();
    kills.push({ atSecond: killedAt, midBatch, restartedAtSecond: second() });
    log(`soak: ${second()} s: consumer restarted`);
  };
  const chaos = (async () => {
    await killAndRestart(0.2, 0.35);
    await until(0.45);
    await sendBodies(admin.sqs, queue.queueUrl, poison.bodies);
    log(`soak: ${second()} s: ${poison.bodies.length} poison records sent in one batch`);
    await killAndRestart(0.6, 0.75);
  })();

  await Promise.all([traffic, chaos]);
  const trafficEnded = Date.now();
  const seconds = (trafficEnded - started) / 1000;
  const backlogAtTrafficEnd = await queueDepth(admin.sqs, queue.queueUrl);
  log(`soak: traffic done: ${sent} sent, ${accepted} accepted; waiting for the pipeline to settle`);

  // Settled: the queue is empty and the counters add up; then one more visibility timeout, so a
  // late redelivery would have had its chance to double-count.
  const usage = new UsageReader({ client: admin.doc, table: tables.usage });
  const keyIds = issued.map((k) => k.keyId);
  const totalsOfIssued = async () => {
    const totals = new Map<string, KeyTotals>();
    for (const accountId of new Set(issued.map((k) => k.accountId))) {
      for (const [keyId, total] of await usage.keyTotals(accountId))
        if (keyIds.includes(keyId)) totals.set(keyId, total);
    }
    return totals;
  };
  const countedNow = async () => {
    const totals = await totalsOfIssued();
    return [...totals.values()].reduce((sum, t) => sum + t.count, 0);
  };
  let settleMs = -1;
  while (Date.now() - trafficEnded < 120_000) {
    if ((await queueDepth(admin.sqs, queue.queueUrl)) === 0 && (await countedNow()) >= accepted) {
      settleMs = Date.now() - trafficEnded;
      break;
    }
    await sleep(200);
  }
  await sleep(6000);
  await consumer.stop();
  await alb.close();

  const totals = await totalsOfIssued();
  const mismatchedKeys = issued
    .map(({ keyId }) => ({
      keyId,
      accepted: acceptedByKey.get(keyId) ?? 0,
      counted: totals.get(keyId)?.count ?? 0,
    }))
    .filter((k) => k.accepted !== k.counted);
  const counted = [...totals.values()].reduce((sum, t) => sum + t.count, 0);
  const from = utcDay(started);
  const to = utcDay(Date.now());
  const byAccount: SoakReport['byAccount'] = [];
  for (const accountId of new Set(issued.map((k) => k.accountId))) {
    let accountCounted = 0;
    for (const day of await usage.dailyCounts({ accountId }, from, to)) accountCounted += day.count;
    byAccount.push({ accountId, accepted: acceptedByAccount.get(accountId) ?? 0, counted: accountCounted });
  }
  const countedByAccounts = byAccount.reduce((sum, a) => sum + a.counted, 0);

  const dead = await receiveAll(admin.sqs, queue.dlqUrl, { remove: true });
  const deadLettered: Record<string, number> = {};
  for (const message of dead) {
    const reason = message.MessageAttributes?.reason?.StringValue ?? 'moved_by_sqs';
    deadLettered[reason] = (deadLettered[reason] ?? 0) + 1;
  }
  const sourceOf = (m: (typeof dead)[number]) =>
    m.MessageAttributes?.sourceRecordId?.StringValue ?? m.MessageId;
  const deadLetteredDistinct = new Set(dead.map(sourceOf)).size;
  const sourcesByReason = new Map<string, Set<string | undefined>>();
  for (const message of dead) {
    const reason = message.MessageAttributes?.reason?.StringValue ?? 'moved_by_sqs';
    sourcesByReason.set(reason, (sourcesByReason.get(reason) ?? new Set()).add(sourceOf(message)));
  }
  const deadLetteredDistinctByReason = Object.fromEntries(
    [...sourcesByReason].map(([reason, sources]) => [reason, sources.size]),
  );

  for (const client of [admin.dynamo, admin.sqs, admin.kinesis, keyApiClients.dynamo, keyApiClients.sqs]) {
    client.destroy();
  }

  return {
    seconds,
    accounts,
    keys: issued.length,
    concurrency,
    requestsSent: sent,
    accepted,
    refused,
    requestsPerSecond: Math.round(sent / seconds),
    acceptedLatencyMs: {
      p50: Math.round(quantile(latencies, 0.5) * 10) / 10,
      p99: Math.round(quantile(latencies, 0.99) * 10) / 10,
      max: Math.round(latencies.reduce((a, b) => Math.max(a, b), 0)),
    },
    counted,
    countedByAccounts,
    mismatchedKeys,
    byAccount,
    mismatchedAccounts: byAccount.filter((a) => a.accepted !== a.counted),
    consumerKills: kills,
    killsLanded: tally.killsLanded,
    crashedBatches: tally.crashedBatches,
    duplicatesDropped: tally.duplicates,
    poisonInjected: poison.bodies.length,
    deadLettered,
    deadLetteredDistinct,
    deadLetteredDistinctByReason,
    poisonReasons: poison.reasons,
    backlogAtTrafficEnd,
    settleMs,
  };
}

/** The dead-letter reasons a soak's poison batch must produce, exactly. */
export const EXPECTED_POISON_REASONS = poisonBodies('k', 'a').reasons;

/**
 * What must hold of a soak, as sentences (empty when it passed): exact per key and per account,
 * the chaos happened (every kill landed mid-batch, that many batches crashed after writing, their
 * redelivered events were dropped as duplicates) and the poison was dead-lettered, per reason.
 */
export function soakProblems(report: SoakReport): string[] {
  const landed = report.consumerKills.filter((k) => k.midBatch).length;
  const same = (a: Record<string, number>, b: Record<string, number>) =>
    JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
  return [
    report.counted !== report.accepted && `counted ${report.counted} != accepted ${report.accepted}`,
    report.mismatchedKeys.length > 0 && `${report.mismatchedKeys.length} keys off`,
    report.mismatchedAccounts.length > 0 && `accounts off: ${JSON.stringify(report.mismatchedAccounts)}`,
    report.countedByAccounts !== report.accepted &&
      `account counters ${report.countedByAccounts} != accepted ${report.accepted}`,
    landed !== report.consumerKills.length &&
      `${report.consumerKills.length - landed} of ${report.consumerKills.length} kills not mid-batch`,
    report.killsLanded !== landed && `consumers counted ${report.killsLanded} kills landed, not ${landed}`,
    (report.crashedBatches === 0 || report.crashedBatches !== landed) &&
      `${report.crashedBatches} batches crashed after writing for ${landed} kills landed`,
    report.duplicatesDropped === 0 && 'no duplicates dropped after the crashes',
    report.deadLetteredDistinct !== report.poisonInjected &&
      `dead-lettered ${report.deadLetteredDistinct} distinct records, ${report.poisonInjected} poison sent`,
    !same(report.deadLetteredDistinctByReason, report.poisonReasons) &&
      `dead letters by reason ${JSON.stringify(report.deadLetteredDistinctByReason)}, injected ${JSON.stringify(report.poisonReasons)}`,
  ].filter((p): p is string => typeof p === 'string');
}
