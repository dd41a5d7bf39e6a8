import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { IssuedKey, Owner, UserApi } from './accounts';
import type { ExactTiming, Scope, UsageLedger } from './exact';
import type { Child } from './ipc';
import { runLoad } from './load';
import type {
  BenchSettings,
  ConsumerSnapshot,
  ExactCheck,
  LoadResult,
  ServerSnapshot,
  Target,
  Transport,
} from './types';

/** A key issued through the user API, with its account. */
export interface BenchKey extends IssuedKey {
  readonly accountId: string;
}

/**
 * One transport's accounts and keys; no other transport's load ever touches them, so each
 * transport's exactness is checked alone. `http` serves the key-check, write and freshness phases
 * (key i in account i % accounts; the probe key of the freshness phase is in the first account but
 * never drawn by a load), `sustained` the wrk phase.
 */
export interface TransportSide {
  readonly transport: Transport;
  readonly httpOwners: ReadonlyArray<{ readonly owner: Owner; readonly accountId: string }>;
  readonly httpKeys: readonly BenchKey[];
  readonly probeKey: BenchKey;
  readonly sustainedAccounts: readonly string[];
  readonly sustainedKeys: readonly BenchKey[];
  /** Every key of this transport and its account. */
  readonly keyAccount: ReadonlyMap<string, string>;
  readonly accounts: readonly string[];
}

/** The benchmark's own queue and streams (only its consumers read them) and the baseline's table. */
export interface BenchResources {
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly streamName: string;
  readonly streamArn: string;
  /** The publish check's stream: shaped like the usage stream, read by no one. */
  readonly checkStreamName: string;
  readonly baselineTable: string;
}

/**
 * What every phase (bench/phases/) runs against: the settings, the stack's engines and the parts
 * under test in their processes, the accounts and keys of each transport, and the exactness checks
 * so far (each phase adds its own).
 */
export interface BenchContext {
  readonly settings: BenchSettings;
  readonly log: (line: string) => void;
  /** This run's id: in the names of its queue, streams, table and made-up keys. */
  readonly run: string;
  /** The UTC day the run started: usage is read from it on. */
  readonly firstDay: string;
  readonly keyPrefix: string;
  readonly keysTable: string;
  /** The orchestrator's own clients: their requests are counted in no part's figures. */
  readonly dynamo: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  readonly users: UserApi;
  readonly ledger: UsageLedger;
  readonly resources: BenchResources;
  readonly baselineKeys: readonly string[];
  readonly sides: Readonly<Record<Transport, TransportSide>>;
  readonly servers: Readonly<Record<Target, Child<{ endpoint: string }>>>;
  readonly metering: Readonly<Record<Transport, Child<unknown>>>;
  readonly producer: Child<unknown>;
  readonly exactChecks: ExactCheck[];
}

/** A pipeline that counted nothing new for this long while behind is stuck: the check fails. */
export const STALL_TIMEOUT_MS = 30_000;
export const HOLD_MS = 1_500;
export const EXACT_TIMING: ExactTiming = {
  stallMs: STALL_TIMEOUT_MS,
  settleTimeoutMs: 900_000,
  holdMs: HOLD_MS,
  pollMs: 250,
};
/** How often the drain after a sustained or paced load is sampled. */
const DRAIN_POLL_MS = 100;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const sumOf = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

export const snapshot = (ctx: BenchContext, target: Target) =>
  ctx.servers[target].call<ServerSnapshot>('snapshot');
export const consumerSnapshot = (ctx: BenchContext, transport: Transport) =>
  ctx.metering[transport].call<ConsumerSnapshot>('snapshot');

/** key-api's 200s by key, limited to `keys` if given (else every key it ever accepted). */
export const answeredBy = (snap: ServerSnapshot, keys?: ReadonlyMap<string, string>) =>
  new Map(Object.entries(snap.ok200ByKey).filter(([id]) => !keys || keys.has(id)));

/** Everything one transport's key API accepted, against all of that transport's accounts. */
export function transportScope(ctx: BenchContext, transport: Transport): Scope {
  return {
    transport,
    accounts: ctx.sides[transport].accounts,
    keyAccount: ctx.sides[transport].keyAccount,
    answered: async () => answeredBy(await snapshot(ctx, transport)),
    answeredTotal: async () => (await snapshot(ctx, transport)).statuses['200'] ?? 0,
  };
}

/** The keys a target's HTTP loads draw from. */
export const keysOf = (ctx: BenchContext, target: Target) =>
  target === 'baseline' ? ctx.baselineKeys : ctx.sides[target].httpKeys.map((k) => k.key);

/** POST / with the article's body; answers the status. */
export async function post(url: string, key: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** An autocannon load on one target's keys: for so long, or so many requests. */
export function load(
  ctx: BenchContext,
  target: Target,
  spec: { durationSec?: number; amount?: number; connections?: number },
): Promise<LoadResult> {
  return runLoad({
    url: ctx.servers[target].ready.endpoint,
    keys: keysOf(ctx, target),
    zipfS: ctx.settings.zipfS,
    seed: 42,
    connections: spec.connections ?? ctx.settings.connections,
    ...(spec.amount
      ? { amount: spec.amount }
      : { durationSec: spec.durationSec ?? ctx.settings.durationSec }),
  });
}

/**
 * Samples until counted == accepted, every DRAIN_POLL_MS from `from`; gives the time from `from`
 * to the first sample that matched, or NaN if counting stalled first.
 */
export async function drain(
  from: number,
  accepted: () => Promise<number>,
  counted: () => Promise<number>,
): Promise<number> {
  let progressAt = Date.now();
  let last = -1;
  for (;;) {
    const [a, c] = await Promise.all([accepted(), counted()]);
    if (a === c) return Date.now() - from;
    if (c !== last) {
      last = c;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > STALL_TIMEOUT_MS) return Number.NaN;
    await sleep(DRAIN_POLL_MS);
  }
}
