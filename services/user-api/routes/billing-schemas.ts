import { z } from '@hono/zod-openapi';
import { SUBSCRIPTION_STATUSES } from '../../../contracts/billing';
import { planIdSchema, QUOTA_PERIODS } from '../../../contracts/plans';
import { timestamp } from '../openapi';

/** The shapes of the billing routes' requests and answers (billing.ts): contracts/billing.ts `MeBilling`. */

export const checkoutRequest = z.strictObject({ planId: planIdSchema }).openapi('CheckoutRequest', {
  description: 'The plan to subscribe to: one with a Stripe price (`billing.priceId`)',
});

export const checkoutSession = z
  .object({
    url: z.url().openapi({ description: "Stripe's hosted Checkout page: send the browser there" }),
    sessionId: z.string().openapi({ description: 'The Checkout Session (`cs_…`)' }),
  })
  .openapi('CheckoutSession');

export const plansForSale = z
  .object({
    plans: z.array(
      z
        .object({
          planId: z.string(),
          name: z.string(),
          quota: z
            .object({ requests: z.number().int(), period: z.enum(QUOTA_PERIODS) })
            .optional()
            .openapi({ description: 'Absent: no quota' }),
          rateLimit: z
            .object({ requests: z.number().int(), perSeconds: z.number().int() })
            .optional()
            .openapi({ description: 'Absent: no rate limit' }),
          maxKeys: z.number().int().optional().openapi({ description: 'Absent: no limit on live keys' }),
        })
        .openapi('PlanForSale'),
    ),
  })
  .openapi('PlansForSale', { description: 'The plans with a Stripe price, by name' });

export const portalSession = z
  .object({ url: z.url().openapi({ description: "Stripe's customer portal for the account's customer" }) })
  .openapi('PortalSession');

const subscriptionView = z
  .object({
    status: z.enum(SUBSCRIPTION_STATUSES).openapi({ description: "Stripe's subscription status" }),
    planId: z.string().openapi({ description: 'The plan whose price the subscription is for' }),
    currentPeriodEnd: timestamp.openapi({ description: 'When the current period ends' }),
    cancelAtPeriodEnd: z
      .boolean()
      .optional()
      .openapi({ description: 'Canceled at period end: the account returns to the default plan then' }),
  })
  .openapi('BillingSubscription');

export const meBilling = z
  .object({
    customerId: z
      .string()
      .optional()
      .openapi({ description: "The account's Stripe customer; absent until its first checkout" }),
    subscription: subscriptionView.optional().openapi({ description: 'Absent: never subscribed' }),
    usage: z.object({
      period: z
        .object({ start: timestamp, end: timestamp })
        .openapi({ description: "The subscription's current period, else the UTC month" }),
      metered: z
        .number()
        .int()
        .openapi({ description: "Billed requests Tollgate's counters hold for the period" }),
      reported: z.number().int().openapi({
        description: 'Of those, what Stripe has accepted so far (the usage export runs on a schedule)',
      }),
      asOf: timestamp.openapi({ description: 'When the counters were read' }),
    }),
    inSync: z.boolean().openapi({ description: '`metered = reported`: nothing waits to be exported' }),
  })
  .openapi('MeBilling', {
    description: "The signed-in owner's billing: subscription, and billed against metered",
  });
