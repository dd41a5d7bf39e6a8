import type { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { claimId } from '../../services/accounts/key-claims';
import { legacyFirstKeyId } from '../../services/accounts/records';
import { KeyProvenance } from '../../services/metering/provenance';
import { DependencyError } from '../../services/platform/errors';

type Key = { accountId: string; keyId: string };
interface Read {
  keys: Key[];
  consistent: boolean;
}

/**
 * A keys table whose eventually consistent reads lag: keys in `lagging` are seen only by consistent
 * reads (what a read replica behind a just-acknowledged write does; DynamoDB Local is always
 * consistent, so the integration tests cannot produce it).
 */
function table(keys: Key[], options: { lagging?: Key[]; unprocessedRounds?: number } = {}) {
  const reads: Read[] = [];
  let unprocessed = options.unprocessedRounds ?? 0;
  const has = (list: Key[], k: Key) => list.some((x) => x.accountId === k.accountId && x.keyId === k.keyId);
  const client = {
    send: async (command: BatchGetCommand) => {
      const [table, request] = Object.entries(command.input.RequestItems ?? {})[0] ?? [];
      const asked = (request?.Keys ?? []) as Key[];
      const consistent = request?.ConsistentRead === true;
      reads.push({ keys: asked, consistent });
      if (unprocessed-- > 0)
        return { Responses: { [table as string]: [] }, UnprocessedKeys: command.input.RequestItems };
      const visible = consistent ? [...keys, ...(options.lagging ?? [])] : keys;
      return { Responses: { [table as string]: asked.filter((k) => has(visible, k)) } };
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, reads };
}

const alice = { accountId: 'acc_alice', keyId: 'key_a1' };
const bob = { accountId: 'acc_bob', keyId: 'key_b1' };

describe('KeyProvenance', () => {
  it('reads a batch’s distinct pairs once, eventually consistent, and trusts what it found without reading again', async () => {
    const t = table([alice, bob]);
    const check = new KeyProvenance({ client: t.client, keysTable: 'keys' });
    const verdicts = await check.verify([alice, bob, alice, alice]);
    expect(verdicts.get(claimId(alice))).toBe('valid');
    expect(verdicts.get(claimId(bob))).toBe('valid');
    expect(t.reads).toEqual([{ keys: [alice, bob], consistent: false }]);
    await check.verify([alice, bob]);
    expect(t.reads).toHaveLength(1);
  });

  it('reads a miss again, strongly consistent, before believing it: a key created a moment ago counts', async () => {
    const fresh = { accountId: 'acc_bob', keyId: 'key_new' };
    const t = table([bob], { lagging: [fresh] });
    const check = new KeyProvenance({ client: t.client, keysTable: 'keys' });
    const verdicts = await check.verify([bob, fresh]);
    expect(verdicts.get(claimId(fresh))).toBe('valid');
    expect(t.reads).toEqual([
      { keys: [bob, fresh], consistent: false },
      { keys: [fresh], consistent: true },
    ]);
  });

  it('names a mismatch when the key is known to be another account’s, and caches a miss only briefly', async () => {
    const t = table([alice]);
    const check = new KeyProvenance({ client: t.client, keysTable: 'keys', negativeTtlMs: 1000 });
    const forged = { accountId: 'acc_bob', keyId: alice.keyId };
    const aliceFirst = { accountId: 'acc_bob', keyId: legacyFirstKeyId('acc_alice') };
    const nobody = { accountId: 'acc_bob', keyId: 'key_nobody' };
    expect((await check.verify([forged])).get(claimId(forged))).toBe('unknown_key'); // not seen yet
    await check.verify([alice]);
    const verdicts = await check.verify([forged, aliceFirst, nobody]);
    expect(verdicts.get(claimId(forged))).toBe('account_mismatch');
    expect(verdicts.get(claimId(aliceFirst))).toBe('account_mismatch');
    expect(verdicts.get(claimId(nobody))).toBe('unknown_key');
    const before = t.reads.length;
    await check.verify([forged]);
    expect(t.reads.length).toBe(before); // the miss is cached
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await check.verify([forged]);
    expect(t.reads.length).toBe(before + 2); // expired: read again (eventual, then consistent)
  });

  it('retries unprocessed keys, and gives up as unavailable, never as "not found"', async () => {
    const retried = table([alice], { unprocessedRounds: 2 });
    const ok = new KeyProvenance({ client: retried.client, keysTable: 'keys' });
    expect((await ok.verify([alice])).get(claimId(alice))).toBe('valid');
    expect(retried.reads).toHaveLength(3);

    const throttled = table([alice], { unprocessedRounds: 100 });
    const down = new KeyProvenance({ client: throttled.client, keysTable: 'keys' });
    await expect(down.verify([alice])).rejects.toBeInstanceOf(DependencyError);
  });
});
