import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { timeZoneSchema } from '../../../contracts/config';
import { DAY_PATTERN, utcDay } from '../../../contracts/usage-event';
import { MAX_CELLS } from '../../usage/usage-series';
import { csvHeaders, wantsCsv } from '../csv';
import type { UserApiDeps } from '../env';
import { errorResponses, requiresIdToken, router, timestamp } from '../openapi';
import { answerUsage, DEFAULT_USAGE_RANGE_DAYS, type UsageAnswer, usageCsv } from '../usage-answer';

const day = z
  .string()
  .regex(DAY_PATTERN, 'a date as YYYY-MM-DD')
  .refine((value) => utcDay(Date.parse(`${value}T00:00:00Z`) || 0) === value, 'not a calendar date')
  .openapi({ format: 'date', example: '2026-01-31' });

// contracts' timeZoneSchema is plain zod, made before @hono/zod-openapi extends it (no `.openapi()`):
// wrapped in this module's `z`, validating the very same.
export const timeZoneField = z
  .string()
  .refine((name) => timeZoneSchema.safeParse(name).success, 'an IANA time zone such as Europe/Paris or UTC');

export const usageQuery = z.strictObject({
  from: day.optional().openapi({
    description: `First day, in the answer's time zone. Default: ${DEFAULT_USAGE_RANGE_DAYS - 1} days before \`to\``,
  }),
  to: day
    .optional()
    .openapi({ description: "Last day, included, in the answer's time zone. Default: today there" }),
  keyId: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .openapi({ description: 'One key of the account; default: all of them' }),
  granularity: z
    .enum(['hour', 'day', 'month'])
    .optional()
    .openapi({
      description: `The cells: \`hour\` (at most ${MAX_CELLS.hour} cells, 31 days), \`day\` (default; at most ${MAX_CELLS.day}), \`month\` (at most ${MAX_CELLS.month}; the first and last clipped to the window)`,
    }),
  tz: timeZoneField.optional().openapi({
    description:
      "An IANA time zone (`Asia/Tokyo`): days are its local days, DST included. Default: the account's zone (PATCH /me), else the deployment's. Exact in whole-hour zones; in :30/:45 zones the answer is `rounded`",
    example: 'Europe/Paris',
  }),
  groupBy: z.enum(['route', 'key']).optional().openapi({
    description:
      '`key`: every key of the account with its series, largest total first; `route`: one series per route and method (UTC days only)',
  }),
  include: z.enum(['refusals']).optional().openapi({
    description:
      '`refusals`: the requests the gate refused (429 `rate_limited`, 429 `quota_exceeded`, 403 `account_suspended`) per cell and per key — never billed, never in `total`; written every few seconds per gate container',
  }),
  format: z.enum(['json', 'csv']).optional().openapi({
    description: '`csv`: the same numbers as CSV with a header row (also `Accept: text/csv`)',
  }),
});

const dayCount = z.object({ date: z.string().openapi({ format: 'date' }), count: z.number().int() });

const cell = z.object({
  start: z.string().openapi({
    description: "The cell's first instant, local time with the zone's offset",
    example: '2026-12-07T00:00:00+09:00',
  }),
  count: z.number().int(),
});

const refusalCounts = {
  rate_limited: z.number().int(),
  quota_exceeded: z.number().int(),
  account_suspended: z.number().int(),
};

const refusals = z
  .object({
    total: z.object(refusalCounts),
    series: z.array(z.object({ start: z.string(), ...refusalCounts })),
  })
  .openapi('Refusals');

export const usageAnswer = z
  .object({
    from: z.string().openapi({ format: 'date' }),
    to: z.string().openapi({ format: 'date' }),
    tz: z.string().openapi({ description: "The answer's time zone" }),
    granularity: z.enum(['hour', 'day', 'month']),
    keyId: z.string().optional(),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
    total: z.number().int(),
    series: z.array(cell).openapi({ description: 'Every cell of the window, zeros included' }),
    days: z
      .array(dayCount)
      .optional()
      .openapi({ description: 'With granularity `day`: the series by local date' }),
    rounded: z.literal(true).optional().openapi({
      description:
        'Some cell edge cuts a UTC hour (a :30/:45 zone, or usage counted before hours were recorded): the hours at the edges are placed by their middle',
    }),
    refusals: refusals.optional().openapi({ description: 'With `include=refusals`: not billed' }),
    keys: z
      .array(
        z.object({
          keyId: z.string(),
          name: z.string().optional(),
          total: z.number().int(),
          series: z.array(cell),
          refusals: refusals.optional(),
        }),
      )
      .optional()
      .openapi({ description: 'With `groupBy=key`: every key of the account, largest total first' }),
    routes: z
      .array(
        z.object({
          route: z.string().openapi({ description: 'The route template; `*` for requests without one' }),
          method: z.string().openapi({ description: 'The HTTP method; `*` for requests without one' }),
          total: z.number().int(),
          series: z.array(cell),
          days: z.array(dayCount).optional(),
        }),
      )
      .optional()
      .openapi({
        description: 'With `groupBy=route`: routes by total, largest first, then by method and route',
      }),
  })
  .openapi('Usage');

export const csvBody = {
  'text/csv': { schema: z.string().openapi({ example: 'start,count\r\n2026-12-07T00:00:00Z,42\r\n' }) },
};

const getUsage = createRoute({
  method: 'get',
  path: '/',
  tags: ['Usage'],
  summary: 'Requests counted, per hour, day or month, in a time zone',
  description:
    'Every cell of the window, zeros included. `groupBy=key` splits by key, `groupBy=route` by route; CSV with `format=csv` or `Accept: text/csv`.',
  security: requiresIdToken,
  request: { query: usageQuery },
  responses: {
    200: {
      description: '`Usage`, or its CSV',
      content: { 'application/json': { schema: usageAnswer }, ...csvBody },
    },
    ...errorResponses(400, 404),
  },
});

/** The answer as the request asks for it: CSV with format=csv or an Accept that prefers text/csv, else JSON. */
export function respondUsage(c: Context, answer: UsageAnswer, format: 'json' | 'csv' | undefined) {
  if (!wantsCsv(format, c.req.header('accept'))) return c.json(answer, 200);
  return c.body(usageCsv(answer), 200, csvHeaders(`usage-${answer.from}-${answer.to}.csv`));
}

export function usageRoutes(deps: UserApiDeps) {
  return router().openapi(getUsage, async (c) => {
    const { format, ...query } = c.req.valid('query');
    const answer = await answerUsage(deps, c.get('user').userId, query);
    return respondUsage(c, answer, format);
  });
}
