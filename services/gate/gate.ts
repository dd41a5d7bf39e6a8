import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { KeyApiMetric } from '../../contracts/metric-names';
import { newUsageEvent, ProducerSequence, statusClass, type UsageEvent } from '../../contracts/usage-event';
import type { Clock } from '../platform/clock';
import { DependencyError } from '../platform/errors';
import type { MetricsRecorder } from '../platform/metrics';
import type { ExtractedKey } from './extract-key';
import type { GuessThrottle } from './guess-throttle';
import type { CacheOutcome } from './key-cache';
import type { KeyCheck, KeyVerifier } from './key-verifier';
import type { DependencyProbe, LimitDecision, PlanLimits } from './limits';
import type { UsagePublisher } from './publisher';
import type { RefusalSink } from './refusal-tally';
import { KEY_REFUSALS, LIMIT_REFUSALS, type Refusal, refusal, unavailable } from './refusals';

/**
 * What to do with a billable answer whose usage event cannot be published.
 *  - closed (default): withhold it and answer 503. Every billable answer a client receives is then
 *    a counted one: usage stays exact.
 *  - open: deliver it anyway and count it as `UnmeteredRequests`: availability over billing.
 */
export type PublishFailureMode = 'closed' | 'open';

/** Who is calling: what the owner's handler gets once the gate let the request in. */
export interface Caller {
  readonly accountId: string;
  readonly keyId: string;
}

/** What the owner's handler answered, as the billing policy sees it. */
export interface GateAnswer {
  /** The declared route template (`/v1/rates/:currency`), or `*` when none matched. */
  readonly route: string;
  readonly method: string;
  readonly status: number;
}

/** Decides which answers are billed (published as usage). */
export type BillingPolicy = (answer: GateAnswer) => boolean;

/** The default: what did the work, 2xx and 3xx. A refusal of the gate itself is never billed. */
export const billSuccesses: BillingPolicy = (answer) => answer.status >= 200 && answer.status < 400;

export type Admission =
  | {
      readonly admitted: true;
      readonly caller: Caller;
      readonly at: Date;
      /** The plan's RateLimit-Policy / RateLimit headers: adapters add them to the answer. */
      readonly headers: Readonly<Record<string, string>>;
      /**
       * DynamoDB was found unavailable while admitting (the last known key, terms or usage were
       * used): the adapter makes no further read of it for this request.
       */
      readonly degraded: boolean;
      /** Tells the plan's quota how the request settled (PlanLimits.check); `settle` calls it. */
      readonly settleLimits?: (published: boolean) => void;
    }
  | { readonly admitted: false; readonly refusal: Refusal };

/**
 * How an admitted request ended for billing:
 *  - billed: its usage event is stored by the transport;
 *  - not_billed: the policy does not bill this answer; nothing was published;
 *  - unmetered: billable, publishing failed, delivered anyway (open mode);
 *  - unrecorded: billable, publishing failed, so the answer must be withheld (closed mode):
 *    the adapter sends `Gate.unrecorded` instead;
 *  - failed: billable, but no valid usage event could be made of it (a bug: the gate's or the
 *    owner's route table): withheld and answered 500, never delivered free.
 * `Gate.withheld` says what an adapter sends instead of the answer, if anything.
 */
export type Settlement = 'billed' | 'not_billed' | 'unmetered' | 'unrecorded' | 'failed';

export interface GateDeps {
  verifier: KeyVerifier;
  publisher: UsagePublisher;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRecorder;
  publishFailureMode: PublishFailureMode;
  /** The plans' limits; without them every admitted key is unlimited. */
  limits?: PlanLimits;
  /** Lookups of unknown keys per client (guess-throttle.ts); without it guessing is not throttled. */
  guesses?: GuessThrottle;
  /** This container's producer id (`pid`) on every event it publishes (contracts/usage-event.ts). */
  producerId?: string;
  /** Told of every refusal by the plan (per key, for the owner; never billed): refusal-tally.ts. */
  refusals?: RefusalSink;
}

/** Where a request came from, as the adapter can tell (client-ip.ts). */
export interface RequestOrigin {
  /**
   * The client's budget key (clientKey: an IPv4 address, an IPv6 /64); undefined: not throttled.
   * A function, asked only when a key would need a read: a cached key's check parses no header.
   */
  readonly client?: () => string | undefined;
}

const HEADER_PLACES = 'in the x-api-key header or as a Bearer token';

/**
 * The key check and the usage it bills, whatever serves the request: key-api's own ALB handler,
 * the ALB wrapper around an owner's handler (alb.ts) and the Hono middleware (hono.ts) all admit
 * through `admit` and bill through `settle`, over one verifier (checksum → cache → KeyLookup) and
 * one publisher per container.
 *
 * When usage is published: after the owner's handler answered, because the policy bills by its
 * status. The event is dated when the request was admitted. A request that is refused, or whose
 * key cannot be checked (503), never reaches the handler and is never billed.
 */
export class Gate {
  readonly #deps: GateDeps;
  readonly #count: (name: string) => void;
  readonly #keyPlaces: string;
  /** This container's numbering of its events (with producerId): what the SQS ledger claims. */
  readonly #sequence = new ProducerSequence();

  /**
   * @param deps read as the gate goes (not copied), so a setting may be a getter
   * @param options.keyPlaces where a caller may put its key, for the `missing_key` answer
   */
  constructor(deps: GateDeps, options: { keyPlaces?: string } = {}) {
    this.#deps = deps;
    this.#keyPlaces = options.keyPlaces ?? HEADER_PLACES;
    this.#count = (name) => deps.metrics.addMetric(name, MetricUnit.Count, 1);
  }

  /** Answered instead of a billable answer whose usage could not be recorded (closed mode). */
  static readonly unrecorded: Refusal = unavailable(
    'Usage could not be recorded, so the request was not accepted; retry shortly',
  );

  /** Answered instead of a billable answer no valid usage event could be made of (a bug). */
  static readonly unbillable: Refusal = refusal(500, 'internal_error', 'The request failed');

  /** What an adapter answers instead of the owner's answer after `settle`, or undefined: deliver it. */
  static withheld(settlement: Settlement): Refusal | undefined {
    return settlement === 'unrecorded'
      ? Gate.unrecorded
      : settlement === 'failed'
        ? Gate.unbillable
        : undefined;
  }

  /**
   * Checks the presented key, then the plan's limits. Never throws: an unavailable DynamoDB is a
   * 503 refusal, anything else that fails (a bug, a bad deploy) a 500 refusal, logged and counted
   * as `InternalErrors`.
   */
  async admit(extracted: ExtractedKey, origin: RequestOrigin = {}): Promise<Admission> {
    if (extracted.kind !== 'found') return this.#unpresented(extracted);
    try {
      const check = await this.#deps.verifier.verify(extracted.key, {
        guesses: this.#deps.guesses,
        client: origin.client,
      });
      if (check.outcome !== 'accepted') return this.#keyRefused(check);
      this.#countCache(check.cache);
      const caller = { accountId: check.accountId, keyId: check.keyId };
      // A stale key answer means DynamoDB is down: the limits then use what they know.
      const probe = { unavailable: check.cache === 'stale' };
      const decision = this.#deps.limits ? await this.#deps.limits.check(caller, probe) : undefined;
      return this.#decided(caller, decision, probe);
    } catch (error) {
      return this.#checkFailed(error);
    }
  }

  /** No key to check: none was sent, or what was sent cannot be one (two different keys). */
  #unpresented(extracted: Exclude<ExtractedKey, { kind: 'found' }>): Admission {
    if (extracted.kind === 'invalid') {
      this.#count(KeyApiMetric.checks.invalid);
      return { admitted: false, refusal: refusal(400, 'invalid_request', extracted.message) };
    }
    this.#count(KeyApiMetric.checks.missing);
    return {
      admitted: false,
      refusal: refusal(401, 'missing_key', `Send an API key ${this.#keyPlaces}`, {
        'www-authenticate': 'Bearer realm="tollgate"',
      }),
    };
  }

  /** A key the check did not accept: its client guessed too often, or the key cannot pass. */
  #keyRefused(check: Exclude<KeyCheck, { outcome: 'accepted' }>): Admission {
    if (check.outcome === 'throttled') {
      this.#count(KeyApiMetric.guessesThrottled);
      return {
        admitted: false,
        refusal: refusal(
          429,
          'too_many_guesses',
          'Too many unknown API keys from this address; retry later',
          {
            'retry-after': String(check.retryAfterSeconds),
          },
        ),
      };
    }
    if (check.outcome !== 'malformed') this.#countCache(check.cache);
    this.#count(KeyApiMetric.checks[check.outcome]);
    const { code, message } = KEY_REFUSALS[check.outcome];
    return {
      admitted: false,
      refusal: refusal(401, code, message, {
        'www-authenticate': 'Bearer realm="tollgate", error="invalid_token"',
      }),
    };
  }

  #countCache(source: CacheOutcome['source']): void {
    this.#count(
      source === 'fresh'
        ? KeyApiMetric.cacheHits
        : source === 'stale'
          ? KeyApiMetric.cacheStaleServed
          : KeyApiMetric.cacheMisses,
    );
  }

  /** An accepted key's admission, as its plan's limits decided (none: unlimited). */
  #decided(caller: Caller, decision: LimitDecision | undefined, probe: DependencyProbe): Admission {
    if (decision && !decision.allowed) {
      const refused = LIMIT_REFUSALS[decision.reason];
      this.#count(refused.metric);
      this.#deps.refusals?.refused(caller, decision.reason, this.#deps.clock.now().getTime());
      const retry = decision.retryAfterSeconds;
      return {
        admitted: false,
        refusal: refusal(refused.status, decision.reason, decision.message, {
          ...decision.headers,
          ...(retry === undefined ? {} : { 'retry-after': String(retry) }),
        }),
      };
    }
    return {
      admitted: true,
      caller,
      at: this.#deps.clock.now(),
      headers: decision?.headers ?? {},
      degraded: probe.unavailable,
      ...(decision?.settle ? { settleLimits: decision.settle } : {}),
    };
  }

  /** The check itself failed: DynamoDB is unavailable (503), or something is broken (500). */
  #checkFailed(error: unknown): Admission {
    if (error instanceof DependencyError) {
      this.#count(KeyApiMetric.checks.unavailable);
      this.#deps.logger.warn('key check unavailable', { error });
      return { admitted: false, refusal: unavailable('Key checks are briefly unavailable; retry shortly') };
    }
    // Not an outage (those are DependencyErrors): a bug or a bad deploy, e.g. a DynamoDB
    // ValidationException. Logged with its cause, counted (a failure metric: written at once,
    // alarmed), and answered 500 without internals: "retry shortly" would be a lie.
    this.failed(error, 'key check failed');
    return { admitted: false, refusal: refusal(500, 'internal_error', 'The key check failed') };
  }

  /**
   * Bills an admitted request's answer if `policy` says so: publishes its usage event (route,
   * method, status class), and says what the adapter must do with the answer. Never throws.
   */
  async settle(
    admission: Extract<Admission, { admitted: true }>,
    answer: GateAnswer,
    policy: BillingPolicy = billSuccesses,
  ): Promise<Settlement> {
    const settled = await this.#settle(admission, answer, policy);
    // Published, or maybe (a failed publish's outcome is unknown): the quota counts it as on its way.
    admission.settleLimits?.(settled === 'billed' || settled === 'unrecorded' || settled === 'unmetered');
    return settled;
  }

  async #settle(
    admission: Extract<Admission, { admitted: true }>,
    answer: GateAnswer,
    policy: BillingPolicy,
  ): Promise<Settlement> {
    if (!policy(answer)) {
      this.#count(KeyApiMetric.checks.accepted);
      // Gated but free: counted so the dashboard can tell "not billed" from "not called".
      this.#count(KeyApiMetric.notBilled);
      return 'not_billed';
    }
    let event: UsageEvent;
    try {
      // Validated as it is minted (the method folded into the closed set, the route checked): an
      // event the consumer would refuse is never published, and its answer never delivered free.
      event = newUsageEvent({
        keyId: admission.caller.keyId,
        accountId: admission.caller.accountId,
        now: admission.at,
        route: answer.route,
        method: answer.method,
        status: statusClass(answer.status),
        ...(this.#deps.producerId === undefined
          ? {}
          : {
              producerId: this.#deps.producerId,
              sequence: this.#sequence.next(admission.at.getTime(), this.#deps.clock.now().getTime()),
            }),
      });
    } catch (error) {
      this.failed(error, 'usage event invalid; the answer is withheld');
      return 'failed';
    }
    const started = performance.now();
    let published = true;
    try {
      await this.#deps.publisher.publish(event);
    } catch (error) {
      published = false;
      this.#deps.logger.error('usage event not published', {
        error,
        keyId: event.keyId,
        mode: this.#deps.publishFailureMode,
      });
    }
    // Tenths of a millisecond: finer adds only digits to every value in the EMF line.
    const latencyMs = Math.round((performance.now() - started) * 10) / 10;
    this.#deps.metrics.addMetric(KeyApiMetric.publishLatency, MetricUnit.Milliseconds, latencyMs);
    if (!published) {
      this.#count(KeyApiMetric.publishFailures);
      if (this.#deps.publishFailureMode === 'closed') return 'unrecorded';
      this.#count(KeyApiMetric.unmetered);
    }
    this.#count(KeyApiMetric.checks.accepted);
    return published ? 'billed' : 'unmetered';
  }

  /** A failure that is a bug (the gate's or the owner's handler's): logged, counted, alarmed. */
  failed(error: unknown, message: string): void {
    this.#count(KeyApiMetric.internalErrors);
    this.#deps.logger.error(message, { error });
  }
}
