import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import Stripe from 'stripe';
import type { BillingApi } from '../../billing/api';
import { DependencyError } from '../../platform/errors';
import type { UserApiDeps, UserApiEnv } from '../env';
import { ApiError, notFound } from '../errors';
import { describedErrorResponses, json, type OperationHandler, requiresIdToken, router } from '../openapi';
import { checkoutRequest, checkoutSession, meBilling, plansForSale, portalSession } from './billing-schemas';

/**
 * Self-serve upgrade: the signed-in owner buys a plan that has a Stripe price (a Checkout Session),
 * manages the subscription in Stripe's customer portal, and reads what is billed against what is
 * metered. Written against BillingApi (services/billing/api.ts); a deployment without billing
 * configured answers every one of them 404 `not_found`.
 */

const tags = ['Billing'];
const NOT_CONFIGURED =
  'When billing is not configured in this deployment, every billing route answers 404 `not_found`.';

const listForSale = createRoute({
  method: 'get',
  path: '/billing/plans',
  tags,
  summary: 'The plans an owner can buy',
  description: `The plans with a Stripe price (\`billing.priceId\`), what \`POST /billing/checkout\` sells; prices themselves are shown on Stripe's Checkout page. ${NOT_CONFIGURED}`,
  security: requiresIdToken,
  responses: {
    200: json(plansForSale, 'The plans for sale'),
    ...describedErrorResponses({ 404: 'Billing is not configured' }, 404),
  },
});

const checkout = createRoute({
  method: 'post',
  path: '/billing/checkout',
  tags,
  summary: 'Start a subscription to a plan: a Stripe Checkout Session',
  description: `A Checkout Session in subscription mode for the plan's Stripe price, for the account's Stripe customer (created on the first checkout and kept). Once the session is completed, Stripe's webhook puts the account on the plan. ${NOT_CONFIGURED}`,
  security: requiresIdToken,
  request: { body: { content: { 'application/json': { schema: checkoutRequest } }, required: true } },
  responses: {
    201: json(checkoutSession, 'The session: send the browser to `url`'),
    ...describedErrorResponses(
      {
        404: 'No such plan, no account yet (`GET /me` provisions it), or billing is not configured',
        409: '`conflict`, with `details.reason`: `not_for_sale`, the plan has no price (it cannot be bought, only assigned by an admin); `already_subscribed`, the account has a live subscription (plan changes and cancellation go through `POST /billing/portal`)',
      },
      400,
      404,
      409,
    ),
  },
});

const portal = createRoute({
  method: 'post',
  path: '/billing/portal',
  tags,
  summary: "Open Stripe's customer portal for the account",
  description: `Plan changes, payment methods, invoices and cancellation. ${NOT_CONFIGURED}`,
  security: requiresIdToken,
  responses: {
    200: json(portalSession, 'The portal session: send the browser to `url`'),
    ...describedErrorResponses(
      {
        404: 'Billing is not configured',
        409: 'The account has no Stripe customer yet (`conflict`, `details.reason`: `no_customer`): its first checkout makes one',
      },
      404,
      409,
    ),
  },
});

const getBilling = createRoute({
  method: 'get',
  path: '/me/billing',
  tags,
  summary: "The signed-in owner's subscription, and billed against metered this period",
  description: `\`inSync\` says whether every metered request has been reported to Stripe; while an export is pending, \`metered - reported\` is what it has yet to push. ${NOT_CONFIGURED}`,
  security: requiresIdToken,
  responses: {
    200: json(meBilling, 'The billing standing'),
    ...describedErrorResponses({ 404: 'Billing is not configured' }, 404),
  },
});

export function billingRoutes(deps: UserApiDeps) {
  const configured = (): BillingApi => {
    if (!deps.billing) throw new ApiError(404, 'not_found', 'billing is not configured');
    return deps.billing;
  };

  const forSale: OperationHandler<typeof listForSale> = async (c) => {
    configured();
    const plans = (await deps.plans.listPlans())
      .filter((plan) => plan.billing?.priceId)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(({ planId, name, quota, rateLimit, maxKeys }) => ({
        planId,
        name,
        ...(quota ? { quota: { requests: quota.requests, period: quota.period } } : {}),
        ...(rateLimit
          ? { rateLimit: { requests: rateLimit.requests, perSeconds: rateLimit.perSeconds } }
          : {}),
        ...(maxKeys === undefined ? {} : { maxKeys }),
      }));
    return c.json({ plans }, 200);
  };

  const startCheckout: OperationHandler<typeof checkout> = async (c) => {
    const billing = configured();
    const user = c.get('user');
    if (!(await deps.store.getAccount(user.userId))) throw notFound('account: GET /me provisions it');
    const { planId } = c.req.valid('json');
    const outcome = await viaStripe(() =>
      billing.checkout({ accountId: user.userId, email: user.email }, planId),
    );
    if (outcome.ok) return c.json({ url: outcome.url, sessionId: outcome.sessionId }, 201);
    switch (outcome.reason) {
      case 'unknown_plan':
        throw notFound('plan');
      case 'not_for_sale':
        // 409, not 400: the request is well-formed and the plan exists; it is the plan's state
        // (no Stripe price) that refuses it, and the same request succeeds once an admin prices it.
        throw new ApiError(409, 'conflict', `The plan "${planId}" has no price: it cannot be bought`, {
          reason: 'not_for_sale',
        });
      case 'already_subscribed':
        // The account's state: a second subscription would bill it twice; the portal changes the plan.
        throw new ApiError(
          409,
          'conflict',
          'The account already has a subscription: change or cancel it in the billing portal (POST /billing/portal)',
          { reason: 'already_subscribed' },
        );
    }
  };

  const openPortal: OperationHandler<typeof portal> = async (c) => {
    const billing = configured();
    const outcome = await viaStripe(() => billing.portal(c.get('user').userId));
    if (!outcome.ok) {
      throw new ApiError(409, 'conflict', 'The account has no Stripe customer yet: buy a plan first', {
        reason: 'no_customer',
      });
    }
    return c.json({ url: outcome.url }, 200);
  };

  const readBilling: OperationHandler<typeof getBilling> = async (c: Context<UserApiEnv>) => {
    const billing = configured();
    return c.json(await billing.summary(c.get('user').userId, deps.clock.now()), 200);
  };

  return router()
    .openapi(listForSale, forSale)
    .openapi(checkout, startCheckout)
    .openapi(portal, openPortal)
    .openapi(getBilling, readBilling);
}

/**
 * Stripe unreachable, rate limiting or answering 5xx (after the SDK's own retries) is an outage:
 * a DependencyError, which onError answers 503 with `retry-after`. Anything else Stripe refuses is
 * a request we built wrong: a bug, left as it is (500, logged and counted).
 */
async function viaStripe<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (
      error instanceof Stripe.errors.StripeConnectionError ||
      error instanceof Stripe.errors.StripeRateLimitError ||
      (error instanceof Stripe.errors.StripeAPIError && (error.statusCode ?? 500) >= 500)
    ) {
      throw new DependencyError('Stripe', { cause: error });
    }
    throw error;
  }
}
