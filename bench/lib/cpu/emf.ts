import type { ALBEvent } from 'aws-lambda';
import { EMF_SIMULATION } from '../../cost-model';
import { PRICES } from '../../prices';
import { emfMetrics, handlerWith } from './subjects';

/**
 * What CloudWatch Logs bills for key-api's metrics, per invocation: the real handler and its
 * buffered metrics driven through EMF_SIMULATION (a steady rate per container, on a simulated
 * clock, for several flush intervals), every EMF line written counted with CloudWatch's per-event
 * overhead, the total divided by the invocations. Every request is accepted (a warm key, as in the
 * load runs): one count each of accepted and cache hits, one publish latency. The publisher takes
 * simulated time (EMF_SIMULATION.publishMs) so the latencies have the digits real ones have; a
 * no-op publisher would write zeros.
 */
export async function emfBytesPerInvocation(event: ALBEvent): Promise<number> {
  const { requestsPerSecondPerContainer: rate, seconds, publishMs } = EMF_SIMULATION;
  // From now on: Powertools skips (and warns about) timestamps more than 14 days old.
  let now = Date.now();
  let elapsed = 0;
  let billed = 0;
  let publishes = 0;
  const { handler, metrics } = handlerWith(
    emfMetrics((line) => {
      billed += Buffer.byteLength(line) + PRICES.cloudWatchLogs.eventOverheadBytes;
    }),
    { now: () => new Date(now) },
    async () => {
      // Spread evenly over the range, in tenths of a millisecond, deterministically.
      const steps = (publishMs.max - publishMs.min) * 10;
      elapsed += publishMs.min + ((publishes++ * 7919) % steps) / 10;
    },
  );
  const realNow = performance.now;
  performance.now = () => elapsed;
  try {
    const invocations = Math.round(rate * seconds);
    for (let i = 0; i < invocations; i++) {
      const result = await handler(event);
      if (result.statusCode !== 200) throw new Error(`check answered ${result.statusCode}: ${result.body}`);
      now += 1000 / rate;
    }
    // The last, partial window is counted as written: a slight overestimate, not an omission.
    metrics.flush();
    return billed / invocations;
  } finally {
    performance.now = realNow;
  }
}
