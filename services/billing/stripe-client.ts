import Stripe from 'stripe';

/**
 * The official Stripe SDK, pointed at Stripe or (when `apiUrl` is given) at another host that
 * speaks its API: the local stand-in (infra/local/stripe). Bounded, so a hung Stripe is a retry
 * inside the function's timeout, not a hung invocation.
 */
export function stripeClient(
  secretKey: string,
  options: { apiUrl?: string; timeoutMs?: number; maxNetworkRetries?: number } = {},
): Stripe {
  const url = options.apiUrl ? new URL(options.apiUrl) : undefined;
  return new Stripe(secretKey, {
    // The SDK retries connection failures, 409s and 5xx answers (and a 429 only when Stripe says
    // `Stripe-Should-Retry: true`) with its own backoff and the same Idempotency-Key, so a retried
    // POST is never applied twice. Anything else reaches the caller, whose next run retries it.
    maxNetworkRetries: options.maxNetworkRetries ?? 2,
    timeout: options.timeoutMs ?? 8000,
    appInfo: { name: 'Tollgate' },
    ...(url
      ? {
          host: url.hostname,
          port: url.port || (url.protocol === 'https:' ? 443 : 80),
          protocol: url.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}
