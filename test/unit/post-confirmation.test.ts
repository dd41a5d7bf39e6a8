import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { KeyStore } from '../../services/accounts/key-store';
import { legacyFirstKeyId } from '../../services/accounts/records';
import { onPostConfirmation } from '../../services/auth-triggers/post-confirmation';
import { InvalidEventError } from '../../services/platform/errors';

// Validation happens before any store call; a store that throws proves it was never reached.
const unreachableStore = new Proxy({} as KeyStore, {
  get: () => () => {
    throw new Error('store must not be called');
  },
});
const deps = { store: unreachableStore, clock: { now: () => new Date() } };

describe('PostConfirmation trigger input', () => {
  it.each([
    ['nothing', undefined],
    ['a string', 'event'],
    ['no attributes', { triggerSource: 'PostConfirmation_ConfirmSignUp', userPoolId: 'p', userName: 'u' }],
    [
      'a bad email',
      {
        triggerSource: 'PostConfirmation_ConfirmSignUp',
        userPoolId: 'p',
        userName: 'u',
        request: { userAttributes: { sub: 's', email: 'not-an-email' } },
      },
    ],
    ['another trigger', { triggerSource: 'PreSignUp_SignUp', userPoolId: 'p', userName: 'u', request: {} }],
  ])('refuses %s with a named error', async (_, event) => {
    await expect(onPostConfirmation(event, deps)).rejects.toBeInstanceOf(InvalidEventError);
  });

  it('provisions nothing after a password reset confirmation', async () => {
    const event = {
      triggerSource: 'PostConfirmation_ConfirmForgotPassword',
      userPoolId: 'p',
      userName: 'u',
      request: { userAttributes: { sub: 's', email: 'a@example.com' } },
    };
    await expect(onPostConfirmation(event, deps)).resolves.toBe('not-a-sign-up');
  });
});

// The trigger over the real KeyStore and a table fake that applies the conditions KeyStore sends
// (attribute_not_exists on each Put, all or nothing): what the first key is called, and what a
// replayed trigger writes. The same against DynamoDB Local, with lost answers and concurrent
// triggers: test/integ/post-confirmation.integ.test.ts.
const ACCOUNTS = 'accounts';
const KEYS = 'keys';

function memoryTables() {
  const items = new Map<string, Record<string, unknown>>();
  const id = (table: string, item: Record<string, unknown>) =>
    table === ACCOUNTS ? `${table}|${item.accountId}` : `${table}|${item.accountId}|${item.keyId}`;
  const client = {
    async send(command: { constructor: { name: string }; input: Record<string, unknown> }) {
      const name = command.constructor.name;
      if (name === 'TransactWriteCommand') {
        const puts = (command.input.TransactItems as Array<{ Put: PutItem }>).map((t) => t.Put);
        for (const put of puts) {
          const keyName = put.TableName === ACCOUNTS ? 'accountId' : 'keyId';
          expect(put.ConditionExpression).toBe(`attribute_not_exists(${keyName})`);
        }
        const reasons = puts.map((p) => ({
          Code: items.has(id(p.TableName, p.Item)) ? 'ConditionalCheckFailed' : 'None',
        }));
        if (reasons.some((r) => r.Code !== 'None')) {
          throw Object.assign(new Error('Transaction cancelled'), {
            name: 'TransactionCanceledException',
            CancellationReasons: reasons,
          });
        }
        for (const put of puts) items.set(id(put.TableName, put.Item), structuredClone(put.Item));
        return {};
      }
      if (name === 'GetCommand') {
        const { TableName, Key } = command.input as { TableName: string; Key: Record<string, unknown> };
        return { Item: items.get(id(TableName, Key)) };
      }
      throw new Error(`not in this fake: ${name}`);
    },
  };
  const store = new KeyStore({
    client: client as unknown as DynamoDBDocumentClient,
    accountsTable: ACCOUNTS,
    keysTable: KEYS,
    keyPrefix: 'tg',
  });
  const rows = (table: string) => [...items].filter(([k]) => k.startsWith(`${table}|`)).map(([, v]) => v);
  return { store, accounts: () => rows(ACCOUNTS), keys: () => rows(KEYS) };
}
interface PutItem {
  TableName: string;
  Item: Record<string, unknown>;
  ConditionExpression?: string;
}

const signUp = (sub: string) => ({
  triggerSource: 'PostConfirmation_ConfirmSignUp',
  userPoolId: 'pool',
  userName: sub,
  request: { userAttributes: { sub, email: `${sub}@example.com` } },
});

describe('PostConfirmation provisioning', () => {
  it("names the first key at random, like every key: nobody can derive it from the account's id", async () => {
    const t = memoryTables();
    const subs = ['3f1c9a2e-0000-4000-8000-000000000001', '3f1c9a2e-0000-4000-8000-000000000002'];
    for (const sub of subs) {
      await expect(onPostConfirmation(signUp(sub), { store: t.store, clock: deps.clock })).resolves.toBe(
        'provisioned',
      );
    }
    const ids = t.accounts().map((a) => a.firstKeyId as string);
    expect(new Set(ids).size).toBe(2);
    for (const [i, keyId] of ids.entries()) {
      const sub = subs[i] as string;
      expect(keyId).toMatch(/^key_[0-9a-f]{32}$/);
      expect(keyId).not.toBe(legacyFirstKeyId(sub));
      expect(keyId).not.toContain(sub.replaceAll('-', '').slice(-12));
    }
    // Each account's one key is the one it names, pending (no secret exists before its owner asks).
    expect(t.keys().map((k) => [k.accountId, k.keyId, k.status])).toEqual(
      subs.map((sub, i) => [sub, ids[i], 'pending']),
    );
  });

  it('stays idempotent: a replayed trigger writes no second key and keeps the first id', async () => {
    const t = memoryTables();
    const sub = '3f1c9a2e-0000-4000-8000-00000000000a';
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++)
      outcomes.push(await onPostConfirmation(signUp(sub), { store: t.store, clock: deps.clock }));
    expect(outcomes).toEqual([
      'provisioned',
      'already-provisioned',
      'already-provisioned',
      'already-provisioned',
    ]);
    expect(t.accounts()).toHaveLength(1);
    expect(t.keys()).toHaveLength(1);
    expect(t.keys()[0]?.keyId).toBe(t.accounts()[0]?.firstKeyId);
  });
});
