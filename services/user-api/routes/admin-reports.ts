import { createRoute, z } from '@hono/zod-openapi';
import { InvalidCursorError } from '../../accounts/account-directory';
import { type AccountMonth, daysOfMonth, type KeyMonth } from '../../usage/month-report';
import { csvHeaders, csvLine, wantsCsv } from '../csv';
import type { AdminReports, UserApiDeps } from '../env';
import { notFound } from '../errors';
import {
  describedErrorResponses,
  json,
  type OperationHandler,
  requiresIdToken,
  router,
  timestamp,
} from '../openapi';
import { invalidQuery } from './admin-schemas';

/**
 * The owner's reports over every account for one UTC month (the quota's month): the accounts and
 * keys with the most requests, and each account's requests per day, as JSON or CSV (the owner's
 * own invoicing or finance report). Admins only, as every /admin route (app.ts). What the reads
 * cost: services/usage/month-report.ts.
 */

const tags = ['Admin'];
const adminOnly = 'Only for members of the Cognito group `admins`; anyone else gets 403 `forbidden`.';

export const DEFAULT_TOP = 10;
export const MAX_TOP = 100;
export const MAX_REPORT_PAGE = 1000;
/** The answer header that carries a CSV page's next cursor (the JSON has it as `next`). */
export const NEXT_CURSOR_HEADER = 'x-next-cursor';

const MONTH_PATTERN = /^\d{4}-(0[1-9]|1[0-2])$/;

const month = z.string().regex(MONTH_PATTERN, 'a month as YYYY-MM').optional().openapi({
  description: 'A UTC month (the quota period `month`). Default: the current one',
  example: '2026-12',
});

const topQuery = z.strictObject({
  month,
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_TOP)
    .default(DEFAULT_TOP)
    .openapi({ description: `How many accounts, and how many keys, at most ${MAX_TOP}` }),
});

const reportQuery = z.strictObject({
  month,
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_REPORT_PAGE)
    .default(MAX_REPORT_PAGE)
    .openapi({ description: `Accounts per page, at most ${MAX_REPORT_PAGE} (about 31,000 CSV rows)` }),
  cursor: z
    .string()
    .min(1)
    .max(512)
    .optional()
    .openapi({
      description: `The previous page's \`next\` (JSON) or \`${NEXT_CURSOR_HEADER}\` header (CSV)`,
    }),
  format: z.enum(['json', 'csv']).optional().openapi({
    description: '`csv`: the same numbers as CSV with a header row (also `Accept: text/csv`)',
  }),
});

const topUsage = z
  .object({
    month: z.string().openapi({ example: '2026-12' }),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
    accounts: z
      .array(z.object({ accountId: z.string(), email: z.string(), requests: z.number().int() }))
      .openapi({ description: 'Accounts with requests in the month, most first (ties by account id)' }),
    keys: z
      .array(
        z.object({
          accountId: z.string(),
          email: z.string(),
          keyId: z.string(),
          name: z.string().optional(),
          requests: z.number().int(),
        }),
      )
      .openapi({ description: 'Keys with requests in the month, most first (ties by account id, key id)' }),
  })
  .openapi('AdminTopUsage');

const accountsUsage = z
  .object({
    month: z.string().openapi({ example: '2026-12' }),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
    accounts: z
      .array(
        z.object({
          accountId: z.string(),
          email: z.string(),
          total: z.number().int().openapi({ description: "The month's requests: the sum of `days`" }),
          days: z
            .array(z.object({ date: z.string().openapi({ format: 'date' }), count: z.number().int() }))
            .openapi({ description: 'Every UTC day of the month, zeros included' }),
        }),
      )
      .openapi({ description: 'Every account of this page, by email address' }),
    next: z
      .string()
      .optional()
      .openapi({ description: 'Pass as `cursor` for the next page; absent on the last' }),
  })
  .openapi('AdminAccountsUsage');

const notConfigured = { 404: 'The reports are not configured in this deployment' };

const getTop = createRoute({
  method: 'get',
  path: '/top',
  tags,
  summary: 'The accounts and keys with the most requests in a month',
  description: `${adminOnly} Reads every account's month (one item each, 100 per BatchGetItem) and the day counters of the largest accounts only, as many as it takes to know the top keys exactly.`,
  security: requiresIdToken,
  request: { query: topQuery },
  responses: {
    200: json(topUsage, 'The top accounts and keys'),
    ...describedErrorResponses(notConfigured, 400, 403, 404),
  },
});

const csvBody = {
  'text/csv': {
    schema: z.string().openapi({
      example: 'accountId,email,date,requests\r\n3f1c9a2e-…,ada@example.com,2026-12-01,42\r\n',
    }),
  },
};

const getAccountsUsage = createRoute({
  method: 'get',
  path: '/accounts',
  tags,
  summary: "Every account's requests per day of a month, as JSON or CSV",
  description: `${adminOnly} A page of accounts by email address, each with every UTC day of the month. CSV (\`format=csv\` or \`Accept: text/csv\`): a header row \`accountId,email,date,requests\`, then one row per account per day, the JSON's numbers exactly; the next page's cursor is in the \`${NEXT_CURSOR_HEADER}\` header.`,
  security: requiresIdToken,
  request: { query: reportQuery },
  responses: {
    200: {
      description: '`AdminAccountsUsage`, or its CSV',
      content: { ...json(accountsUsage, '').content, ...csvBody },
    },
    ...describedErrorResponses(notConfigured, 400, 403, 404),
  },
});

export function adminReportRoutes(deps: UserApiDeps) {
  return router().openapi(getTop, topHandler(deps)).openapi(getAccountsUsage, accountsUsageHandler(deps));
}

function reportsOf(deps: UserApiDeps): AdminReports {
  if (!deps.adminReports) throw notFound('report');
  return deps.adminReports;
}

const currentMonth = (now: Date) => now.toISOString().slice(0, 7);

/** Every account's month, reading the directory a page at a time. */
async function everyAccountMonth(
  reports: AdminReports,
  month: string,
): Promise<{ months: AccountMonth[]; emails: Map<string, string> }> {
  const emails = new Map<string, string>();
  const months: AccountMonth[] = [];
  for await (const page of reports.directory.all()) {
    for (const account of page) emails.set(account.accountId, account.email);
    const read = await reports.months.accountMonths(
      page.map((a) => a.accountId),
      month,
      { days: [] },
    );
    months.push(...read.values());
  }
  return { months, emails };
}

function topHandler(deps: UserApiDeps): OperationHandler<typeof getTop> {
  return async (c) => {
    const reports = reportsOf(deps);
    const query = c.req.valid('query');
    const asOf = deps.clock.now();
    const month = query.month ?? currentMonth(asOf);
    const { months, emails } = await everyAccountMonth(reports, month);
    const accounts = months
      .filter((m) => m.requests > 0)
      .sort((a, b) => b.requests - a.requests || compare(a.accountId, b.accountId))
      .slice(0, query.limit);
    const keys = await reports.months.topKeys(months, month, query.limit);
    const named = await Promise.all(keys.map((key) => withName(deps, key)));
    return c.json(
      {
        month,
        asOf: asOf.toISOString(),
        accounts: accounts.map((a) => ({
          accountId: a.accountId,
          email: emails.get(a.accountId) ?? '',
          requests: a.requests,
        })),
        keys: named.map((key) => ({ ...key, email: emails.get(key.accountId) ?? '' })),
      },
      200,
    );
  };
}

async function withName(deps: UserApiDeps, key: KeyMonth): Promise<KeyMonth & { name?: string }> {
  const record = await deps.store.getKey(key.accountId, key.keyId);
  return record?.name ? { ...key, name: record.name } : key;
}

function accountsUsageHandler(deps: UserApiDeps): OperationHandler<typeof getAccountsUsage> {
  return async (c) => {
    const reports = reportsOf(deps);
    const { format, limit, cursor, ...query } = c.req.valid('query');
    const asOf = deps.clock.now();
    const month = query.month ?? currentMonth(asOf);
    const page = await reports.directory
      .page({ limit, ...(cursor ? { cursor } : {}) })
      .catch((error: unknown) => {
        if (error instanceof InvalidCursorError) throw invalidQuery('cursor', 'not a `next` of this report');
        throw error;
      });
    const read = await reports.months.accountMonths(
      page.accounts.map((a) => a.accountId),
      month,
    );
    const days = daysOfMonth(month);
    const answer = {
      month,
      asOf: asOf.toISOString(),
      accounts: page.accounts.map((account) => {
        const m = read.get(account.accountId);
        return {
          accountId: account.accountId,
          email: account.email,
          total: m?.requests ?? 0,
          days: days.map((date) => ({ date, count: m?.days.get(date) ?? 0 })),
        };
      }),
      ...(page.next ? { next: page.next } : {}),
    };
    if (!wantsCsv(format, c.req.header('accept'))) return c.json(answer, 200);
    // The CSV is the JSON's numbers: the route declares both bodies, Hono's types only the JSON.
    return c.body(accountsCsv(answer.accounts), 200, {
      ...csvHeaders(`accounts-usage-${month}.csv`),
      ...(page.next ? { [NEXT_CURSOR_HEADER]: page.next } : {}),
    }) as never;
  };
}

/** One row per account per day (`accountId,email,date,requests`) after a header row, as RFC 4180 lines. */
export function accountsCsv(
  accounts: ReadonlyArray<{
    accountId: string;
    email: string;
    days: ReadonlyArray<{ date: string; count: number }>;
  }>,
): string {
  const rows = accounts.flatMap((a) => a.days.map((d) => csvLine([a.accountId, a.email, d.date, d.count])));
  return csvLine(['accountId', 'email', 'date', 'requests']) + rows.join('');
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
