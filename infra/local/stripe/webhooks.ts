import { createHmac } from 'node:crypto';

/**
 * The `Stripe-Signature` header Stripe sends: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload">`
 * keyed with the endpoint's signing secret, which `stripe.webhooks.constructEvent` verifies.
 */
export function signatureHeader(payload: string, secret: string, timestampSeconds: number): string {
  const signature = createHmac('sha256', secret)
    .update(`${timestampSeconds}.${payload}`, 'utf8')
    .digest('hex');
  return `t=${timestampSeconds},v1=${signature}`;
}

/** Where and how events are delivered. */
export interface WebhookTarget {
  readonly url: string;
  /** The endpoint's signing secret (`whsec_…`). */
  readonly secret: string;
}

export interface WebhookOptions extends WebhookTarget {
  /**
   * Waits between attempts after a failed one (non-2xx, timeout or refused connection): Stripe
   * retries with exponential backoff (over three days in live mode); a test wants it short.
   * @default [1000, 2000, 4000, 8000, 16000]
   */
  readonly retryDelaysMs?: readonly number[];
  /** How long one attempt may take before it counts as failed. @default 10000 */
  readonly attemptTimeoutMs?: number;
}

/** One attempt to deliver one event, as a test reads it back. */
export interface DeliveryAttempt {
  readonly eventId: string;
  readonly type: string;
  readonly attempt: number;
  /** The endpoint's status, or undefined when it did not answer. */
  readonly status: number | undefined;
  readonly delivered: boolean;
}

const DEFAULT_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16000];

/**
 * Delivers events to one endpoint, each on its own (so, as with Stripe, in no guaranteed order),
 * signed at the moment of each attempt with the wall clock: that is what the receiver's tolerance
 * check compares with, whatever the stand-in's own (advanced) time is.
 */
export class WebhookDispatcher {
  readonly attempts: DeliveryAttempt[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly options: WebhookOptions) {}

  deliver(eventId: string, type: string, payload: string): void {
    const delivery = this.attemptUntilDelivered(eventId, type, payload).finally(() =>
      this.inFlight.delete(delivery),
    );
    this.inFlight.add(delivery);
  }

  /** Resolves once every delivery started so far has succeeded or run out of retries. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async attemptUntilDelivered(eventId: string, type: string, payload: string): Promise<void> {
    const delays = this.options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    for (let attempt = 1; attempt <= delays.length + 1 && !this.stopped; attempt += 1) {
      const status = await this.post(payload);
      const delivered = status !== undefined && status >= 200 && status < 300;
      this.attempts.push({ eventId, type, attempt, status, delivered });
      if (delivered) return;
      const delay = delays[attempt - 1];
      if (delay !== undefined) await this.sleep(delay);
    }
  }

  private async post(payload: string): Promise<number | undefined> {
    const signature = signatureHeader(payload, this.options.secret, Math.floor(Date.now() / 1000));
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'stripe-signature': signature,
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        },
        body: payload,
        signal: AbortSignal.timeout(this.options.attemptTimeoutMs ?? 10_000),
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
}
