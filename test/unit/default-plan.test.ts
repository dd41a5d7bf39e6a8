import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PLAN_ID,
  DEFAULT_PLAN_MAX_KEYS,
  type Plan,
  planBodySchema,
  SHIPPED_DEFAULT_PLAN,
} from '../../contracts/plans';
import { PlanStore } from '../../services/accounts/plan-store';

// What a new sign-up is held to before the owner has saved any plan (issue 21: one account held 51
// live keys, and a per-key rate limit multiplied with each), and the rate limit's default scope.

/** PlanStore over a table holding `saved` (GetItem by planId, and the accounts' standing). */
function storeWith(saved: Plan[], accounts: Record<string, Record<string, unknown>> = {}) {
  const client = {
    async send(command: {
      constructor: { name: string };
      input: { TableName: string; Key: Record<string, string> };
    }) {
      if (command.constructor.name !== 'GetCommand')
        throw new Error(`not in this fake: ${command.constructor.name}`);
      const { TableName, Key } = command.input;
      if (TableName === 'plans') return { Item: saved.find((p) => p.planId === Key.planId) };
      return { Item: accounts[Key.accountId ?? ''] };
    },
  };
  return new PlanStore({
    client: client as unknown as DynamoDBDocumentClient,
    plansTable: 'plans',
    accountsTable: 'accounts',
  });
}

describe('the default plan as shipped', () => {
  it('caps live keys at 25 and sells no rate limit or quota', () => {
    expect(DEFAULT_PLAN_MAX_KEYS).toBe(25);
    expect(SHIPPED_DEFAULT_PLAN).toEqual({ planId: DEFAULT_PLAN_ID, name: 'Default', maxKeys: 25 });
    // It is a plan the admin API could have saved.
    const { planId: _, ...body } = SHIPPED_DEFAULT_PLAN;
    expect(planBodySchema.parse(body)).toEqual(body);
  });

  it('is what PlanStore reads for the default plan while the owner never saved one, for every account on it', async () => {
    const store = storeWith([], { acc_new: { accountId: 'acc_new' } });
    expect(await store.getPlan(DEFAULT_PLAN_ID)).toEqual(SHIPPED_DEFAULT_PLAN);
    expect((await store.accountPlan('acc_new'))?.plan?.maxKeys).toBe(25);
    // Any other plan that does not exist is still none.
    expect(await store.getPlan('gone')).toBeUndefined();
  });

  it("gives way to the owner's own default plan, whatever it says (configurable: PUT /admin/plans/default)", async () => {
    const owners: Plan = {
      planId: DEFAULT_PLAN_ID,
      name: 'Free',
      maxKeys: 3,
      updatedAt: '2026-12-01T00:00:00.000Z',
    };
    expect(await storeWith([owners]).getPlan(DEFAULT_PLAN_ID)).toEqual(owners);
    const uncapped: Plan = { planId: DEFAULT_PLAN_ID, name: 'Open', updatedAt: '2026-12-01T00:00:00.000Z' };
    expect((await storeWith([uncapped]).getPlan(DEFAULT_PLAN_ID))?.maxKeys).toBeUndefined();
  });
});

describe('a rate limit', () => {
  it('is counted for the whole account unless the plan says per key', () => {
    const parse = (rateLimit: unknown) => planBodySchema.parse({ name: 'p', rateLimit }).rateLimit;
    expect(parse({ requests: 10, perSeconds: 1 })).toEqual({ requests: 10, perSeconds: 1, scope: 'account' });
    expect(parse({ requests: 10, perSeconds: 1, scope: 'key' })?.scope).toBe('key');
  });
});
