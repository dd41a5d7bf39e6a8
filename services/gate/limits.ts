import { LRUCache } from 'lru-cache';
import {
  type AccountStatus,
  type Plan,
  periodBounds,
  type Quota,
  type RateLimit,
} from '../../contracts/plans';
import { utcDay } from '../../contracts/usage-event';
import { DependencyError } from '../shared/errors';
import type { KeyCache } from './key-cache';

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

/** How a request stands against its plan's limits, for the RateLimit headers of its answer. */
interface PolicyState {
  /** The policy's name in the headers: `quota` or `rate`. */
  name: 'quota' | 'rate';
  limit: number;
  windowSeconds: number;
  remaining: number;
  resetSeconds: number;
}

export type LimitDecision =
  | { allowed: true; headers: Record<string, string> }
  | {
      allowed: false;
      reason: 'account_suspended' | 'rate_limited' | 'quota_exceeded';
      message: string;
      /** Seconds until the refusal would not be made again (absent: not a matter of time). */
      retryAfterSeconds?: number;
      headers: Record<string, string>;
    };

export interface PlanLimitsOptions {
  /** Accounts' terms, cached with the key cache's windows (composeGate). */
  terms: KeyCache<AccountTerms>;
  /** An account's counted requests from one UTC day to another, inclusive (UsageReader.total). */
  readUsage: (accountId: string, fromDay: string, toDay: string) => Promise<number>;
  /**
   * How long a quota's counted usage is reused before it is read again, per account and container:
   * the read interval of the overshoot bound (README). @default 1000
   */
  usageReadIntervalMs?: number;
  /** @default 50_000 */
  maxEntries?: number;
  now?: () => number;
}

interface UsageEntry {
  /** Counted usage in the period as of the read, and when that read was sent. */
  counted: number;
  readAt: number;
  period: Quota['period'];
  periodStart: number;
  periodEnd: number;
  periodSeconds: number;
  /** Requests this container let through since the read was sent: not in `counted` yet. */
  since: number;
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
 *  - **Quota**: the account's exact counters for the period (read at most once per read interval per
 *    account) plus what this container let through since that read. What it cannot see is what
 *    other containers let through since their reads and what the pipeline has not counted yet: the
 *    overshoot bound, README "Plans".
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
   * @throws DependencyError when the account's terms or usage cannot be read and nothing usable is cached
   */
  async check(caller: Caller, options: { unavailable?: boolean } = {}): Promise<LimitDecision> {
    // When the key itself came from a stale entry, DynamoDB is down: each further read would only
    // add its timeout to the answer's (the 5 s budget), so the last known terms and usage are used.
    const { lookup } = await this.#terms.get(caller.accountId, options);
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

    let quota: PolicyState | undefined;
    let entry: UsageEntry | undefined;
    if (plan.quota) {
      const pending = this.#usageOf(caller.accountId, plan.quota, now, options.unavailable ?? false);
      entry = pending instanceof Promise ? await pending : pending;
      quota = {
        name: 'quota',
        limit: plan.quota.requests,
        windowSeconds: entry.periodSeconds,
        remaining: plan.quota.requests - entry.counted - entry.since,
        resetSeconds: Math.max(1, Math.ceil((entry.periodEnd - now) / 1000)),
      };
    }
    let rate: PolicyState | undefined;
    let window: WindowEntry | undefined;
    if (plan.rateLimit) {
      window = this.#window(caller, plan.rateLimit, now);
      rate = {
        name: 'rate',
        limit: plan.rateLimit.requests,
        windowSeconds: plan.rateLimit.perSeconds,
        remaining: plan.rateLimit.requests - window.count,
        resetSeconds: Math.max(1, Math.ceil((window.start + plan.rateLimit.perSeconds * 1000 - now) / 1000)),
      };
    }
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
    if (entry) entry.since++;
    if (window) window.count++;
    return { allowed: true, headers: headersOf(plan, quota, rate, 1) };
  }

  /** This container's fixed window for the caller's key or account, aligned to the epoch. */
  #window(caller: Caller, limit: RateLimit, now: number): WindowEntry {
    const id = limit.scope === 'account' ? `a:${caller.accountId}` : `k:${caller.keyId}`;
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
    unavailable: boolean,
  ): UsageEntry | Promise<UsageEntry> {
    let entry = this.#usage.get(accountId);
    if (!entry || now >= entry.periodEnd || now < entry.periodStart || entry.period !== quota.period) {
      const { start, end } = periodBounds(quota.period, new Date(now));
      entry = {
        counted: 0,
        readAt: Number.NEGATIVE_INFINITY,
        period: quota.period,
        periodStart: start.getTime(),
        periodEnd: end.getTime(),
        periodSeconds: Math.round((end.getTime() - start.getTime()) / 1000),
        since: 0,
      };
      this.#usage.set(accountId, entry);
    }
    if (now - entry.readAt < this.#readIntervalMs) return entry;
    if (unavailable && entry.readAt !== Number.NEGATIVE_INFINITY) return entry;
    return this.#refresh(accountId, entry, now);
  }

  async #refresh(accountId: string, entry: UsageEntry, now: number): Promise<UsageEntry> {
    entry.reading ??= this.#read(accountId, entry, now).finally(() => {
      entry.reading = undefined;
    });
    try {
      await entry.reading;
    } catch (error) {
      // Last known usage when the counters cannot be read now (as a stale key answer); none yet: 503.
      if (!(error instanceof DependencyError) || entry.readAt === Number.NEGATIVE_INFINITY) throw error;
    }
    return entry;
  }

  async #read(accountId: string, entry: UsageEntry, now: number): Promise<void> {
    const sentAt = now;
    const sinceBefore = entry.since;
    const counted = await this.#readUsage(accountId, utcDay(entry.periodStart), utcDay(now));
    entry.counted = counted;
    entry.readAt = sentAt;
    // Requests let through before the read was sent are taken to be in it; those the pipeline had
    // not counted yet are the lag term of the overshoot bound. Requests let through while the read
    // was on its way may or may not be in it: kept, so that count errs towards refusing.
    entry.since -= sinceBefore;
  }
}

const ALLOWED: LimitDecision = { allowed: true, headers: {} };

/** A plan's RateLimit-Policy value: the same for every request under it, so built once per plan. */
const policyHeaders = new WeakMap<Plan, string>();

/**
 * `RateLimit-Policy: "quota";q=1000;w=86400, "rate";q=10;w=1` and
 * `RateLimit: "quota";r=412;t=3600, "rate";r=9;t=1` (structured-field lists, one item per policy),
 * `used` requests taken off what is left (1 for a request let through).
 */
function headersOf(
  plan: Plan,
  quota: PolicyState | undefined,
  rate: PolicyState | undefined,
  used: number,
): Record<string, string> {
  let policy = policyHeaders.get(plan);
  if (policy === undefined) {
    policy = [quota, rate]
      .filter((s) => s !== undefined)
      .map((s) => `"${s.name}";q=${s.limit};w=${s.windowSeconds}`)
      .join(', ');
    policyHeaders.set(plan, policy);
  }
  const q = quota ? `"quota";r=${Math.max(0, quota.remaining - used)};t=${quota.resetSeconds}` : '';
  const r = rate ? `"rate";r=${Math.max(0, rate.remaining - used)};t=${rate.resetSeconds}` : '';
  return { 'ratelimit-policy': policy, ratelimit: q && r ? `${q}, ${r}` : q || r };
}
