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
  periodStart: number;
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
   * Decides whether an admitted caller may go on, and counts it against its limits if so.
   * @throws DependencyError when the account's terms or usage cannot be read and nothing usable is cached
   */
  async check(caller: Caller): Promise<LimitDecision> {
    const { lookup } = await this.#terms.get(caller.accountId);
    // An account that is not there (deleted under a live key) has no terms: nothing to enforce.
    const terms: AccountTerms = lookup.found ? lookup.record : { status: 'active' };
    if (terms.status === 'suspended') {
      return {
        allowed: false,
        reason: 'account_suspended',
        message: 'The account is suspended',
        headers: {},
      };
    }
    const plan = terms.plan;
    if (!plan || (!plan.rateLimit && !plan.quota)) return { allowed: true, headers: {} };
    const now = this.#now();
    const states: PolicyState[] = [];

    let quotaEntry: UsageEntry | undefined;
    if (plan.quota) {
      quotaEntry = await this.#usageOf(caller.accountId, plan.quota, now);
      const state = quotaState(plan.quota, quotaEntry, now);
      if (state.remaining <= 0) {
        return {
          allowed: false,
          reason: 'quota_exceeded',
          message: `The plan's quota of ${plan.quota.requests} requests per ${plan.quota.period} is used up`,
          retryAfterSeconds: state.resetSeconds,
          headers: headersOf([
            state,
            ...(plan.rateLimit ? [this.#rateState(caller, plan.rateLimit, now)] : []),
          ]),
        };
      }
      states.push(state);
    }
    if (plan.rateLimit) {
      const state = this.#rateState(caller, plan.rateLimit, now);
      if (state.remaining <= 0) {
        return {
          allowed: false,
          reason: 'rate_limited',
          message: `The plan allows ${plan.rateLimit.requests} requests per ${plan.rateLimit.perSeconds} s`,
          retryAfterSeconds: state.resetSeconds,
          headers: headersOf([...states, state]),
        };
      }
      states.push(state);
    }
    // Let through: counted against both, and the headers say what is left after this request.
    if (quotaEntry) quotaEntry.since++;
    if (plan.rateLimit) {
      const window = this.#window(caller, plan.rateLimit, now);
      window.count++;
    }
    return { allowed: true, headers: headersOf(states.map((s) => ({ ...s, remaining: s.remaining - 1 }))) };
  }

  #rateState(caller: Caller, limit: RateLimit, now: number): PolicyState {
    const window = this.#window(caller, limit, now);
    const length = limit.perSeconds * 1000;
    return {
      name: 'rate',
      limit: limit.requests,
      windowSeconds: limit.perSeconds,
      remaining: limit.requests - window.count,
      resetSeconds: Math.max(1, Math.ceil((window.start + length - now) / 1000)),
    };
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

  async #usageOf(accountId: string, quota: Quota, now: number): Promise<UsageEntry> {
    const { start } = periodBounds(quota.period, new Date(now));
    const periodStart = start.getTime();
    let entry = this.#usage.get(accountId);
    if (!entry || entry.periodStart !== periodStart) {
      entry = { counted: 0, readAt: Number.NEGATIVE_INFINITY, periodStart, since: 0 };
      this.#usage.set(accountId, entry);
    }
    if (now - entry.readAt >= this.#readIntervalMs) {
      const current = entry;
      current.reading ??= this.#read(accountId, current, now).finally(() => {
        current.reading = undefined;
      });
      try {
        await current.reading;
      } catch (error) {
        // Last known usage when the counters cannot be read now (as a stale key answer); none yet: 503.
        if (!(error instanceof DependencyError) || current.readAt === Number.NEGATIVE_INFINITY) throw error;
      }
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

function quotaState(quota: Quota, entry: UsageEntry, now: number): PolicyState {
  const { start, end } = periodBounds(quota.period, new Date(now));
  return {
    name: 'quota',
    limit: quota.requests,
    windowSeconds: Math.round((end.getTime() - start.getTime()) / 1000),
    remaining: quota.requests - entry.counted - entry.since,
    resetSeconds: Math.max(1, Math.ceil((end.getTime() - now) / 1000)),
  };
}

/**
 * `RateLimit-Policy: "quota";q=1000;w=86400, "rate";q=10;w=1` and
 * `RateLimit: "quota";r=412;t=3600, "rate";r=9;t=1` (structured-field lists, one item per policy).
 */
function headersOf(states: readonly PolicyState[]): Record<string, string> {
  if (states.length === 0) return {};
  return {
    'ratelimit-policy': states.map((s) => `"${s.name}";q=${s.limit};w=${s.windowSeconds}`).join(', '),
    ratelimit: states.map((s) => `"${s.name}";r=${Math.max(0, s.remaining)};t=${s.resetSeconds}`).join(', '),
  };
}
