import { z } from 'zod';

/**
 * A route template as the owner declares it, in Hono's path syntax (`/v1/rates/:currency`), never a
 * raw path: what usage is split by, so its cardinality is the owner's route table, not the traffic.
 * `*` is every request not matched to a declared route (and key-api's own key check).
 */
export const routeTemplateSchema = z
  .string()
  .regex(
    /^(\*|\/[\x21-\x7e]{0,199})$/,
    'a route template: `*` or a printable path of at most 200 characters',
  );

/**
 * The methods usage is recorded under: the standard ones an API serves, and `OTHER` for every
 * other token a client may send (`M-SEARCH`, `PROPFIND`, a 20-letter invention). A closed set,
 * because the method is a counter dimension (one attribute of the key's day item per route and
 * method): a client must not be able to mint new ones, and must not get a billable answer whose
 * event the consumer refuses.
 */
export const BILLED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'] as const;
export type BilledMethod = (typeof BILLED_METHODS)[number];
const STANDARD_METHODS: ReadonlySet<string> = new Set(BILLED_METHODS.filter((m) => m !== 'OTHER'));

/** A request's method as usage records it: itself if standard (case-sensitive, RFC 9110), else `OTHER`. */
export function billedMethod(method: string): BilledMethod {
  return STANDARD_METHODS.has(method) ? (method as BilledMethod) : 'OTHER';
}

/**
 * The method of an event. The gate mints only BILLED_METHODS (billedMethod); the consumer still
 * takes any string and folds it the same way, so an event queued by an older gate with `PROPFIND`
 * is counted under `OTHER` instead of being refused: the method can never cost a billed request.
 */
export const methodSchema = z.string().max(1024).transform(billedMethod);

/** A gate container's producer id (`pid`): URL-safe, unguessable, minted by newProducerId. */
export const producerIdSchema = z
  .string()
  .regex(/^[0-9A-Za-z_-]{16,64}$/, 'a producer id of 16-64 URL-safe characters');

/** A new producer id: 128 random bits, once per gate container. */
export function newProducerId(): string {
  return crypto.randomUUID().replaceAll('-', '');
}

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

export function statusClass(status: number): StatusClass {
  const hundreds = Math.floor(status / 100);
  return STATUS_CLASSES[Math.min(Math.max(hundreds, 1), 5) - 1] as StatusClass;
}

/** The route of requests without one: key-api's key check, unmatched paths, events from before routes. */
export const ANY_ROUTE = '*';
/** The method recorded for events from before routes were recorded. */
export const ANY_METHOD = '*';

/**
 * The most units one event can carry: what a producer emits. Every producer today bills one unit
 * per billable answer (the gate's settle, key-api's accepted check: newUsageEvent's default), so
 * the bound is 1. Consumer and producer share it through the schema: a record forged or replayed
 * with more is refused (`invalid_event`) instead of billing a tenant up to the old 1,000,000 at
 * once. A producer that bills more per answer raises it here, for both sides at once.
 */
export const MAX_EVENT_UNITS = 1;

/**
 * The usage event: one per billable answer (key-api's accepted checks, the gate's billed responses). Producer (key-api) and consumer (metering)
 * both import this schema. `id` is minted by key-api and is the idempotency key end to end: every
 * copy of an event (producer retry, redelivery) carries the same id and is counted once.
 */
export const usageEventSchema = z
  .strictObject({
    v: z.literal(1),
    id: z.string().regex(/^[0-9A-Za-z_-]{16,64}$/, 'an id of 16-64 URL-safe characters'),
    keyId: z.string().min(1).max(128),
    accountId: z.string().min(1).max(128),
    /** Event time: when key-api accepted the request, epoch milliseconds. */
    ts: z.number().int().positive(),
    units: z.number().int().min(1).max(MAX_EVENT_UNITS),
    /**
     * Set only on a copy key-api sent again after an attempt whose outcome it could not know (a
     * timeout or a server error): the time of the first attempt, epoch ms. On Kinesis, where
     * redelivery is ruled out by sequence numbers rather than per-event marks, it tells the consumer
     * which records may have an earlier copy in their shard and where to look for it.
     */
    resent: z.number().int().positive().optional(),
    /**
     * What was called (the gate): the declared route template, the method and the answer's status
     * class. Absent on events from before routes were recorded: they count under `*` / `*`.
     */
    route: routeTemplateSchema.optional(),
    method: methodSchema.optional(),
    status: z.enum(STATUS_CLASSES).optional(),
    /**
     * The gate container that published it: a random id minted once per container. Metering counts
     * each container's share of an account's period apart (a producer item), so the container can
     * tell which of the requests it admitted the counters already hold, whatever the pipeline's lag
     * (services/gate/limits.ts). Absent on events from before it was recorded.
     */
    pid: producerIdSchema.optional(),
    /**
     * The event's number in its producer's sequence (1, 2, …; every copy of one event carries the
     * same), and when the number was taken (epoch ms, never decreasing per producer, never before
     * `ts`). On SQS the consumer claims (pid, seq) pairs in its ledger instead of writing a mark per
     * event (docs/metering.md, "The SQS ledger"); a number lost to a failed publish is a gap, closed
     * once `at` of the next one is past the late window. Absent on events from before it was
     * recorded: those go the mark path.
     */
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    at: z.number().int().positive().optional(),
  })
  .superRefine((event, ctx) => {
    if (event.seq === undefined && event.at === undefined) return;
    if (event.seq === undefined || event.at === undefined || event.pid === undefined) {
      ctx.addIssue({ code: 'custom', message: 'seq and at come together, with pid', path: ['seq'] });
    } else if (event.at < event.ts) {
      ctx.addIssue({ code: 'custom', message: 'at is never before ts', path: ['at'] });
    }
  });

export type UsageEvent = z.infer<typeof usageEventSchema>;

/**
 * One producer's numbering (a gate container's): the next (seq, at) for an event of time `ts`.
 * Taken once per event, before its first publish attempt, so every retry carries the same pair.
 */
export class ProducerSequence {
  #seq = 0;
  #at = 0;

  next(ts: number, now: number = Date.now()): { seq: number; at: number } {
    this.#seq++;
    this.#at = Math.max(this.#at, now, ts);
    return { seq: this.#seq, at: this.#at };
  }
}

/** The most route templates one gate may declare: with BILLED_METHODS, the bound on a counter's route attributes. */
export const MAX_ROUTE_TEMPLATES = 64;

export function newUsageEvent(input: {
  keyId: string;
  accountId: string;
  now: Date;
  units?: number;
  route?: string;
  method?: string;
  status?: StatusClass;
  producerId?: string;
  /** The producer's numbering of this event (ProducerSequence.next); needs producerId. */
  sequence?: { seq: number; at: number };
}): UsageEvent {
  const units = input.units ?? 1;
  // The producer's side of the shared bound: an event the consumer would refuse is a bug here.
  if (!Number.isInteger(units) || units < 1 || units > MAX_EVENT_UNITS) {
    throw new RangeError(`units must be an integer from 1 to ${MAX_EVENT_UNITS}, not ${units}`);
  }
  // Validated where it is minted, with the consumer's own schema: an event the consumer would
  // refuse (and so never count) must fail here, before a billable answer goes out for it.
  return usageEventSchema.parse({
    v: 1,
    id: crypto.randomUUID(),
    keyId: input.keyId,
    accountId: input.accountId,
    ts: input.now.getTime(),
    units,
    ...(input.route === undefined ? {} : { route: input.route }),
    ...(input.method === undefined ? {} : { method: input.method }),
    ...(input.status === undefined ? {} : { status: input.status }),
    ...(input.producerId === undefined ? {} : { pid: input.producerId }),
    ...(input.sequence === undefined ? {} : { seq: input.sequence.seq, at: input.sequence.at }),
  });
}

/** A day is the UTC calendar day of the event time, `yyyy-mm-dd`. */
export function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

export const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
