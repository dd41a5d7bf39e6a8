import type { Plan } from '../../contracts/plans';

/** How a request stands against its plan's limits, for the RateLimit headers of its answer. */
export interface PolicyState {
  /** The policy's name in the headers: `quota` or `rate`. */
  name: 'quota' | 'rate';
  limit: number;
  windowSeconds: number;
  remaining: number;
  resetSeconds: number;
}

/** A plan's RateLimit-Policy value: the same for every request under it, so built once per plan. */
const policyHeaders = new WeakMap<Plan, string>();

/**
 * `RateLimit-Policy: "quota";q=1000;w=86400, "rate";q=10;w=1` and
 * `RateLimit: "quota";r=412;t=3600, "rate";r=9;t=1` (structured-field lists, one item per policy),
 * `used` requests taken off what is left (1 for a request let through).
 */
export function headersOf(
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
