import { randomUUID } from 'node:crypto';
import type { KeyStore } from '../../services/accounts/key-store';

/**
 * A new account (`<prefix>-<uuid>`) opened as sign-up opens it, through the real KeyStore, and
 * `keyCount` more keys named k0, k1, …: the account also has its first key, as every account does.
 */
export async function accountWithKeys(
  keys: Pick<KeyStore, 'provisionAccount' | 'createKey'>,
  prefix: string,
  keyCount: number,
): Promise<{ accountId: string; keyIds: string[] }> {
  const accountId = `${prefix}-${randomUUID()}`;
  const now = new Date();
  await keys.provisionAccount({ accountId, email: `${accountId}@example.com`, userName: accountId, now });
  const keyIds: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    const created = await keys.createKey({ accountId, name: `k${i}`, now });
    if (!created.ok) throw new Error('createKey failed');
    keyIds.push(created.value.record.keyId);
  }
  return { accountId, keyIds };
}
