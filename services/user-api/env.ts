import type { Logger } from '@aws-lambda-powertools/logger';
import type { AccountDirectory } from '../accounts/account-directory';
import type { KeyStore } from '../accounts/key-store';
import type { PlanStore } from '../accounts/plan-store';
import type { BillingApi } from '../billing/api';
import type { Clock } from '../platform/clock';
import type { MetricsRecorder } from '../platform/metrics';
import type { MonthReport } from '../usage/month-report';
import type { RefusalReader } from '../usage/refusals';
import type { UsageReader } from '../usage/usage-reader';
import type { AuthenticatedUser, TokenVerifier } from './token-verifier';

/** What the routes do with accounts and keys (KeyStore in every deployment). */
export type UserApiKeyStore = Pick<
  KeyStore,
  | 'getAccount'
  | 'provisionAccount'
  | 'listKeys'
  | 'getKey'
  | 'createKey'
  | 'revealKey'
  | 'rollKey'
  | 'revokeKey'
  | 'setTimeZone'
>;

/** What the routes read of metering's counters (UsageReader in every deployment). */
export type UserApiUsageReader = Pick<
  UsageReader,
  'keyTotals' | 'dailyCounts' | 'routeDailyCounts' | 'hourlyCounts' | 'total' | 'usedInPeriod'
>;

/** Plans and each account's plan and status: the admin routes, and the key limit (PlanStore). */
export type UserApiPlanStore = Pick<
  PlanStore,
  | 'getPlan'
  | 'listPlans'
  | 'putPlan'
  | 'standing'
  | 'accountPlan'
  | 'assignPlan'
  | 'setStatus'
  | 'listAccounts'
>;

/** The account directory and the usage table's month reads the admin's reports are made of. */
export interface AdminReports {
  directory: Pick<AccountDirectory, 'page' | 'all'>;
  months: Pick<MonthReport, 'accountMonths' | 'topKeys'>;
}

export interface UserApiDeps {
  store: UserApiKeyStore;
  usage: UserApiUsageReader;
  /**
   * The gate's refusals per key and hour (GET /usage?include=refusals).
   * @default - none recorded: include=refusals answers zeros
   */
  refusals?: Pick<RefusalReader, 'refusals'>;
  plans: UserApiPlanStore;
  verifier: TokenVerifier;
  clock: Clock;
  logger: Logger;
  /** Browser origins allowed by CORS; any other origin gets no CORS headers. */
  allowedOrigins: readonly string[];
  /** How long a rolled key keeps working unless the request asks for less. */
  rollGraceMs: number;
  /**
   * How recent the caller's sign-in (`auth_time`) must be to mint a secret: create, reveal, roll
   * (contracts/config.ts DEFAULT_SIGN_IN_MAX_AGE_MS says why 15 minutes).
   */
  signInMaxAgeMs: number;
  /**
   * Usage answers' time zone for an account that has not chosen one (TOLLGATE_TIMEZONE).
   * @default 'UTC'
   */
  defaultTimeZone?: string;
  /**
   * Where failures are counted (UserApiMetric): only failures are recorded, so a recorder that
   * writes each one at once costs nothing on the routine path (compose.ts).
   * @default - nothing is recorded
   */
  metrics?: MetricsRecorder;
  /**
   * The admin's reports over every account (routes/admin-reports.ts), and the account list's usage
   * read in one BatchGetItem per page.
   * @default - the reports answer 404 `not_found`; the list reads each account's usage by itself
   */
  adminReports?: AdminReports;
  /**
   * Checkout, the customer portal and the billing summary (routes/billing.ts).
   * @default - billing is not configured: its routes answer 404 `not_found`
   */
  billing?: BillingApi;
}

export interface UserApiEnv {
  Variables: { user: AuthenticatedUser };
}
