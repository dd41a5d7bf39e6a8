import { LRUCache } from 'lru-cache';
import {
  type AccountStatus,
  type Plan,
  periodBounds,
  type Quota,
  type RateLimit,
} from '../../contracts/plans';
import { DependencyError } from '../platform/errors';
import type { KeyCache } from './key-cache';
import { headersOf, type PolicyState } from './ratelimit-headers';

/** Who is calling (the gate's Caller; not imported, so that gate.ts can import this module). */
interface Caller {
  readonly accountId: string;
  readonly keyId: string;
}

/** What the gate enforces for an account: its standing and its plan (none: unlimited). */
export interface AccountTerms {
  status: AccountStatus;
  plan?: Plan;
}

export type LimitDecision =
  | {
      allowed: true;
      headers: Record<string, string>;
      /**
       * Under a quota: call once the request's answer is settled, `published` when its usage event
       * was handed to the transport (or may have been: a failed publish's outcome is unknown, and
       * counting it errs towards refusing).
       */
      settle?: (published: boolean) => void;
    }
  | {
      allowed: false;
      reason: 'account_suspended' | 'rate_limited' | 'quota_exceeded';
      message: string;
      /** Seconds until the refusal would not be made again (absent: not a matter of time). */
      retryAfterSeconds?: number;
      headers: Record<string, string>;
    };

/** What a quota check reads: the account's counted usage this period and this container's share of it. */
export interface PeriodUsage {
  used: number;
  byProducer: number;
}

/**
 * What the gate learns while deciding one request: set once a read found DynamoDB unavailable, so
 * that the request's further reads are not attempted (each would only add its timeout) and the last
 * known terms and usage are used instead.
 */
export interface DependencyProbe {
  unavailable: boolean;
}

export interface PlanLimitsOptions {
  /** Accounts' terms, cached with the key cache's windows (composeGate). */
  terms: KeyCache<AccountTerms>;
  /**
   * An account's counted requests in the quota period holding `at`, and the share of them this
   * container published (UsageReader.periodUsage with this container's producer id): one read.
   */
  readUsage: (accountId: string, period: Quota['period'], at: Date) => Promise<PeriodUsage>;
  /**
   * How long a quota's counted usage is reused before it is read again, per account and container:
   * the read interval of the overshoot bound (docs/gate.md). @default 1000
   */
  usageReadIntervalMs?: number;
  /** @default 50_000 */
  maxEntries?: number;
  now?: () => number;
}

interface UsageEntry {
  /** The account's counted usage in the period as of the last read, and this container's share of it. */
  counted: number;
  countedOwn: number;
  readAt: number;
  period: Quota['period'];
  periodStart: number;
  periodEnd: number;
  periodSeconds: number;
  /** Billed answers this container published in the period (or may have: a failed publish's outcome is unknown). */
  published: number;
  /** Requests let through and not settled yet (their answer, and with it their event, still to come). */
  inFlight: number;
  reading?: Promise<void>;
}

interface WindowEntry {
  start: number;
  count: number;
}

/**
 * Plans, enforced where keys are checked, without a write per request:
 *
 *  - **Suspension**: the account's standing, cached like a key (a suspension takes effect within the
 *    fresh window), refuses with 403 `account_suspended`.
 *  - **Rate limit**: a fixed window per key (or account) counted in this container's memory. Each
 *    container enforces the whole limit, so with C containers serving one key at once it admits up
 *    to C × the limit per window.
 *  - **Quota**: the account's exact counters for the period (one item, read at most once per read
 *    interval per account), plus what this container let through that they do not hold yet. That
 *    part is known exactly, whatever the pipeline's lag: metering counts each container's events
 *    apart (its producer id), so `published − countedOwn` is what this container published that is
 *    still on its way, and `inFlight` what it let through and has not answered yet. One container
 *    therefore admits exactly the quota, even while metering is stopped. What it cannot see is what
 *    other containers let through that is not counted yet: the overshoot bound, docs/gate.md.
 *
 * Every gated answer carries `RateLimit-Policy` and `RateLimit` (IETF draft-ietf-httpapi-ratelimit-headers)
 * for the limits its plan has.
 */
export class PlanLimits {
  readonly #terms: KeyCache<AccountTerms>;
  readonly #readUsage: PlanLimitsOptions['readUsage'];
  readonly #readIntervalMs: number;
  readonly #usage: LRUCache<string, UsageEntry>;
  readonly #windows: LRUCache<string, WindowEntry>;
  readonly #now: () => number;

  constructor(options: PlanLimitsOptions) {
    this.#terms = options.terms;
    this.#readUsage = options.readUsage;
    this.#readIntervalMs = options.usageReadIntervalMs ?? 1000;
    this.#usage = new LRUCache({ max: options.maxEntries ?? 50_000 });
    this.#windows = new LRUCache({ max: options.maxEntries ?? 50_000 });
    this.#now = options.now ?? Date.now;
  }

  get readIntervalMs(): number {
    return this.#readIntervalMs;
  }

  /**
   * Decides whether an admitted caller may go on, and counts it against its limits if so. On the
   * path every request takes (cached terms, usage read less than a read interval ago) it awaits
   * nothing but the terms and allocates little: the key check's CPU budget (BENCHMARKS.md).
   * A request let through under a quota must be settled (`LimitDecision.settle`) once its answer
   * is known, whether it was billed or not.
   * @param probe `unavailable` when DynamoDB was already found unavailable for this request; set
   *   here when a read of the terms finds it so
   * @throws DependencyError when the account's terms or usage cannot be read and nothing usable is cached
   */
  async check(caller: Caller, probe: DependencyProbe = { unavailable: false }): Promise<LimitDecision> {
    // When DynamoDB is down, each further read would only add its timeout to the answer's (the 5 s
    // budget), so the last known terms and usage are used.
    const { lookup, source } = await this.#terms.get(caller.accountId, probe);
    if (source === 'stale') probe.unavailable = true;
    // An account that is not there (deleted under a live key) has no terms: nothing to enforce.
    if (!lookup.found) return ALLOWED;
    const terms = lookup.record;
    if (terms.status === 'suspended') {
      return {
        allowed: false,
        reason: 'account_suspended',
        message: 'The account is suspended',
        headers: {},
      };
    }
    const plan = terms.plan;
    if (!plan || (!plan.rateLimit && !plan.quota)) return ALLOWED;
    const now = this.#now();
    let entry: UsageEntry | undefined;
    if (plan.quota) {
      const pending = this.#usageOf(caller.accountId, plan.quota, now, probe);
      entry = pending instanceof Promise ? await pending : pending;
    }
    const window = plan.rateLimit ? this.#window(caller, plan.rateLimit, now) : undefined;
    return decide(plan, entry, window, now);
  }

  /** This container's fixed window for the caller's key or account, aligned to the epoch. */
  #window(caller: Caller, limit: RateLimit, now: number): WindowEntry {
    // Per account unless the plan says per key (the schema's default, also for items saved without one).
    const id = limit.scope === 'key' ? `k:${caller.keyId}` : `a:${caller.accountId}`;
    const length = limit.perSeconds * 1000;
    const start = now - (now % length);
    let window = this.#windows.get(id);
    if (!window || window.start !== start) {
      window = { start, count: 0 };
      this.#windows.set(id, window);
    }
    return window;
  }

  /** The account's usage this period: at once when read within the interval, else after a read. */
  #usageOf(
    accountId: string,
    quota: Quota,
    now: number,
    probe: DependencyProbe,
  ): UsageEntry | Promise<UsageEntry> {
    let entry = this.#usage.get(accountId);
    if (!entry || now >= entry.periodEnd || now < entry.periodStart || entry.period !== quota.period) {
      const { start, end } = periodBounds(quota.period, new Date(now));
      // A new period: what this container published before belongs to the old one's counters.
      // Requests still in flight from it are settled on the entry they were admitted on.
      entry = {
        counted: 0,
        countedOwn: 0,
        readAt: Number.NEGATIVE_INFINITY,
        period: quota.period,
        periodStart: start.getTime(),
        periodEnd: end.getTime(),
        periodSeconds: Math.round((end.getTime() - start.getTime()) / 1000),
        published: 0,
        inFlight: 0,
      };
      this.#usage.set(accountId, entry);
    }
    if (now - entry.readAt < this.#readIntervalMs) return entry;
    if (probe.unavailable) {
      if (entry.readAt !== Number.NEGATIVE_INFINITY) return entry;
      throw new DependencyError('DynamoDB', { cause: new Error('unavailable earlier in this request') });
    }
    return this.#refresh(accountId, entry, now, probe);
  }

  async #refresh(
    accountId: string,
    entry: UsageEntry,
    now: number,
    probe: DependencyProbe,
  ): Promise<UsageEntry> {
    entry.reading ??= this.#read(accountId, entry, now).finally(() => {
      entry.reading = undefined;
    });
    try {
      await entry.reading;
    } catch (error) {
      if (error instanceof DependencyError) probe.unavailable = true;
      // Last known usage when the counters cannot be read now (as a stale key answer); none yet: 503.
      if (!(error instanceof DependencyError) || entry.readAt === Number.NEGATIVE_INFINITY) throw error;
    }
    return entry;
  }

  async #read(accountId: string, entry: UsageEntry, now: number): Promise<void> {
    const usage = await this.#readUsage(accountId, entry.period, new Date(now));
    // Both from one snapshot: what the counters hold of this container's events is part of the
    // total, so subtracting it from what the container published leaves exactly what is on its way.
    entry.counted = usage.used;
    entry.countedOwn = usage.byProducer;
    entry.readAt = now;
  }
}

/**
 * The account's use of its quota as this container can know it: the counted total, plus what this
 * container published that the counters do not hold yet, plus what it let through and has not
 * answered yet.
 */
function estimatedUse(entry: UsageEntry): number {
  return entry.counted + Math.max(0, entry.published - entry.countedOwn) + entry.inFlight;
}

const ALLOWED: LimitDecision = { allowed: true, headers: {} };

/** The request against its plan: refused by the quota first, then by the rate; else let through. */
function decide(
  plan: Plan,
  entry: UsageEntry | undefined,
  window: WindowEntry | undefined,
  now: number,
): LimitDecision {
  const quota = plan.quota && entry ? quotaState(plan.quota, entry, now) : undefined;
  const rate = plan.rateLimit && window ? rateState(plan.rateLimit, window, now) : undefined;
  if (quota && quota.remaining <= 0) {
    return {
      allowed: false,
      reason: 'quota_exceeded',
      message: `The plan's quota of ${quota.limit} requests per ${plan.quota?.period} is used up`,
      retryAfterSeconds: quota.resetSeconds,
      headers: headersOf(plan, quota, rate, 0),
    };
  }
  if (rate && rate.remaining <= 0) {
    return {
      allowed: false,
      reason: 'rate_limited',
      message: `The plan allows ${rate.limit} requests per ${rate.windowSeconds} s`,
      retryAfterSeconds: rate.resetSeconds,
      headers: headersOf(plan, quota, rate, 0),
    };
  }
  // Let through: counted against both, and the headers say what is left after this request.
  if (window) window.count++;
  const headers = headersOf(plan, quota, rate, 1);
  if (!entry) return { allowed: true, headers };
  entry.inFlight++;
  const held = entry;
  return {
    allowed: true,
    headers,
    settle: (published) => {
      held.inFlight--;
      if (published) held.published++;
    },
  };
}

function quotaState(quota: Quota, entry: UsageEntry, now: number): PolicyState {
  return {
    name: 'quota',
    limit: quota.requests,
    windowSeconds: entry.periodSeconds,
    remaining: quota.requests - estimatedUse(entry),
    resetSeconds: Math.max(1, Math.ceil((entry.periodEnd - now) / 1000)),
  };
}

function rateState(limit: RateLimit, window: WindowEntry, now: number): PolicyState {
  return {
    name: 'rate',
    limit: limit.requests,
    windowSeconds: limit.perSeconds,
    remaining: limit.requests - window.count,
    resetSeconds: Math.max(1, Math.ceil((window.start + limit.perSeconds * 1000 - now) / 1000)),
  };
}
