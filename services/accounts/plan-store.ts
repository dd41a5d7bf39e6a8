import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  type AccountStatus,
  DEFAULT_PLAN_ID,
  type Plan,
  type PlanBody,
  SHIPPED_DEFAULT_PLAN,
} from '../../contracts/plans';
import { callDynamo, isConditionFailure } from '../platform/dynamodb';
import { AccountDirectory, type AccountPage, type AccountPageQuery } from './account-directory';
import type { AccountOwner } from './records';

/** What the gate needs of an account: whether it may call, and under which plan. */
export interface AccountStanding {
  accountId: string;
  status: AccountStatus;
  /** The assigned plan, or DEFAULT_PLAN_ID when none is. */
  planId: string;
}

/**
 * The owner's plans (plans table) and each account's plan and status (attributes of its item in the
 * accounts table: `planId`, absent for the default plan, and `status`, absent for active).
 * Failures come by class as in KeyStore (services/platform/dynamodb.ts).
 */
export class PlanStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #plans: string;
  readonly #accounts: string;
  readonly #directory: AccountDirectory;

  constructor(options: { client: DynamoDBDocumentClient; plansTable: string; accountsTable: string }) {
    this.#db = options.client;
    this.#plans = options.plansTable;
    this.#accounts = options.accountsTable;
    this.#directory = new AccountDirectory(options);
  }

  /** A saved plan; the default plan, while the owner never saved one, is SHIPPED_DEFAULT_PLAN. */
  async getPlan(planId: string): Promise<Plan | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#plans, Key: { planId }, ConsistentRead: true })),
    );
    if (!out.Item && planId === DEFAULT_PLAN_ID) return SHIPPED_DEFAULT_PLAN;
    return out.Item as Plan | undefined;
  }

  /** Every plan, by id. Plans are few (an owner's price list), so one paginated Scan. */
  async listPlans(): Promise<Plan[]> {
    const plans: Plan[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await callDynamo(() =>
        this.#db.send(
          new ScanCommand({ TableName: this.#plans, ExclusiveStartKey: start, ConsistentRead: true }),
        ),
      );
      plans.push(...((page.Items ?? []) as Plan[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return plans.sort((a, b) => a.planId.localeCompare(b.planId));
  }

  /** Creates or replaces a plan as a whole (a PUT): what is not in `body` is no longer in the plan. */
  async putPlan(planId: string, body: PlanBody, now: Date): Promise<{ created: boolean; plan: Plan }> {
    const plan: Plan = { ...body, planId, updatedAt: now.toISOString() };
    const out = await callDynamo(() =>
      this.#db.send(new PutCommand({ TableName: this.#plans, Item: plan, ReturnValues: 'ALL_OLD' })),
    );
    return { created: out.Attributes === undefined, plan };
  }

  /**
   * @param options.consistent read strongly consistent (what an admin is answered after a change);
   *   eventually consistent by default, as the gate reads it
   * @returns undefined when there is no such account
   */
  async standing(
    accountId: string,
    options: { consistent?: boolean } = {},
  ): Promise<AccountStanding | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({
          TableName: this.#accounts,
          Key: { accountId },
          ProjectionExpression: 'accountId, planId, #status',
          ExpressionAttributeNames: { '#status': 'status' },
          ...(options.consistent ? { ConsistentRead: true } : {}),
        }),
      ),
    );
    return out.Item ? standingOf(out.Item) : undefined;
  }

  /**
   * An account's owner (sign-up address and user name) and plan id, eventually consistent: what a
   * quota alert is addressed by and measured against. Undefined when there is no such account.
   */
  async owner(accountId: string): Promise<{ owner: AccountOwner; planId: string } | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({
          TableName: this.#accounts,
          Key: { accountId },
          ProjectionExpression: 'email, planId, userName',
        }),
      ),
    );
    if (!out.Item) return undefined;
    const text = (name: string) =>
      typeof out.Item?.[name] === 'string' ? (out.Item[name] as string) : undefined;
    const email = text('email');
    const userName = text('userName');
    return {
      owner: { accountId, ...(email ? { email } : {}), ...(userName ? { userName } : {}) },
      planId: text('planId') ?? DEFAULT_PLAN_ID,
    };
  }

  /**
   * An account's standing and the plan it is on: undefined when there is no such account; `plan`
   * undefined when its assigned plan no longer exists (no limits), SHIPPED_DEFAULT_PLAN when it is
   * on the default plan and the owner never saved one.
   */
  async accountPlan(accountId: string): Promise<{ standing: AccountStanding; plan?: Plan } | undefined> {
    const standing = await this.standing(accountId);
    if (!standing) return undefined;
    const plan = await this.getPlan(standing.planId);
    return plan ? { standing, plan } : { standing };
  }

  /** Assigns a plan (DEFAULT_PLAN_ID clears the assignment). @returns false when there is no such account */
  async assignPlan(accountId: string, planId: string): Promise<boolean> {
    return this.#updateAccount(
      accountId,
      planId === DEFAULT_PLAN_ID
        ? { UpdateExpression: 'REMOVE planId' }
        : { UpdateExpression: 'SET planId = :p', ExpressionAttributeValues: { ':p': planId } },
    );
  }

  /** Suspends or resumes an account. Its keys and usage are untouched. @returns false when there is no such account */
  async setStatus(accountId: string, status: AccountStatus, now: Date): Promise<boolean> {
    return this.#updateAccount(accountId, {
      UpdateExpression: 'SET #status = :s, statusChangedAt = :now',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':s': status, ':now': now.toISOString() },
    });
  }

  /** One page of accounts by email, or of those a search finds (AccountDirectory.page). */
  listAccounts(query: AccountPageQuery): Promise<AccountPage> {
    return this.#directory.page(query);
  }

  async #updateAccount(
    accountId: string,
    update: {
      UpdateExpression: string;
      ExpressionAttributeNames?: Record<string, string>;
      ExpressionAttributeValues?: Record<string, unknown>;
    },
  ): Promise<boolean> {
    try {
      await callDynamo(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#accounts,
            Key: { accountId },
            ConditionExpression: 'attribute_exists(accountId)',
            ...update,
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}

function standingOf(item: Record<string, unknown>): AccountStanding {
  return {
    accountId: item.accountId as string,
    status: item.status === 'suspended' ? 'suspended' : 'active',
    planId: typeof item.planId === 'string' ? item.planId : DEFAULT_PLAN_ID,
  };
}
