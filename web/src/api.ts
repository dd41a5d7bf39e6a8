import { type ClientResponse, hc, type InferRequestType } from 'hono/client';
import type { SuccessStatusCode } from 'hono/utils/http-status';
import { ERROR_CODES, type ErrorCode, errorBodySchema } from '../../contracts/errors';
// Type only: the client is checked against the API's routes, and no server code is bundled.
import type { AppType } from '../../services/user-api/app';

/** The user API answered with an error (contracts/errors.ts), or with what the page cannot read. */
export class ApiError extends Error {
  override readonly name: string = 'ApiError';
  constructor(
    readonly status: number,
    /** Undefined when the answer had no error body, or a code this build does not know (a newer server). */
    readonly code: ErrorCode | undefined,
    message: string,
  ) {
    super(message);
  }
}

const isErrorCode = (code: string): code is ErrorCode => (ERROR_CODES as readonly string[]).includes(code);

/**
 * An answer's error (contracts/errors.ts), read with the shared schema: its code when this build
 * knows it, and its message; undefined when the body is not an error body.
 */
export function readError(body: unknown): { code: ErrorCode | undefined; message: string } | undefined {
  const parsed = errorBodySchema.safeParse(body);
  if (!parsed.success) return undefined;
  const { code, message } = parsed.data.error;
  return { code: isErrorCode(code) ? code : undefined, message };
}

/**
 * The token is fine, but minting a key (create, reveal, roll) needs a more recent sign-in (401
 * `reauthentication_required`): the page asks the user to sign in again, then retries once.
 */
export class ReauthenticationRequiredError extends ApiError {
  override readonly name = 'ReauthenticationRequiredError';
  constructor(message: string) {
    super(401, 'reauthentication_required', message);
  }
}

/** The API could not be reached at all (down, wrong URL, offline, CORS refused). */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

/** There is no usable session any more (tokens gone, refresh refused, or the API said 401). */
export class SessionExpiredError extends Error {
  override readonly name = 'SessionExpiredError';
  constructor(options?: { cause?: unknown }) {
    super('Your session has ended. Sign in again to continue.', options);
  }
}

/** What a call answers when it succeeds: the API also declares its error answers, which `call` throws. */
type Body<R> =
  R extends ClientResponse<infer B, infer S, infer _F> ? (S extends SuccessStatusCode ? B : never) : never;

/** Sends one request and turns every way it can fail into one of the errors above. */
async function call<R extends ClientResponse<unknown, number, string>>(
  baseUrl: string,
  send: () => Promise<R>,
): Promise<Body<R>> {
  return (await (await succeeded(baseUrl, send)).json()) as Body<R>;
}

/** The answer of one request when it succeeded; every way it can fail is one of the errors above. */
async function succeeded<R extends ClientResponse<unknown, number, string>>(
  baseUrl: string,
  send: () => Promise<R>,
): Promise<R> {
  let response: R;
  try {
    response = await send();
  } catch (error) {
    if (error instanceof SessionExpiredError) throw error;
    throw new NetworkError(`Could not reach the Tollgate API at ${baseUrl}.`, { cause: error });
  }
  if (response.status === 401) {
    // Only this 401 keeps the session: the token is valid, just too old to mint a secret.
    const error = readError(await response.json().catch(() => undefined));
    if (error?.code === 'reauthentication_required') throw new ReauthenticationRequiredError(error.message);
    throw new SessionExpiredError();
  }
  if (!response.ok) {
    const error = readError(await response.json().catch(() => undefined));
    throw new ApiError(response.status, error?.code, error?.message ?? `The API answered ${response.status}`);
  }
  return response;
}

/**
 * The user API as the page uses it: typed from the server's routes (`hc<AppType>`), with the
 * signed-in user's ID token on every request.
 */
export function createUserApi(baseUrl: string, idToken: () => Promise<string>) {
  const client = hc<AppType>(baseUrl, {
    headers: async () => ({ authorization: `Bearer ${await idToken()}` }),
  });
  const admin = client.admin;
  return {
    me: () => call(baseUrl, () => client.me.$get()),
    /** Sets the account's time zone (IANA), in which usage is answered unless a query names another. */
    setTimeZone: (timeZone: string) => call(baseUrl, () => client.me.$patch({ json: { timeZone } })),
    /** The account's plan and what is used and left of each of its limits. */
    myPlan: () => call(baseUrl, () => client.me.plan.$get()),
    listKeys: () => call(baseUrl, () => client.keys.$get()),
    createKey: (name?: string) => call(baseUrl, () => client.keys.$post({ json: name ? { name } : {} })),
    revealKey: (id: string) => call(baseUrl, () => client.keys[':id'].reveal.$post({ param: { id } })),
    rollKey: (id: string, gracePeriodSeconds?: number) =>
      call(baseUrl, () =>
        client.keys[':id'].roll.$post({
          param: { id },
          json: gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds },
        }),
      ),
    revokeKey: (id: string) => call(baseUrl, () => client.keys[':id'].$delete({ param: { id } })),
    /**
     * `GET /usage`: the account's (or one key's) usage over a window of local days in a time zone
     * (the account's unless `tz` names one), per hour, day or month. `groupBy` splits it by key or
     * by route; `include: 'refusals'` adds what the gate refused, which is never billed.
     */
    usage: async (query: UsageQuery) => {
      const answer = await call(baseUrl, () => client.usage.$get({ query }));
      // The route declares its JSON and its CSV as one answer; without `format=csv` it is the JSON.
      if (typeof answer === 'string' || answer instanceof Response || !('series' in answer)) {
        throw new ApiError(200, undefined, 'The API answered usage without its series.');
      }
      return answer;
    },
    /** The same query as CSV (`format=csv`): a header row, then the JSON answer's numbers, cell by cell. */
    usageCsv: async (query: UsageQuery): Promise<string> =>
      (await succeeded(baseUrl, () => client.usage.$get({ query: { ...query, format: 'csv' } }))).text(),
    /** Self-serve billing; every call answers 404 `not_found` where billing is not configured. */
    billing: {
      /** The account's subscription, and billed against metered this period. */
      summary: () => call(baseUrl, () => client.me.billing.$get()),
      /** The plans with a Stripe price: what can be bought. */
      plansForSale: () => call(baseUrl, () => client.billing.plans.$get()),
      /** A Stripe Checkout Session for the plan: the page then goes to its `url`. */
      checkout: (planId: string) => call(baseUrl, () => client.billing.checkout.$post({ json: { planId } })),
      /** Stripe's customer portal: the page then goes to its `url`. */
      portal: () => call(baseUrl, () => client.billing.portal.$post()),
    },
    /** The owner's admins only (the API answers anyone else 403). */
    admin: {
      /** One page of accounts; `cursor` is the previous page's `next`. */
      /** One page of accounts by email (`sort`), or of those a search (`q`: email prefix or account id) finds. */
      listAccounts: (query: AdminAccountsQuery = {}) => call(baseUrl, () => admin.accounts.$get({ query })),
      /** The accounts and keys with the most requests in a UTC month (`yyyy-mm`; default this one). */
      topUsage: (month?: string) =>
        call(baseUrl, () => admin.usage.top.$get({ query: month ? { month } : {} })),
      /**
       * Every account's requests per day of a month as one CSV (`accountId,email,date,requests`):
       * the report's pages, one header row.
       */
      accountsUsageCsv: async (month: string): Promise<string> => {
        let csv = '';
        let cursor: string | undefined;
        do {
          const query = { month, format: 'csv' as const, ...(cursor ? { cursor } : {}) };
          const response = await succeeded(baseUrl, () => admin.usage.accounts.$get({ query }));
          const text = await response.text();
          csv += csv === '' ? text : text.slice(text.indexOf('\r\n') + 2);
          cursor = response.headers.get('x-next-cursor') ?? undefined;
        } while (cursor);
        return csv;
      },
      listPlans: () => call(baseUrl, () => admin.plans.$get()),
      /** Creates or replaces a plan as a whole. */
      putPlan: (planId: string, plan: PlanRequest) =>
        call(baseUrl, () => admin.plans[':planId'].$put({ param: { planId }, json: plan })),
      assignPlan: (accountId: string, planId: string) =>
        call(baseUrl, () =>
          admin.accounts[':accountId'].plan.$put({ param: { accountId }, json: { planId } }),
        ),
      suspend: (accountId: string) =>
        call(baseUrl, () => admin.accounts[':accountId'].suspend.$post({ param: { accountId } })),
      resume: (accountId: string) =>
        call(baseUrl, () => admin.accounts[':accountId'].resume.$post({ param: { accountId } })),
    },
  };
}

type AdminClient = ReturnType<typeof hc<AppType>>['admin'];
type UsageClient = ReturnType<typeof hc<AppType>>['usage'];
/** What `GET /usage` is asked (its CSV is `UserApi['usageCsv']`). */
export type UsageQuery = Omit<NonNullable<InferRequestType<UsageClient['$get']>['query']>, 'format'>;
/** What `GET /admin/accounts` is asked: `cursor`, `sort`, `q`, `limit`. */
export type AdminAccountsQuery = NonNullable<InferRequestType<AdminClient['accounts']['$get']>['query']>;
/** What `PUT /admin/plans/{planId}` takes: a plan as a whole. */
export type PlanRequest = InferRequestType<AdminClient['plans'][':planId']['$put']>['json'];

export type UserApi = ReturnType<typeof createUserApi>;
export type Me = Awaited<ReturnType<UserApi['me']>>;
export type MyPlan = Awaited<ReturnType<UserApi['myPlan']>>;
export type AdminAccount = Awaited<ReturnType<UserApi['admin']['listAccounts']>>['accounts'][number];
export type AdminPlan = Awaited<ReturnType<UserApi['admin']['listPlans']>>['plans'][number];
export type AdminTopUsage = Awaited<ReturnType<UserApi['admin']['topUsage']>>;
export type MyBilling = Awaited<ReturnType<UserApi['billing']['summary']>>;
export type PlanForSale = Awaited<ReturnType<UserApi['billing']['plansForSale']>>['plans'][number];
export type KeyView = Awaited<ReturnType<UserApi['listKeys']>>['keys'][number];
export type IssuedKey = Awaited<ReturnType<UserApi['createKey']>>;
export type RolledKey = Awaited<ReturnType<UserApi['rollKey']>>;
export type Usage = Awaited<ReturnType<UserApi['usage']>>;

/** What the key API answered to "try your key". */
export interface KeyApiAnswer {
  status: number;
  body: unknown;
  /** How long the round trip took, in ms. */
  elapsedMs: number;
}

/** Sends one request to the key API with `key`, as an API client would. */
export async function tryKey(keyApiUrl: string, key: string): Promise<KeyApiAnswer> {
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(keyApiUrl, { method: 'POST', headers: { 'x-api-key': key } });
  } catch (error) {
    throw new NetworkError(`Could not reach the key API at ${keyApiUrl}.`, { cause: error });
  }
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: shown as it came.
  }
  return { status: response.status, body, elapsedMs: Math.round(performance.now() - started) };
}

/** A sentence for any error the API calls can throw. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError || error instanceof NetworkError || error instanceof SessionExpiredError) {
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
