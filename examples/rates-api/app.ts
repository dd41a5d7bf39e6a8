import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { ERROR_CODES, type ErrorBody, errorBody } from '../../contracts/errors';
import { type BillingPolicy, billSuccesses, type GateEnv } from '../../services/gate/index';
import { RATES_AS_OF, ratesFrom, SUPPORTED_CURRENCIES } from './rates';

/**
 * A small currency API, as a SaaS owner would put it behind Tollgate: every `/v1` route is gated
 * (the caller's key is checked before the handler runs, `c.get('caller')` says who it is) and its
 * usage is recorded per route. `GET /openapi.json` describes it and is open to everyone.
 */

const currency = z
  .string()
  .regex(/^[A-Z]{3}$/, 'an ISO 4217 code, e.g. EUR')
  .openapi({ example: 'EUR' });

/**
 * Tollgate's one error shape (contracts/errors.ts), for the gate's refusals and this API's own
 * errors alike. Built with this package's zod, which carries `.openapi()`; `satisfies` keeps it the
 * contract's shape, with the contract's codes.
 */
const errorSchema = z
  .object({
    error: z.object({ code: z.enum(ERROR_CODES), message: z.string(), details: z.unknown().optional() }),
  })
  .openapi('Error') satisfies z.ZodType<ErrorBody>;

const apiKey = [{ apiKey: [] }];
const refusals = {
  401: {
    description: 'No key, or a key that is malformed, unknown, revoked or expired',
    content: { 'application/json': { schema: errorSchema } },
  },
  503: {
    description: 'The key could not be checked or the usage recorded; retry',
    content: { 'application/json': { schema: errorSchema } },
  },
} as const;

const currencies = createRoute({
  method: 'get',
  path: '/v1/currencies',
  summary: 'The currencies rates are known for',
  security: apiKey,
  responses: {
    200: {
      description: 'The currencies',
      content: {
        'application/json': { schema: z.object({ currencies: z.array(currency), asOf: z.string() }) },
      },
    },
    ...refusals,
  },
});

const rates = createRoute({
  method: 'get',
  path: '/v1/rates/{base}',
  summary: 'What one unit of `base` buys of every other currency',
  security: apiKey,
  request: { params: z.object({ base: currency }) },
  responses: {
    200: {
      description: 'The rates',
      content: {
        'application/json': {
          schema: z.object({ base: currency, asOf: z.string(), rates: z.record(z.string(), z.number()) }),
        },
      },
    },
    404: {
      description: 'No rates for this currency',
      content: { 'application/json': { schema: errorSchema } },
    },
    ...refusals,
  },
});

const convert = createRoute({
  method: 'post',
  path: '/v1/convert',
  summary: 'Converts an amount between two currencies',
  security: apiKey,
  request: {
    body: {
      content: {
        'application/json': {
          schema: z.strictObject({ from: currency, to: currency, amount: z.number().positive().max(1e12) }),
        },
      },
    },
  },
  responses: {
    200: {
      description: 'The converted amount',
      content: {
        'application/json': {
          schema: z.object({
            from: currency,
            to: currency,
            amount: z.number(),
            result: z.number(),
            rate: z.number(),
            asOf: z.string(),
          }),
        },
      },
    },
    400: { description: 'Not a valid conversion', content: { 'application/json': { schema: errorSchema } } },
    ...refusals,
  },
});

const status = createRoute({
  method: 'get',
  path: '/v1/status',
  summary: 'Checks a key and says whose it is; never billed',
  security: apiKey,
  responses: {
    200: {
      description: 'The key works',
      content: {
        'application/json': {
          schema: z.object({ ok: z.literal(true), accountId: z.string(), keyId: z.string() }),
        },
      },
    },
    ...refusals,
  },
});

/** This API's billing: what did the work (2xx, 3xx), except the free status check. */
export const ratesBilling: BillingPolicy = (answer) => answer.route !== '/v1/status' && billSuccesses(answer);

/** The example API around a gate middleware (composeGate(...).middleware({ bill: ratesBilling })). */
export function createRatesApp(gate: MiddlewareHandler<GateEnv>) {
  const app = new OpenAPIHono<GateEnv>({
    // Validation failures in the one error shape, as every Tollgate answer.
    defaultHook: (result, c) => {
      if (!result.success) {
        return c.json(
          errorBody('invalid_request', 'The request is not valid', z.treeifyError(result.error)),
          400,
        );
      }
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'x-api-key',
  });
  app.use('/v1/*', gate);
  app.notFound((c) => c.json(errorBody('not_found', 'No such route'), 404));
  // The one error shape for a failing handler too (Hono's default is a plain-text 500); the gate
  // has already counted it as an internal error.
  app.onError((_error, c) => c.json(errorBody('internal_error', 'The request failed'), 500));
  return app
    .openapi(currencies, (c) => c.json({ currencies: [...SUPPORTED_CURRENCIES], asOf: RATES_AS_OF }, 200))
    .openapi(rates, (c) => {
      const { base } = c.req.valid('param');
      const table = ratesFrom(base);
      if (!table) return c.json(errorBody('not_found', `No rates for ${base}`), 404);
      return c.json({ base, asOf: RATES_AS_OF, rates: table }, 200);
    })
    .openapi(convert, (c) => {
      const { from, to, amount } = c.req.valid('json');
      const rate = ratesFrom(from)?.[to];
      if (rate === undefined) {
        return c.json(errorBody('invalid_request', `No rate from ${from} to ${to}`), 400);
      }
      return c.json(
        { from, to, amount, rate, result: Math.round(amount * rate * 100) / 100, asOf: RATES_AS_OF },
        200,
      );
    })
    .openapi(status, (c) => {
      const caller = c.get('caller');
      return c.json({ ok: true as const, accountId: caller.accountId, keyId: caller.keyId }, 200);
    })
    .doc31('/openapi.json', {
      openapi: '3.1.0',
      info: {
        title: 'Rates API (a Tollgate example)',
        version: '1.0.0',
        description: 'Every /v1 route needs an API key in x-api-key (or Authorization: Bearer).',
      },
    });
}
