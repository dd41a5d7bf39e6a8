/**
 * RELIABILITY.md's "Figures" table: one row per claim, each rendered from the artifact its test
 * writes (test/support/figures.ts `recordFigures`). Adding a row is one entry in SCENARIOS (the
 * artifact, the command that writes it and the files that decide it) and one in ROWS (its "must
 * hold" and a function from the artifact to its "measured" cell). Every number in a "measured" cell comes from the artifact;
 * a value the test chose itself is read from its `parameters` and said as a setting, not a result.
 */
import type { Figures, Provenance } from './figures-file';
import { answer, codes, fixed, int, secs, sum, tally } from './format';

export interface Scenario {
  /** The artifact's name: test-artifacts/reliability/<name>.json. */
  name: string;
  /** The command that writes it. */
  producedBy: string;
  /**
   * Run on its own, not by `npm test` (the full soak): its last run's figures stay in the figures
   * file, with that run's own commit and date, until it is run again, even once its files changed
   * (its row then says it was measured on older code, and `npm test` does not refuse it).
   */
  separate?: boolean;
  /**
   * What decides its figures: the test files that measure it and the product modules it exercises,
   * from the repository root. Their local imports count too (test/reliability/report/fingerprint.ts),
   * so name entry modules, not every file. A folder (ending in `/`, like LOCAL_STACK) counts whole,
   * with its imports of contracts/ but not of the deployables it composes: a scenario that calls
   * the local stack's handlers names them (STACK). `npm test` calls a row stale only when one of
   * these files changed.
   */
  decidedBy: readonly string[];
}

const RELIABILITY = 'npx vitest run --project reliability';
const integ = (file: string) => `npx vitest run --project integ ${file}`;

/** The local stack test/setup/global-setup.ts starts (and `npm run soak` starts its own of). */
const LOCAL_STACK = ['test/setup/', 'infra/local/'];

/** The handlers of the local stack as infra/local/stack.ts composes them, for a test that calls them. */
const STACK = {
  keyApi: ['services/key-api/compose.ts', 'services/key-api/config.ts'],
  userApi: ['services/user-api/compose.ts', 'services/user-api/config.ts'],
  /** Sign-up: cognito-local (infra/local/) runs the post-confirmation trigger, which opens the account. */
  signUp: ['services/auth-triggers/compose.ts', 'services/auth-triggers/config.ts'],
  metering: ['services/metering/compose.ts', 'services/metering/config.ts'],
  exampleApi: ['examples/rates-api/compose.ts', 'services/gate/config.ts'],
  web: ['web/server/local-site.ts'],
  /** The billing webhook and the scheduled export/reconciliation against the Stripe stand-in. */
  billingJobs: ['services/billing-jobs/compose.ts', 'services/billing-jobs/config.ts'],
};

/** A scenario measured by `tests` on the local stack, calling the stack's `handlers`. */
const onLocalStack = (tests: string, ...handlers: (readonly string[])[]) => [
  ...LOCAL_STACK,
  tests,
  ...handlers.flat(),
];

/** A scenario of the reliability project, measured by test/reliability/<file>. */
const inReliability = (name: string, file: string, ...handlers: (readonly string[])[]): Scenario => ({
  name,
  producedBy: `${RELIABILITY} test/reliability/${file}`,
  decidedBy: onLocalStack(`test/reliability/${file}`, ...handlers),
});

/** A scenario measured by the integration test test/integ/<file>. */
const inInteg = (name: string, file: string, ...handlers: (readonly string[])[]): Scenario => ({
  name,
  producedBy: integ(`test/integ/${file}`),
  decidedBy: onLocalStack(`test/integ/${file}`, ...handlers),
});

const { keyApi, userApi, signUp, metering, exampleApi, web, billingJobs } = STACK;

/** Every artifact the report expects; one the report finds and no entry names is an error. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'soak-60s',
    producedBy: 'npm run soak',
    separate: true,
    decidedBy: onLocalStack('test/reliability/soak.ts'),
  },
  inReliability('soak', 'soak.integ.test.ts'),
  inReliability('faults', 'faults.integ.test.ts'),
  inInteg('metering-kinesis-faults', 'metering-kinesis-faults.integ.test.ts'),
  inInteg('billing-export-faults', 'billing-export.integ.test.ts'),
  inInteg('billing-webhook', 'billing-webhook.integ.test.ts', signUp, userApi),
  inInteg('billing-flow', 'billing-flow.integ.test.ts', signUp, userApi, exampleApi, metering, billingJobs),
  inReliability('bad-input-key-api', 'bad-input.property.integ.test.ts', keyApi, userApi, signUp),
  inReliability('bad-input-user-api', 'bad-input.property.integ.test.ts', keyApi, userApi, signUp),
  inReliability('auth-attacks', 'auth-attacks.integ.test.ts', userApi, signUp),
  inReliability('auth-cross-account', 'auth-attacks.integ.test.ts', userApi, signUp),
  inReliability('key-guessing-invalid', 'key-guessing.integ.test.ts'),
  inReliability('key-guessing-unknown', 'key-guessing.integ.test.ts'),
  inReliability('key-guessing-http', 'key-guessing.integ.test.ts'),
  inReliability('revocation', 'revocation.integ.test.ts', keyApi, userApi, signUp),
  inReliability('quota-overshoot', 'quota-overshoot.integ.test.ts', userApi, signUp, metering),
  inReliability('quota-exact', 'quota-exact.integ.test.ts', userApi, signUp),
  inReliability('quota-reads', 'quota-exact.integ.test.ts', userApi, signUp),
  inInteg('billed-methods', 'billed-methods.integ.test.ts', keyApi, exampleApi, userApi, signUp, metering),
  inInteg('event-provenance', 'event-provenance.integ.test.ts'),
  inInteg('conflict-retry', 'conflict-retry.integ.test.ts'),
  inInteg('client-timeouts', 'client-timeouts.integ.test.ts'),
  inInteg('dynamodb-loopback', 'dynamodb-loopback.integ.test.ts'),
  inInteg('quota-alerts', 'quota-alerts.integ.test.ts', signUp),
  inInteg('secret-hygiene', 'user-api-hygiene.integ.test.ts', userApi, signUp, web),
  inReliability('guess-throttling', 'guess-throttling.integ.test.ts', exampleApi),
  inReliability('guess-throttling-http', 'guess-throttling.integ.test.ts', exampleApi),
  inReliability('guess-throttling-forwarded', 'guess-throttling.integ.test.ts', exampleApi),
  {
    name: 'cdk-hardening',
    producedBy: 'npx vitest run --project infra test/infra/hardening.test.ts',
    // The CDK app, not the local stack; cdk.json's feature flags are read by test/infra/synth.ts.
    decidedBy: ['test/infra/hardening.test.ts', 'infra/cdk/app.ts', 'cdk.json'],
  },
  inInteg('outage-redrive', 'outage-redrive.integ.test.ts'),
  // docs/metering.md's generated block (blocks.ts), not a table row.
  inInteg('metering-writes', 'metering-writes.integ.test.ts'),
];

export interface Row {
  /** The artifact the row is rendered from; a row without one states no figure. */
  scenario?: string;
  title: string | ((f: Figures, run: Provenance) => string);
  mustHold: string | ((f: Figures) => string);
  measured: (f: Figures, run: Provenance) => string;
}

const kind = (f: Figures, path: string) => answer(f.str(path));

// --- soak ------------------------------------------------------------------------------------

function soak(f: Figures, full: boolean): string {
  const refused = f.counts('refused');
  const fiveXx = sum(Object.fromEntries(Object.entries(refused).filter(([label]) => label.startsWith('5'))));
  const kills = f.list('consumerKills').map((_, i) => f.at(`consumerKills.${i}`));
  const midBatch = kills.filter((k) => k.bool('midBatch')).length;
  const accounts = f.list('byAccount').map((_, i) => f.at(`byAccount.${i}`));
  const exactAccounts = accounts.filter((a) => a.num('accepted') === a.num('counted')).length;
  const keysOff = f.list('mismatchedKeys').length;
  const at = (name: string) => kills.map((k) => int(k.num(name))).join(' s and ');
  const parts = [
    `${int(f.num('requestsSent'))} requests sent over ${int(f.num('keys'))} keys of ${int(f.num('accounts'))} accounts` +
      ` (${int(f.num('requestsPerSecond'))}/s, ${int(f.num('concurrency'))} in flight);` +
      ` **${int(f.num('accepted'))} accepted (200), ${int(f.num('counted'))} counted** over the keys` +
      ` (${int(keysOff)} keys off) and ${int(f.num('countedByAccounts'))} over the accounts` +
      ` (${exactAccounts} of ${accounts.length} accounts exact);` +
      ` ${int(sum(refused) - fiveXx)} refused (${codes(refused)}); ${int(fiveXx)} 5xx.`,
    `Consumer killed at ${at('atSecond')} s, restarted at ${at('restartedAtSecond')} s:` +
      ` ${midBatch} of ${kills.length} kills reported mid-batch (${int(f.num('killsLanded'))} counted by the processes),` +
      ` ${int(f.num('crashedBatches'))} batches crashed after writing,` +
      ` ${int(f.num('duplicatesDropped'))} redelivered events dropped by their dedupe marks.`,
    `${int(f.num('poisonInjected'))} poison records → **${int(f.num('deadLetteredDistinct'))} dead-lettered**:` +
      ` ${codes(f.counts('deadLetteredDistinctByReason'))}.`,
    `Backlog at the end of traffic ${int(f.num('backlogAtTrafficEnd'))} messages, all counted ${secs(f.num('settleMs'))} later.`,
  ];
  if (full) {
    parts.push(
      `Accepted latency p50 ${fixed(f.num('acceptedLatencyMs.p50'), 0)} ms, p99 ${fixed(f.num('acceptedLatencyMs.p99'), 0)} ms.`,
    );
  }
  return parts.join(' ');
}

const SOAK_HOLDS =
  "every key's and every account's counter = the 200s it got; no 5xx; both kills landed mid-batch, as many batches crashed after writing, duplicates dropped > 0; poison dead-lettered, per reason as many as injected, only it";

// --- faults ----------------------------------------------------------------------------------

const metric = (f: Figures, path: string, name: string) =>
  `\`${name}\` ${int((f.counts(path)[name] as number | undefined) ?? 0)}`;

function publishRefused(f: Figures): string {
  const sqs = f.at('publishRefused.sqs');
  const kinesis = f.at('publishRefused.kinesis');
  return (
    `SQS closed: ${sqs.num('closed.status')} \`${sqs.str('closed.code')}\`, \`retry-after: ${sqs.str('closed.retryAfter')}\`` +
    ` (through the local ALB: ${sqs.num('alb.status')} \`${sqs.str('alb.code')}\`, body \`${sqs.str('alb.bodyShape')}\`);` +
    ` ${metric(sqs, 'closedMetrics', 'UsagePublishFailures')}, ${metric(sqs, 'closedMetrics', 'KeyChecksAccepted')};` +
    ` open: ${sqs.num('open.status')}, ${metric(sqs, 'openMetrics', 'UsagePublishFailures')},` +
    ` ${metric(sqs, 'openMetrics', 'UnmeteredRequests')}, ${metric(sqs, 'openMetrics', 'KeyChecksAccepted')};` +
    ` ${int(sqs.num('queueDepthDuringFailure'))} messages reached the queue.` +
    ` Kinesis (\`ProvisionedThroughputExceededException\`): closed ${kinesis.num('closed.status')} \`${kinesis.str('closed.code')}\`,` +
    ` open ${kinesis.num('open.status')}, ${metric(kinesis, 'openMetrics', 'UnmeteredRequests')}.`
  );
}

function publishHang(f: Figures): string {
  const h = f.at('publishHang');
  return (
    `closed: ${kind(h, 'closed.answer')} after **${secs(h.num('closed.ms'))}**;` +
    ` open: ${kind(h, 'open.answer')} + \`UnmeteredRequests\` ${int(h.counts('openMetrics').UnmeteredRequests ?? 0)} after ${secs(h.num('open.ms'))}` +
    ` (settings: ${h.num('parameters.maxAttempts')} attempts × ${secs(h.num('parameters.requestTimeoutMs'))}, the shipped ones;` +
    ` function timeout ${secs(h.num('parameters.functionTimeoutMs'), 0)}).`
  );
}

function dynamoDbErrors(f: Figures): string {
  const e = f.at('dynamoDbErrors');
  const a = e.at('answers');
  return (
    `cached key, fresh: ${kind(a, 'cachedFresh')}; stale: ${kind(a, 'cachedStale')} (\`KeyCacheStaleServed\` ${int(e.num('staleServed'))});` +
    ` unknown key: ${kind(a, 'unknown')}, an existing never-cached key: ${kind(a, 'neverCached')} (\`retry-after: ${e.str('retryAfter')}\`);` +
    ` malformed key: ${kind(a, 'malformed')} (no read needed); cached key past fresh + stale: ${kind(a, 'cachedPastStale')};` +
    ` after recovery ${kind(a, 'recoveredKnown')} / ${kind(a, 'recoveredUnknown')}.` +
    ` Connection refused (no injection): ${f.num('dynamoDbConnectionRefused.status')} \`${f.str('dynamoDbConnectionRefused.code')}\` in ${int(f.num('dynamoDbConnectionRefused.answerMs'))} ms.`
  );
}

function dynamoDbHang(f: Figures): string {
  const h = f.at('dynamoDbHang');
  const q = f.at('quotaPlanHang');
  const budget = q.num('parameters.functionTimeoutMs') - q.num('parameters.marginMs');
  for (const path of ['lastKnown', 'noUsageYet']) {
    mustHold(q.num(`${path}.ms`) < budget, `quota plan, ${path}: answered after ${q.num(`${path}.ms`)} ms`);
    mustHold(q.num(`${path}.commands`) === 1, `quota plan, ${path}: ${q.num(`${path}.commands`)} reads sent`);
  }
  const quotaPart =
    ` Quota plan, key and terms past fresh: the last known usage → ${kind(q, 'lastKnown.answer')} after **${secs(q.num('lastKnown.ms'))}**,` +
    ` none read yet → ${kind(q, 'noUsageYet.answer')} after **${secs(q.num('noUsageYet.ms'))}**, ${int(q.num('noUsageYet.commands'))} read sent each (the key lookup; terms, quota and usage figure not tried once it found DynamoDB down).`;
  return (
    quotaPart +
    (`cached key: ${kind(h, 'staleServed.answer')} from the stale entry after **${secs(h.num('staleServed.ms'))}**;` +
      ` unknown key: ${kind(h, 'unknownKey.answer')} after **${secs(h.num('unknownKey.ms'))}**;` +
      ` DynamoDB and SQS both hung: ${kind(h, 'dynamoDbAndSqsHung.answer')} after **${secs(h.num('dynamoDbAndSqsHung.ms'))}**.`)
  );
}

function clientTimeouts(f: Figures): string {
  const p = f.at('parameters');
  const user = f.at('userApi');
  const auth = f.at('authTriggers');
  const answers = user.counts('answers');
  const userBound = p.num('userApiFunctionTimeoutMs') - p.num('marginMs');
  mustHold(
    Object.keys(answers).every((a) => a.startsWith('503 service_unavailable retry-after ')) &&
      Object.values(answers).reduce((a, b) => a + b, 0) === user.num('routes'),
    'a user-api route answered other than 503 with retry-after',
  );
  mustHold(user.num('maxMs') < userBound, `user-api answered after ${user.num('maxMs')} ms`);
  mustHold(
    auth.num('ms') < p.num('cognitoTriggerWaitMs') - 1000,
    `the sign-up trigger failed after ${auth.num('ms')} ms`,
  );
  return (
    `user-api, ${int(user.num('routes'))} routes at once (${user.list('routeList').map(String).join(', ')}): **${tally(answers)}**` +
    ` after ${secs(user.num('minMs'))}–**${secs(user.num('maxMs'))}** (function timeout ${secs(p.num('userApiFunctionTimeoutMs'), 0)});` +
    ` the sign-up trigger (auth-triggers) failed with \`${auth.str('error')}\` after **${secs(auth.num('ms'))}**` +
    ` (Cognito waits ${secs(p.num('cognitoTriggerWaitMs'), 0)}), for Cognito to retry.`
  );
}

function consumerThrottling(f: Figures): string {
  const t = f.at('consumerThrottling');
  const perKey = t.counts('countedPerKey');
  const perAccount = t.counts('countedPerAccount');
  const values = (c: Record<string, number>) => [...new Set(Object.values(c))].map(int).join(', ');
  return (
    `${int(t.num('parameters.events'))} events over ${Object.keys(perKey).length} keys and ${Object.keys(perAccount).length} accounts,` +
    ` **${int(t.num('parameters.consumers'))} consumers** on one queue: ${int(t.num('throttledTransactions'))} random \`TransactWriteItems\` throttled` +
    ` → \`AggregatesFailed\` ${int(t.num('aggregatesFailed'))}, **${int(t.num('counted'))} counted** (per key ${values(perKey)}, per account ${values(perAccount)}),` +
    ` ${int(t.num('deadLettered'))} dead-lettered, settled in ${secs(t.num('settleMs'))}.` +
    ' The single-aggregate case is `test/integ/metering-faults.integ.test.ts`.'
  );
}

function dlqRedrive(f: Figures): string {
  const r = f.at('dlqRedrive');
  return (
    `${int(r.num('parameters.failingRecords'))} records whose aggregate fails "until fixed" → ${int(r.num('movedToDlq'))} moved to the DLQ by SQS` +
    ` after \`maxReceiveCount\` ${int(r.num('parameters.maxReceiveCount'))} (${secs(r.num('movedToDlqBySqsAfterMs'))}), ${int(r.num('countedBeforeFix'))} counted; fix;` +
    ` redrive 1 (a tool that sends them back and crashes before deleting) → **${int(r.num('countedAfterFirstRedrive'))} counted**;` +
    ` redrive 2 (\`StartMessageMoveTask\` of the same ${int(r.num('movedBySecondRedrive'))}) → **still ${int(r.num('countedAfterSecondRedrive'))}**,` +
    ` ${int(r.num('duplicatesDropped'))} duplicates dropped.`
  );
}

// --- Kinesis ---------------------------------------------------------------------------------

function kinesisFaults(f: Figures): string {
  const crash = f.at('crashBeforeCheckpoint');
  const again = f.at('readAgain');
  const throttled = f.at('throttledCounter');
  const lost = f.at('resentAnswerLost');
  const notStored = f.at('resentNotStored');
  const lookBack = f.at('lookBackRefused');
  return (
    `consumer crashed ${int(crash.num('crashes'))} times after writing, before its checkpoint (${int(crash.num('recordsDelivered'))} records delivered for ${int(crash.num('parameters.events'))})` +
    ` → **${int(crash.num('counted'))} of ${int(crash.num('parameters.events'))}** (key; account ${int(crash.num('accountCounted'))});` +
    ` the whole stream read again from its start by a new consumer in batches of ${int(again.num('parameters.batchSize'))} (${int(again.num('recordsReread'))} records)` +
    ` → **${int(again.num('dayCounted.a'))} and ${int(again.num('dayCounted.b'))}, unchanged** (day; all-time ${int(again.num('allTimeCounted.a'))} and ${int(again.num('allTimeCounted.b'))});` +
    ` one key's day counter throttled ${int(throttled.num('throttles'))} times → **${int(throttled.num('throttledCounted'))} and ${int(throttled.num('calmCounted'))}**;` +
    ` a stored publish whose answer was lost, resent (${int(lost.num('attempts'))} attempts), its first copy counted in an earlier batch → **${int(lost.num('counted'))} of ${int(lost.num('parameters.events'))}** (found by the look-back);` +
    ` resent after a first attempt that was not stored → **${int(notStored.num('counted'))}**;` +
    ` look-back refused ${int(lookBack.num('refusals'))} times → batch cut before the copy, **${int(lookBack.num('counted'))} of ${int(lookBack.num('parameters.events'))}**.`
  );
}

// --- billing export -------------------------------------------------------------------------

function billingExportFaults(f: Figures): string {
  const equal = (name: string) => {
    const c = f.at(name);
    mustHold(
      c.num('billed') === c.num('metered'),
      `${name}: Stripe holds ${c.num('billed')}, the counters ${c.num('metered')}`,
    );
    return `**${int(c.num('billed'))} = ${int(c.num('metered'))}**`;
  };
  const recon = f.at('reconciliation');
  return (
    `exporter killed after the push, before the ledger write, rerun (answered ${f.at('killedMidPush').list('rerun').join(', ')}) → ${equal('killedMidPush')};` +
    ` 5xx on every attempt (${int(f.num('server_error.parameters.attempts'))}), next run → ${equal('server_error')};` +
    ` 429 (${int(f.num('rate_limit.parameters.attempts'))} attempt, not retried by the SDK), next run → ${equal('rate_limit')};` +
    ` timeout, next run → ${equal('timeout')};` +
    ` duplicate identifier (answered ${f.at('duplicateIdentifier').list('answers').join(', ')}, counted delivered) → ${equal('duplicateIdentifier')};` +
    ` late event (${int(f.num('lateEvent.parameters.late'))} after ${int(f.num('lateEvent.parameters.before'))} pushed) → yesterday ${int(f.num('lateEvent.yesterday'))}, ${equal('lateEvent')};` +
    ` meter error report (${int(f.num('meterErrorReport.invalidated'))} account-day re-pushed) → ${equal('meterErrorReport')};` +
    ` reconciliation (${int(recon.num('repaired'))} short days re-pushed; a day Stripe held ${int(recon.num('overDay.billed'))} for ${int(recon.num('overDay.metered'))} metered left as is, drift ${int(recon.num('drift'))}) → ${equal('reconciliation')} on the repaired days.`
  );
}

function billingFlow(f: Figures): string {
  const billed = f.num('billed');
  mustHold(
    f.num('metered') === billed && f.num('reported') === billed && f.num('stripeTotal') === billed,
    `billed ${billed}, metered ${f.num('metered')}, reported ${f.num('reported')}, Stripe ${f.num('stripeTotal')}`,
  );
  return (
    `checkout paid on the hosted page → on **pro** after ${int(f.num('onProAfterMs'))} ms;` +
    ` **${int(billed)}** answers billed at the gate → metered ${int(f.num('metered'))}, reported ${int(f.num('reported'))},` +
    ` Stripe's meter summary **${int(f.num('stripeTotal'))}**; GET /me/billing in sync.`
  );
}

function billingWebhook(f: Figures): string {
  const forged = f.at('forged');
  const replay = f.at('replay');
  const order = f.at('outOfOrder');
  const cancel = f.at('cancelAtPeriodEnd');
  const due = f.at('pastDue');
  mustHold(
    forged.list('statuses').every((s) => s === 400) && forged.str('planAfter') === 'unchanged',
    'a forged delivery had an effect',
  );
  mustHold(replay.num('status') === 200 && replay.num('newTransitions') === 0, 'a replay had an effect');
  mustHold(order.str('finalPlan') === 'default', `out of order: ended on ${order.str('finalPlan')}`);
  mustHold(
    cancel.str('afterEnd') === 'default',
    `canceled at period end: ended on ${cancel.str('afterEnd')}`,
  );
  mustHold(
    due.str('withinGrace') === 'active' &&
      due.str('afterGrace') === 'suspended' &&
      due.str('afterPaid') === 'active',
    'past due: not active → suspended → active',
  );
  return (
    `forged, unsigned and garbled signatures → **${forged.list('statuses').join(', ')}**, plan ${forged.str('planAfter')};` +
    ` a replayed event → ${replay.num('status')}, plan ${replay.str('planAfter')}, **${int(replay.num('newTransitions'))} transitions**;` +
    ` delivered newest first (\`${order.list('delivered').join('`, then `')}\`) → **${order.str('finalPlan')}** plan (the subscription as it is now);` +
    ` canceled at period end → ${cancel.str('beforeEnd')} until the end, then **${cancel.str('afterEnd')}**;` +
    ` past due → ${due.str('withinGrace')} within the ${int(f.num('parameters.graceMs') / 3_600_000)} h grace, **${due.str('afterGrace')}** after it, **${due.str('afterPaid')}** once paid.`
  );
}

// --- bad input, auth -------------------------------------------------------------------------

const status = (counts: Record<string, number>) => tally(counts);
const fiveXx = (...tallies: Record<string, number>[]) =>
  sum(Object.fromEntries(tallies.flatMap((t) => Object.entries(t)).filter(([s]) => s.startsWith('5'))));

function badInputKeyApi(f: Figures): string {
  const http = f.counts('httpStatuses');
  const handler = f.counts('handlerStatuses');
  return (
    `seed ${f.num('seed')}: ${int(sum(http))} HTTP requests through the local ALB (random methods, paths, headers, bodies, bytes, content types, \`content-encoding\`): ${status(http)}.` +
    ` ${int(sum(handler))} ALB events to the handler (any Unicode headers, multi-value, base64 or not, missing fields): ${status(handler)}.` +
    ` ${int(fiveXx(http, handler))} 5xx (${int(f.num('runsPerProperty'))} runs per property).`
  );
}

function badInputUserApi(f: Figures): string {
  const signedIn = f.counts('signedInStatuses');
  const tokens = f.counts('badTokenStatuses');
  return (
    `seed ${f.num('seed')}: ${int(sum(signedIn))} signed-in requests (random routes, key ids incl. invalid percent-escapes, \`/usage\` queries, JSON and non-JSON bodies up to 40 KB): ${status(signedIn)};` +
    ` ${int(sum(tokens))} random \`Authorization\` headers: ${status(tokens)}. ${int(fiveXx(signedIn, tokens))} 5xx (${int(f.num('runsPerProperty'))} runs per property).`
  );
}

function authAttacks(f: Figures): string {
  const bodies = f.list('distinctBodies');
  return (
    `${int(f.num('forgedTokens'))} forged or malformed tokens × ${int(f.num('routes'))} routes: ${tally(f.counts('forgedAnswers'))};` +
    ` ${int(f.num('withoutToken'))} ways of sending none: ${tally(f.counts('withoutTokenAnswers'), answer)};` +
    ` ${bodies.length} distinct ${bodies.length === 1 ? 'body' : 'bodies'} for the forged tokens: ${bodies.map((b) => `\`${String(b)}\``).join(', ')} (see the list below).`
  );
}

function authCrossAccount(f: Figures): string {
  const answers = f.list('answer').map(String);
  return (
    `Alice's valid token on Bob's ${int(f.num('foreignKeyIdsProbed'))} key ids × ${int(f.num('routesPerId'))} routes (roll, reveal, revoke, \`GET /usage?keyId=\`):` +
    ` ${int(f.num('distinctAnswerSets'))} distinct answer set over Bob's ids and ${int(f.num('nonexistentIdsProbed'))} nonexistent ones, e.g. \`${answers[0] ?? ''}\`;` +
    ` Bob's keys ${f.bool('bobKeysUnchanged') ? 'unchanged' : 'CHANGED'}.`
  );
}

// --- key guessing, revocation, quota ---------------------------------------------------------

function keyGuessingInvalid(f: Figures): string {
  return (
    `${tally(f.counts('answers'), (code) => answer(`401 ${code}`))} of ${int(f.num('parameters.guesses'))} guesses;` +
    ` **${int(f.num('dynamoDbRequests'))} DynamoDB requests** (counted at the client); ${fixed(f.num('msPerGuess'), 2)} ms each.`
  );
}

function keyGuessingUnknown(f: Figures): string {
  return (
    `each of ${int(f.num('parameters.guesses'))} keys twice, ${int(f.num('parameters.burstKeys'))} new keys × ${int(f.num('parameters.burstConcurrency'))} concurrent requests,` +
    ` ${int(f.num('parameters.againKeys'))} keys again after the negative window (${secs(f.num('parameters.negativeWindowMs'))}):` +
    ` ${int(f.num('requests'))} requests, ${int(f.num('unknownKeyAnswers'))} × 401 \`unknown_key\` (each key twice), **${int(f.num('dynamoDbReads'))} reads:` +
    ` ${fixed(f.num('readsPerKeyPerWindow'), 2)} per key per window**; ${int(f.num('otherDynamoDbRequests'))} writes or other requests, ${int(f.num('queueDepth'))} published.`
  );
}

function keyGuessingHttp(f: Figures): string {
  return `${tally(f.counts('answers'), answer)}; **${int(f.num('dynamoDbReads'))} DynamoDB reads**, ${int(f.num('otherDynamoDbRequests'))} other requests.`;
}

/** 10032 → "10.03 s", 3 → "3 ms". */
const duration = (ms: number) => (ms < 1000 ? `${int(ms)} ms` : secs(ms, 2));

function revocation(f: Figures): string {
  const keys = ['warmedJustBefore', 'hotKey', 'warmed5sBefore', 'neverChecked'] as const;
  const billed = f.at('billing');
  const allBilled = keys.every((k) => billed.num(`${k}.accepted`) === billed.num(`${k}.billed`));
  const acceptedTotal = keys.reduce((n, k) => n + billed.num(`${k}.accepted`), 0);
  const billedTotal = keys.reduce((n, k) => n + billed.num(`${k}.billed`), 0);
  return (
    `cached just before \`DELETE\`: refused after **${duration(f.num('warmedJustBefore.refusedAfterMs'))}**;` +
    ` in constant use: ${duration(f.num('hotKey.refusedAfterMs'))} (${int(f.num('hotKey.acceptedAfter'))} polls accepted after the \`DELETE\`, the last sent ${duration(f.num('hotKey.lastAcceptedSentAfterMs'))} after it);` +
    ` cached 5 s before: ${duration(f.num('warmed5sBefore.refusedAfterMs'))}; never cached: ${duration(f.num('neverChecked.refusedAfterMs'))}.` +
    ` ${int(acceptedTotal)} 200s over the four keys, ${int(billedTotal)} billed${allBilled ? ', key by key' : ' (NOT key by key)'}.`
  );
}

function quotaExact(f: Figures): string {
  const p = f.at('parameters');
  const quota = p.num('quota');
  mustHold(
    f.num('acceptedWhileStopped') === quota,
    `${f.num('acceptedWhileStopped')} let through, quota ${quota}`,
  );
  mustHold(
    f.num('acceptedAfterRestart') === 0,
    `${f.num('acceptedAfterRestart')} let through after the restart`,
  );
  mustHold(f.num('counted') === quota, `${f.num('counted')} counted`);
  return (
    `one key-api container behind the local ALB, a request every ${secs(p.num('paceMs'), 1)} for ${secs(p.num('stoppedMs'), 0)} with metering stopped:` +
    ` ${int(f.num('sentWhileStopped'))} sent, **${int(f.num('acceptedWhileStopped'))} × 200**, ${int(f.num('refusedWhileStopped'))} × 429;` +
    ` metering started, the waiting events counted ${secs(f.num('countedAfterRestartMs'))} later, then ${int(p.num('afterRestart'))} more requests:` +
    ` **${int(f.num('acceptedAfterRestart'))} let through**; counted **${int(f.num('counted'))}**.`
  );
}

function quotaReads(f: Figures): string {
  const p = f.at('parameters');
  mustHold(
    f.num('quotaCheckRequests') === 1 && f.num('quotaCheckItems') <= 2,
    'a quota check read more than one request of two items',
  );
  mustHold(
    f.num('keyTotalsAfterFoldItems') <= p.num('keys') * 5 + 1,
    `GET /keys' totals read ${f.num('keyTotalsAfterFoldItems')} items after the fold`,
  );
  return (
    `an account with ${int(p.num('keys'))} keys × ${int(p.num('days'))} days of counters: a quota check reads **${int(f.num('quotaCheckRequests'))} request (TransactGetItems), ${int(f.num('quotaCheckItems'))} items**` +
    ` (the account's month and this container's share of it); the same month as a Query of the key-day counters: ${int(f.num('monthQueryItems'))} items;` +
    ` \`GET /keys\`' all-time totals: ${int(f.num('keyTotalsFirstItems'))} counter items on the first read (which folds the closed days), **${int(f.num('keyTotalsAfterFoldItems'))}** after (a total per key and the days still in the late window).`
  );
}

function billedMethods(f: Figures): string {
  const api = (name: 'keyApi' | 'exampleApi', label: string) => {
    const a = f.at(name);
    mustHold(
      a.num('counted') === a.num('twoHundreds'),
      `${label}: ${a.num('counted')} counted of ${a.num('twoHundreds')} 2xx`,
    );
    return `${label}: ${tally(a.counts('statuses'))} → **${int(a.num('twoHundreds'))} 2xx, ${int(a.num('counted'))} counted**`;
  };
  return `${f
    .list('parameters.methods')
    .map((m) => `\`${String(m)}\``)
    .join(
      ', ',
    )} over raw sockets through the local ALB; ${api('keyApi', 'key-api')}; ${api('exampleApi', 'the example API')}; non-standard methods recorded as \`OTHER\`.`;
}

function quotaOvershoot(f: Figures): string {
  const p = f.at('parameters');
  return (
    `${int(p.num('containers'))} containers, ${int(p.num('ratePerContainerPerSecond'))} requests/s each, quota ${int(p.num('quota'))}/day, read interval ${secs(p.num('readIntervalMs'))}:` +
    ` **${int(f.num('letThrough'))} let through, ${int(f.num('counted'))} counted**, overshoot **${int(f.num('overshoot'))}**;` +
    ` the counters showed the quota reached **${secs(f.num('observedLagMs'), 2)}** after its ${int(p.num('quota'))}th request (lag);` +
    ` bound with that lag **${int(f.num('boundWithObservedLag'))}**, with the documented ${secs(p.num('documentedLagMs'), 0)} lag **${int(f.num('boundWithDocumentedLag'))}**;` +
    ` ${int(f.num('refused'))} refused (429 \`quota_exceeded\`).`
  );
}

// --- raw sockets, real keys ------------------------------------------------------------------

/** `{ "tollgate 401": 50, "node 400": 94 }` → the part answered by one side, without its label. */
function side(counts: Record<string, number>, who: 'tollgate' | 'node'): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .filter(([label]) => label.startsWith(`${who} `))
      .map(([label, n]) => [label.slice(who.length + 1), n]),
  );
}

function rawSocket(f: Figures, api: string): string {
  const statuses = f.counts('rawSocket.statuses');
  const tollgate = side(statuses, 'tollgate');
  const node = side(statuses, 'node');
  return (
    `${api}: ${int(sum(statuses))} raw requests; Tollgate answered ${int(sum(tollgate))} (${tally(tollgate)}),` +
    ` Node's parser ${int(sum(node))} (${tally(node)}); ${int(f.num('rawSocket.obsTextAnsweredByTollgate'))} with bytes 0x80-0xFF answered by Tollgate,` +
    ` ${int(f.num('rawSocket.pastHeaderLimit'))} past 16 KiB of headers;` +
    ` ${int(sum(Object.fromEntries(Object.entries(statuses).filter(([label]) => / 5\d\d$/.test(label)))))} 5xx`
  );
}

function realKeys(f: Figures): string {
  const byRoute = f.at('realKeys.realKeyAnswersByRoute');
  const route = (name: string) => tally(byRoute.counts(name));
  return (
    `seed ${f.num('seed')}, ${int(f.num('runsPerProperty'))} runs of up to ${int(f.num('parameters.maxCallsPerRun'))} calls (plan \`maxKeys\` ${int(f.num('parameters.maxKeys'))}):` +
    ` on real keys roll ${route('POST /keys/{id}/roll')}, reveal ${route('POST /keys/{id}/reveal')}, revoke ${route('DELETE /keys/{id}')}, \`GET /usage?keyId=\` ${route('GET /usage?keyId=')};` +
    ` \`POST /keys\` ${tally(f.counts('realKeys.statusesByRoute.POST /keys'))}; \`GET /keys\` equal to the model after every run;` +
    ` ${int(f.num('realKeys.keysAtEnd'))} keys at the end; the other account's keys ${f.bool('realKeys.otherAccountUnchanged') ? 'unchanged' : 'CHANGED'}.`
  );
}

// --- provenance ------------------------------------------------------------------------------

function eventProvenance(f: Figures): string {
  const sqs = f.at('sqs');
  const kinesis = f.at('kinesis');
  const down = f.at('unavailable');
  mustHold(
    sqs.num('forgedCounted') === 0 && sqs.str('derivedFirstKeyReason') === 'unknown_key',
    'a forged event was counted, or a derived first key id named a key',
  );
  return (
    `SQS: forged events (another account's key under Bob's id, a key id no account holds, ${int(f.num('parameters.oversizedUnits'))} units against a bound of ${int(f.num('parameters.maxEventUnits'))}):` +
    ` **${int(sqs.num('forgedCounted'))} counted**, dead-lettered ${codes(sqs.counts('deadLetteredByReason'))};` +
    ` Alice's usage ${int(sqs.num('aliceUsageBeforeForgeries'))} → ${int(sqs.num('aliceUsageAfter'))}, Bob's ${int(sqs.num('bobUsageBefore'))} → ${int(sqs.num('bobUsageAfter'))}` +
    ` (${int(sqs.num('freshKeyEventsCounted'))} real event for a key created a moment before);` +
    ` Alice's first key named as it used to be derived from her account id, under her own account: \`${sqs.str('derivedFirstKeyReason')}\` (first key ids are random);` +
    ` ${int(sqs.num('provenanceReadRequests'))} \`BatchGetItem\` over ${int(sqs.num('batches'))} batches.` +
    ` Kinesis: dead-lettered ${codes(kinesis.counts('deadLetteredByReason'))}, Bob ${int(kinesis.num('bobUsageAfter'))}, Alice ${int(kinesis.num('aliceUsageAfter'))}.` +
    ` Keys table throttled during the check: ${int(down.num('recordsFailedWhileDown'))} records reported failed, ${int(down.num('countedWhileDown'))} counted, ${int(down.num('deadLetteredWhileDown'))} dead-lettered;` +
    ` redelivered after recovery: ${int(down.num('countedAfterRecovery'))} counted, dead-lettered ${codes(down.counts('deadLetteredAfterRecovery'))}.`
  );
}

// --- secret hygiene --------------------------------------------------------------------------

function noStore(f: Figures): string {
  return (
    `${int(f.num('answersWithNoStore'))} of ${int(f.num('answersChecked'))} answers over the ${int(f.num('operationsInDocument'))} operations of the OpenAPI document` +
    ` (${tally(f.counts('answersByStatus'))}) carried \`Cache-Control: no-store\`, the ${int(f.num('secretAnswersWithNoStore'))} that carried a secret among them;` +
    ` \`/openapi.json\` \`${f.str('openApiCacheControl')}\``
  );
}

function recentSignIn(f: Figures): string {
  const p = f.at('parameters');
  const refusals = f.counts('mintingRefusals');
  const reads = f.counts('readsWithOldSignIn');
  const mints = f.counts('freshSignInMints');
  return (
    `with a window of ${secs(p.num('signInMaxAgeMs'), 0)} (a test setting; the default ${int(p.num('defaultSignInMaxAgeMs') / 60_000)} min):` +
    ` ${Object.entries(refusals)
      .map(([route, status]) => `\`${route}\` ${status}`)
      .join(
        ', ',
      )} \`reauthentication_required\`; ${int(f.num('keysAddedByRefusedRequests'))} keys added, ${int(f.num('keysChangedByRefusedRequests'))} changed;` +
    ` with the same token ${Object.entries(reads)
      .map(([route, status]) => `\`${route}\` ${status}`)
      .join(
        ', ',
      )}, revoke ${int(f.num('revokeWithOldSignIn'))}; after a fresh sign-in create ${mints.create}, reveal ${mints.reveal}, roll ${mints.roll}`
  );
}

function keyNames(f: Figures): string {
  const refused = f.at('keyNames.refused');
  const labels = Object.keys(f.counts('keyNames.accepted'));
  const refusedLabels = Object.keys(f.get('keyNames.refused') as Record<string, string>);
  return (
    `refused: ${refusedLabels.map((label) => `${label} ${answer(refused.str(label))}`).join(', ')};` +
    ` ${int(f.num('keyNames.keysAddedByRefusedNames'))} keys added by them;` +
    ` accepted: ${labels.map((label) => `${label} ${f.num(`keyNames.accepted.${label}`)}`).join(', ')}`
  );
}

// --- guess throttling, CDK ---------------------------------------------------------------------

function guessThrottling(f: Figures): string {
  const p = f.at('parameters');
  const retry = f.list('retryAfterSeconds').map(Number);
  return (
    `${int(p.num('guesses'))} guesses from one address (budget ${int(p.num('budget'))} per ${secs(p.num('windowMs'), 0)}): **${int(f.num('dynamoDbReadsForGuesses'))} reads**` +
    ` (${fixed(f.num('readsPerGuess'), 3)} per guess), ${tally(f.counts('answers'), answer)}, \`Retry-After\` ${retry.join('-')} s,` +
    ` \`KeyGuessesThrottled\` ${int(f.num('keyGuessesThrottledMetric'))}; during the flood ${tally(f.counts('duringFlood'), answer)};` +
    ` after the window ${int(f.num('afterWindow.reads'))} reads again (${tally(f.counts('afterWindow.answers'), answer)}).`
  );
}

function outageRedrive(f: Figures): string {
  const one = (transport: 'sqs' | 'kinesis') => {
    const t = f.at(transport);
    mustHold(
      t.num('counted') === t.num('answered200') && t.num('lost') === 0 && t.num('doubled') === 0,
      `${transport}: ${t.num('counted')} counted of ${t.num('answered200')} answered 200`,
    );
    return t;
  };
  const sqs = one('sqs');
  const kinesis = one('kinesis');
  return (
    `SQS (redelivery shortened to ${secs(sqs.num('redeliveryMs'), 0)}): outage ${secs(sqs.num('outageMs'), 1)},` +
    ` ${int(sqs.num('deadLettered'))} dead-lettered, ${int(sqs.num('redriven'))} sent back,` +
    ` **${int(sqs.num('counted'))} counted of ${int(sqs.num('answered200'))}** 200s (a copy sent again: a duplicate by its mark);` +
    ` Kinesis (given up after ${secs(kinesis.num('maxRecordAgeMs'), 0)}): outage ${secs(kinesis.num('outageMs'), 1)},` +
    ` ${int(kinesis.num('givenUpRecords'))} records in ${int(kinesis.num('descriptions'))} described batches read back and sent to the SQS path,` +
    ` **${int(kinesis.num('counted'))} counted of ${int(kinesis.num('answered200'))}** (the same descriptions redriven twice: no double count)`
  );
}

/** Refuses to render a figure that breaks the bound its row states. */
function mustHold(ok: boolean, what: string): void {
  if (!ok) throw new Error(`a figure breaks its row's bound: ${what}`);
}

function quotaAlerts(f: Figures): string {
  const once = (path: string) => {
    const emails = f.at(path);
    mustHold(
      emails.num('80') === 1 && emails.num('100') === 1,
      `${path}: ${emails.num('80')} × 80 %, ${emails.num('100')} × 100 %`,
    );
    return '1 + 1';
  };
  const timing = f.at('parameters.timing');
  const window = timing.num('confirmWindowMs');
  const crash = f.at('crashBetweenClaimAndSend');
  const lost = f.at('lostReply');
  const residual = lost.at('residual');
  mustHold(
    lost.num('confirmedAfterMs') < window,
    `confirmation after ${lost.num('confirmedAfterMs')} ms, window ${window} ms`,
  );
  mustHold(
    f.num('sesTimeout.gaveUpAfterMs') < f.num('sesTimeout.parameters.requestTimeoutMs') + 1000,
    `SES given up after ${f.num('sesTimeout.gaveUpAfterMs')} ms`,
  );
  mustHold(
    f.num('addressChange.toChangedAddress') === f.num('addressChange.destinations'),
    'an alert went to the old address',
  );
  return (
    `emails (80 % + 100 %): crash after the claim **${once('crashBetweenClaimAndSend.emails.claimedNotLeased')}** (sent by the schedule ${secs(crash.num('claimedNotLeasedSentAfterMs'))} later),` +
    ` crash inside the send **${once('crashBetweenClaimAndSend.emails.diedInSend')}** (${secs(crash.num('diedInSendSentAfterMs'))}: lease ${secs(timing.num('leaseMs'))} + window ${secs(window)});` +
    ` lost SES reply **${once('lostReply.emails')}** (${int(lost.num('sendCalls'))} sends, confirmed by the delivery event ${int(lost.num('confirmedAfterMs'))} ms after the send);` +
    ` two consumers **${once('twoConsumers.emails')}**; 100 % with no traffic after, SES refusing twice: **${once('noTrafficAfter.emails')}** in ${secs(f.num('noTrafficAfter.sentAfterMs'))};` +
    ` late events: yesterday's period **${once('lateEvents.yesterday')}**; changed address: ${int(f.num('addressChange.toChangedAddress'))} of ${int(f.num('addressChange.destinations'))} to it;` +
    ` SES hung: given up after ${secs(f.num('sesTimeout.gaveUpAfterMs'))}.` +
    ` Residual (documented): reply **and** delivery event both lost → ${int(residual.num('emailsWhenEventLost.80'))} + ${int(residual.num('emailsWhenEventLost.100'))} emails, resent ${secs(residual.num('resentAfterMs'))} after, once the window passed.`
  );
}

function guessThrottlingForwarded(f: Figures): string {
  const budget = f.num('parameters.budget');
  const guesses = f.num('parameters.guessesEach');
  const cases = [
    ['clientPort', "the ALB's entry as `ip:port`, a new port each time"],
    ['headerTwice', '`x-forwarded-for` twice (multi-value ALB events), a new address in each'],
    ['headerTwiceOverHttp', 'twice over HTTP through the local ALB'],
  ] as const;
  const parts = cases.map(([name, what]) => {
    const reads = f.num(`${name}.reads`);
    mustHold(reads <= budget, `${name}: ${reads} reads for a budget of ${budget}`);
    return `${what}: **${int(reads)} reads**, ${tally(f.counts(`${name}.answers`), answer)}`;
  });
  const same = f.str('clientPortSameAddressWithoutPort');
  const other = f.str('otherAddress');
  mustHold(same.startsWith('429'), `the same address without a port answered ${same}`);
  mustHold(!other.startsWith('429'), `another address answered ${other}`);
  return (
    `${int(guesses)} unknown keys each (budget ${int(budget)}): ${parts.join('; ')};` +
    ` the same address without a port then ${answer(same)}, another address ${answer(other)}.`
  );
}

function guessThrottlingHttp(f: Figures): string {
  return (
    `${int(f.num('parameters.guesses'))} guesses, each with another spoofed left-most \`x-forwarded-for\` entry:` +
    ` **${int(f.num('dynamoDbReadsForGuesses'))} reads**, ${tally(f.counts('answers'), answer)}.`
  );
}

function throttling(f: Figures): string {
  const t = f.at('apiGatewayThrottling');
  const minting = ['POST /keys', 'POST /keys/{id}/reveal', 'POST /keys/{id}/roll']
    .map((route) => `\`${route}\` ${int(t.num(`${route}.rate`))}/s, burst ${int(t.num(`${route}.burst`))}`)
    .join('; ');
  return (
    `stage ${int(t.num('stage.rate'))}/s, burst ${int(t.num('stage.burst'))}; ${minting};` +
    ` key-api reserved concurrency ${int(f.num('keyApiReservedConcurrency'))}, leaving ${int(f.num('unreservedOfDefaultAccountConcurrency.unreserved'))}` +
    ` of an account limit of ${int(f.num('unreservedOfDefaultAccountConcurrency.parameters.accountLimit'))} (the default) unreserved`
  );
}

function publishers(f: Figures): string {
  const one = (transport: string) =>
    `${transport}: ${f
      .list(`publishersAllowed_${transport}.actions`)
      .map((a) => `\`${String(a)}\``)
      .join(
        ', ',
      )} allowed only to ${f.list(`publishersAllowed_${transport}.principals`).map(String).join(' and ')}`;
  return `${one('sqs')}; ${one('kinesis')}; every other principal denied (one Deny statement on the queue and on the stream)`;
}

// --- the table -------------------------------------------------------------------------------

export const ROWS: readonly Row[] = [
  {
    scenario: 'soak-60s',
    title: (f, run) =>
      `**Soak, ${Math.round(f.num('seconds'))} s** (\`npm run soak\`, last run ${run.date} on \`${run.commit.slice(0, 7)}\`${run.dirty ? ' + changes' : ''})`,
    mustHold: SOAK_HOLDS,
    measured: (f) => soak(f, true),
  },
  {
    scenario: 'soak',
    title: (f) => `**Soak, CI form** (${Math.round(f.num('seconds'))} s)`,
    mustHold: 'the same',
    measured: (f) => soak(f, false),
  },
  {
    scenario: 'faults',
    title: 'Publish refused, SQS and Kinesis',
    mustHold: 'closed: 503 `service_unavailable`; open: 200 + `UnmeteredRequests`; both in the metrics',
    measured: publishRefused,
  },
  {
    scenario: 'faults',
    title: 'Publish hangs (SQS accepts connections, never answers)',
    mustHold: (f) =>
      `an answer within key-api's ${secs(f.num('publishHang.parameters.functionTimeoutMs'), 0)} function timeout`,
    measured: publishHang,
  },
  {
    scenario: 'faults',
    title: (f) =>
      `DynamoDB errors during key checks (fresh ${secs(f.num('dynamoDbErrors.parameters.freshMs'))}, stale ${secs(f.num('dynamoDbErrors.parameters.staleMs'))})`,
    mustHold: 'cached keys work within fresh + stale; unknown keys 503, not 401 or 500',
    measured: dynamoDbErrors,
  },
  {
    scenario: 'faults',
    title: 'DynamoDB hangs (then SQS too)',
    mustHold: (f) =>
      `stale answers and 503s within ${secs(f.num('publishHang.parameters.functionTimeoutMs'), 0)}; with a quota plan within ${secs(f.num('quotaPlanHang.parameters.functionTimeoutMs') - f.num('quotaPlanHang.parameters.marginMs'), 0)} (the timeout less a margin), no read after the first that found DynamoDB down`,
    measured: dynamoDbHang,
  },
  {
    scenario: 'dynamodb-loopback',
    title: 'Local DynamoDB on loopback only (`test/integ/dynamodb-loopback.integ.test.ts`)',
    mustHold: 'DynamoDB Local answers on 127.0.0.1 and refuses every other address of the machine it runs on',
    measured: (f) => {
      const others = f.num('otherAddresses');
      mustHold(
        others > 0 && f.num('refused') === others,
        `${f.num('refused')} of ${others} other addresses refused`,
      );
      return `127.0.0.1: ${f.str('loopback')}; this machine's ${int(others)} other addresses: **${int(f.num('refused'))} refused** (\`ECONNREFUSED\`)`;
    },
  },
  {
    scenario: 'client-timeouts',
    title: 'DynamoDB hangs under user-api and auth-triggers (`test/integ/client-timeouts.integ.test.ts`)',
    mustHold: (f) =>
      `user-api: 503 with \`retry-after\` on every route within ${secs(f.num('parameters.userApiFunctionTimeoutMs') - f.num('parameters.marginMs'), 0)} (its timeout minus a margin); the sign-up trigger fails within Cognito's ${secs(f.num('parameters.cognitoTriggerWaitMs'), 0)} less 1 s`,
    measured: clientTimeouts,
  },
  {
    scenario: 'quota-alerts',
    title: 'Quota alerts exactly once (`test/integ/quota-alerts.integ.test.ts`)',
    mustHold: (f) =>
      `one 80 % and one 100 % email under a crash between claim and send, a lost SES reply, two consumers, and a 100 % with no traffic after it; late events in their own period; the address the user pool has at send time; SES given up within its ${secs(f.num('sesTimeout.parameters.requestTimeoutMs'), 0)} request timeout. A duplicate only if SES's answer and its send event both miss the confirmation window (${secs(f.num('parameters.timing.confirmWindowMs'))} here, 5 min shipped)`,
    measured: quotaAlerts,
  },
  {
    scenario: 'faults',
    title: 'DynamoDB throttling in the consumer',
    mustHold: 'exact counts, no dead letters',
    measured: consumerThrottling,
  },
  {
    scenario: 'metering-kinesis-faults',
    title:
      'Kinesis: redelivery and resends, no per-event writes (`test/integ/metering-kinesis-faults.integ.test.ts`)',
    mustHold: 'each event counted once, on every counter',
    measured: kinesisFaults,
  },
  {
    scenario: 'billing-webhook',
    title:
      'Stripe webhook: signatures, replays, order, cancellation, grace (`test/integ/billing-webhook.integ.test.ts`)',
    mustHold:
      'a bad or missing signature: 400 and no effect; a replay: no effect; the subscription as it is now decides, whatever the delivery order; canceled → default plan at period end; past_due → suspended after the grace, paid → active',
    measured: billingWebhook,
  },
  {
    scenario: 'billing-flow',
    title: "Upgrade to usage on the meter, on `npm start`'s stack (`test/integ/billing-flow.integ.test.ts`)",
    mustHold:
      "after Checkout the gate applies the paid plan; answers billed = metered = reported = Stripe's total",
    measured: billingFlow,
  },
  {
    scenario: 'billing-export-faults',
    title: 'Usage export to Stripe under faults (`test/integ/billing-export.integ.test.ts`)',
    mustHold: "Stripe's daily totals = Tollgate's counters, never more",
    measured: billingExportFaults,
  },
  {
    scenario: 'faults',
    title: 'Redrive from the DLQ after a fix',
    mustHold: 'counted once; redriven twice, still once',
    measured: dlqRedrive,
  },
  {
    scenario: 'bad-input-key-api',
    title: 'Bad input to key-api (fast-check)',
    mustHold: 'never a 5xx; every non-2xx `{ error: { code, message, details? } }`, JSON, no internals',
    measured: badInputKeyApi,
  },
  {
    scenario: 'bad-input-user-api',
    title: 'Bad input to user-api (fast-check)',
    mustHold: 'the same',
    measured: badInputUserApi,
  },
  {
    scenario: 'auth-attacks',
    title: 'Auth attacks on user-api',
    mustHold: 'every bad token refused alike',
    measured: authAttacks,
  },
  {
    scenario: 'auth-cross-account',
    title: "Another account's key ids",
    mustHold: '404, indistinguishable from a key that does not exist',
    measured: authCrossAccount,
  },
  {
    scenario: 'key-guessing-invalid',
    title: (f) => `Key guessing: ${int(f.num('parameters.guesses'))} checksum-invalid strings`,
    mustHold: 'all 401, zero DynamoDB reads',
    measured: keyGuessingInvalid,
  },
  {
    scenario: 'key-guessing-unknown',
    title: (f) => `Key guessing: ${int(f.num('parameters.guesses'))} checksum-valid unknown keys`,
    mustHold: (f) =>
      `all 401; at most one read per key per negative window (${secs(f.num('parameters.negativeWindowMs'), 0)})`,
    measured: keyGuessingUnknown,
  },
  {
    scenario: 'key-guessing-http',
    title: (f) =>
      `Key guessing over HTTP: ${int(f.num('parameters.invalid'))} checksum-invalid + ${int(f.num('parameters.unknown'))} unknown`,
    mustHold: 'the same through the local ALB: one read per unknown key, none for the others',
    measured: keyGuessingHttp,
  },
  {
    scenario: 'revocation',
    title: 'Revocation bound (docs/keys.md: 10 s)',
    mustHold: (f) =>
      `no request sent once the fresh window of the stack's key-api (\`TOLLGATE_KEY_CACHE_FRESH_MS\`, ${secs(f.num('freshWindowMs'), 0)}) has passed since the \`DELETE\` is accepted (no slack); the refusal seen within it + ${secs(f.num('refusalSeenBoundMs') - f.num('freshWindowMs'))} (one poll and a round trip); every 200 billed`,
    measured: revocation,
  },
  {
    scenario: 'quota-overshoot',
    title: 'Quota overshoot (`test/reliability/quota-overshoot.integ.test.ts`; docs/plans.md)',
    mustHold:
      'with C gate containers on one key, counted usage ≤ quota + Σ rate × (read interval + pipeline lag) (+1 in flight per container); every request let through counted exactly once',
    measured: quotaOvershoot,
  },
  {
    scenario: 'quota-exact',
    title:
      'Quota exact for one container while metering is stopped (`test/reliability/quota-exact.integ.test.ts`)',
    mustHold:
      'one client, one container, requests one at a time against a quota of N: exactly N × 200 then 429, with metering stopped and after it restarts; counted = N',
    measured: quotaExact,
  },
  {
    scenario: 'quota-reads',
    title: 'Reads O(1) in keys and days (`test/reliability/quota-exact.integ.test.ts`)',
    mustHold:
      "a quota check is one request of at most two items however many keys and days; `GET /keys`' totals read at most a total per key and the late window's days once folded",
    measured: quotaReads,
  },
  {
    scenario: 'billed-methods',
    title: 'Every 2xx billed, whatever the method (`test/integ/billed-methods.integ.test.ts`)',
    mustHold: 'counted = the 2xx answered, for key-api and the example API, for any method token',
    measured: billedMethods,
  },
  {
    scenario: 'bad-input-key-api',
    title: 'Bad input over raw sockets: non-ASCII header bytes (fast-check)',
    mustHold:
      'a well-formed HTTP answer below 500; past 16 KiB of headers 431; what Tollgate answered in the one shape, no request header echoed',
    measured: (f) => `seed ${f.num('seed')}: ${rawSocket(f, 'key-api through the local ALB')}.`,
  },
  {
    scenario: 'bad-input-user-api',
    title: 'Bad input over raw sockets to user-api',
    mustHold: 'the same',
    measured: (f) => `seed ${f.num('seed')}: ${rawSocket(f, 'user-api, half with a real ID token')}.`,
  },
  {
    scenario: 'bad-input-user-api',
    title: "The caller's real keys, model-checked (fast-check)",
    mustHold:
      "every answer one the model of the account's keys allows; `GET /keys` equal to the model; another account's keys unchanged; real 201s and 200s reached",
    measured: realKeys,
  },
  {
    scenario: 'event-provenance',
    title:
      'Forged usage events written straight to the queue or stream (`test/integ/event-provenance.integ.test.ts`)',
    mustHold:
      'no forged event counted; each dead-lettered with its reason; a real event for a key created a moment before counted; a first key id derived from an account id names no key; keys table unavailable → the records retried, never counted unchecked or dead-lettered',
    measured: eventProvenance,
  },
  {
    scenario: 'conflict-retry',
    title: 'TransactionConflict on key writes (`test/integ/conflict-retry.integ.test.ts`)',
    mustHold:
      'retried with jitter, then 409 `conflict` when it persists, never 503; nothing written by a refused write',
    measured: (f) =>
      `create: ${int(f.num('create.injected'))} conflicts injected into the real client, ${int(f.num('create.attempts'))} attempts, **${int(f.num('create.status'))}**;` +
      ` roll: ${int(f.num('roll.injected'))} conflict, ${int(f.num('roll.attempts'))} attempts, **${int(f.num('roll.status'))}**;` +
      ` conflicts that never stop: ${int(f.num('persistent.attempts'))} attempts (${int(f.num('parameters.retries'))} retries, the shipped policy), **${answer(f.str('persistent.answer'))}**,` +
      ` ${int(f.num('persistent.keysWritten'))} keys written, ${int(f.num('persistent.internalErrors'))} internal errors`,
  },
  {
    scenario: 'secret-hygiene',
    title: 'Secrets never cached (`test/integ/user-api-hygiene.integ.test.ts`)',
    mustHold: 'every user-api answer, 2xx or 4xx, secrets included, `Cache-Control: no-store`',
    measured: noStore,
  },
  {
    scenario: 'secret-hygiene',
    title: 'Minting needs a recent sign-in (the ID token’s `auth_time`)',
    mustHold:
      'create, reveal and roll refuse a sign-in older than `TOLLGATE_SIGN_IN_MAX_AGE_MS`, minting nothing; reading and revoking still work; a fresh sign-in mints',
    measured: recentSignIn,
  },
  {
    scenario: 'secret-hygiene',
    title: 'Admin changes need a recent sign-in too',
    mustHold:
      'saving a plan, assigning one, suspending: 401 `reauthentication_required` with an old sign-in, nothing changed; reads still work; a fresh sign-in saves',
    measured: (f) => {
      const refusals = f.counts('adminRefusals');
      mustHold(
        Object.values(refusals).length === 3 && Object.values(refusals).every((s) => s === 401),
        'an admin change went through with an old sign-in',
      );
      return `${Object.entries(refusals)
        .map(([route, status]) => `\`${route}\` ${status}`)
        .join(
          ', ',
        )} \`reauthentication_required\`; \`GET /admin/plans\` ${f.num('adminReadWithOldSignIn')} without the plan; after a fresh sign-in the save ${f.num('adminFreshSignInSaves')}`;
    },
  },
  {
    scenario: 'secret-hygiene',
    title: 'Key names are printable text',
    mustHold:
      'control characters, bidi overrides and lone surrogates 400, creating nothing; other Unicode text kept as given',
    measured: keyNames,
  },
  {
    scenario: 'guess-throttling',
    title: 'Guess throttling per client address (`test/reliability/guess-throttling.integ.test.ts`)',
    mustHold:
      "at most the budget of lookups that find nothing per address per window per container; then 429 `too_many_guesses` with `Retry-After`, no read; another address's new keys and the guesser's cached key still 200",
    measured: guessThrottling,
  },
  {
    scenario: 'guess-throttling-http',
    title: 'Guess throttling over HTTP, spoofed `x-forwarded-for`',
    mustHold: "the address is the ALB's (right-most) entry: entries a client writes buy no budget",
    measured: guessThrottlingHttp,
  },
  {
    scenario: 'guess-throttling-forwarded',
    title: 'Guess throttling: `ip:port` entries and `x-forwarded-for` twice',
    mustHold:
      'at most the budget of reads for each: a port is no new client, and two headers share one budget (neither is trusted); another address keeps its own',
    measured: guessThrottlingForwarded,
  },
  {
    scenario: 'cdk-hardening',
    title: 'Plain HTTP by default (CDK)',
    mustHold:
      'a `prod` stage without a certificate does not synthesize unless `allowInsecureHttp`; with one, port 80 only redirects',
    measured: (f) =>
      `default context refused: "${f.str('synthRefusal')}"; with a certificate: ${f.list('listenersWithCertificate').map(String).join(', ')} (301);` +
      ` with \`allowInsecureHttp=true\`: ${f.list('listenersWithAllowInsecureHttp').map(String).join(', ')}`,
  },
  {
    scenario: 'cdk-hardening',
    title: 'WAF (CDK)',
    mustHold: 'a web ACL with per-IP rate rules and AWS managed rules on every regional front door',
    measured: (f) =>
      `${int(f.num('wafAssociations'))} associations: ${f.list('wafTargets').map(String).join('; ')};` +
      ` per-IP limits ${int(f.num('wafRateLimitsPerIp.key-api'))} / ${int(f.num('wafRateLimitsPerIp.user-api'))} / ${int(f.num('wafRateLimitsPerIp.user-pool'))}` +
      ` requests per ${int(f.num('wafRateLimitsPerIp.windowSeconds'))} s; AWS common and known-bad-inputs rule groups on each`,
  },
  {
    scenario: 'cdk-hardening',
    title: 'API Gateway throttling, key-api concurrency (CDK)',
    mustHold: 'minting routes throttled tighter than the stage; key-api capped and guaranteed',
    measured: throttling,
  },
  {
    scenario: 'cdk-hardening',
    title: 'Forged usage: who may publish (CDK)',
    mustHold:
      "only the gates' roles may send to the usage queue or put to the stream (and the redrive role to the queue)",
    measured: publishers,
  },
  {
    scenario: 'cdk-hardening',
    title: 'Kinesis retention (CDK)',
    mustHold: 'retention ≥ the late window, so every event the consumer would still count can be read back',
    measured: (f) =>
      `${int(f.num('kinesisRetention.retentionHours'))} h ≥ ${int(f.num('kinesisRetention.lateWindowHours'))} h`,
  },
  {
    scenario: 'outage-redrive',
    title: 'DynamoDB outage longer than the redelivery, then `npm run usage:redrive`',
    mustHold:
      'every 200 counted exactly once on SQS and on Kinesis: usage waits, the dead letters are sent back, none lost, none doubled',
    measured: outageRedrive,
  },
  {
    title: '`npm audit --omit=dev --audit=true`',
    mustHold: 'no high or critical advisory',
    measured: () =>
      "**could not be run here**: the registry this machine reaches answers `405 Method Not Allowed` to npm's bulk advisory request. See below.",
  },
];
