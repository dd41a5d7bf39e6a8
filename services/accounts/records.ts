/**
 * The records of the accounts and keys tables and the rules over them (a key's status as its
 * owner and the gate see it, which keys count as live). Only services/accounts/ writes them.
 */

/**
 * Stored status of a key.
 *  - pending: provisioned at sign-up; its secret is minted the first time its owner reveals it,
 *    so no secret exists anywhere before it reaches its owner.
 *  - active: works.
 *  - expiring: rolled; works until `expiresAt` (the grace period), then counts as expired.
 *  - revoked: refused.
 */
export type StoredKeyStatus = 'pending' | 'active' | 'expiring' | 'revoked';
/** What owners and key-api see: an expiring key past its grace period is `expired`. */
export type KeyStatus = StoredKeyStatus | 'expired';

export interface KeyRecord {
  accountId: string;
  keyId: string;
  name: string;
  /** The first characters of the key, for display; absent until a pending key is revealed. */
  start?: string;
  keyHash?: string;
  status: StoredKeyStatus;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  /** Set on a rolled key: the key that replaced it. */
  replacedBy?: string;
  /** Set on a key made by a roll: the key it replaced (whose grace a further roll ends). */
  replaces?: string;
}

export interface AccountRecord {
  accountId: string;
  email: string;
  userName: string;
  createdAt: string;
  firstKeyId: string;
  /**
   * Bumped by every write that adds a live key (a creation, a roll), under a condition on its
   * previous value when the account's plan limits its keys: the optimistic lock that makes the
   * limit exact under concurrent writes. Absent until the first such write.
   */
  keysVersion?: number;
  /** The owner's time zone (IANA name) for usage answers; absent: the deployment's default. */
  timeZone?: string;
}

/** What the accounts table knows of an account's owner: whom its alerts are addressed to. */
export interface AccountOwner {
  readonly accountId: string;
  /** The Cognito user name the account was provisioned for. */
  readonly userName?: string;
  /** The address verified at sign-up. */
  readonly email?: string;
}

/** The part of a key record key-api needs, as the KeyLookup index projects it. */
export interface KeyLookupRecord {
  accountId: string;
  keyId: string;
  status: StoredKeyStatus;
  expiresAt?: string;
}

export function effectiveStatus(key: Pick<KeyRecord, 'status' | 'expiresAt'>, now: Date): KeyStatus {
  if (
    key.status === 'expiring' &&
    key.expiresAt !== undefined &&
    Date.parse(key.expiresAt) <= now.getTime()
  ) {
    return 'expired';
  }
  return key.status;
}

/**
 * Live keys are the ones that work or will: active, pending, and expiring within their grace.
 * What a plan's `maxKeys` counts.
 */
export function isLiveKey(key: Pick<KeyRecord, 'status' | 'expiresAt'>, now: Date): boolean {
  const status = effectiveStatus(key, now);
  return status === 'active' || status === 'pending' || status === 'expiring';
}

export type KeyMutationResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'conflict'; status: KeyStatus }
  /** The write would take the account past `limit` live keys; it holds `live` now. */
  | { ok: false; reason: 'key_limit'; limit: number; live: number };

export const FIRST_KEY_NAME = 'default';

/**
 * The id first keys had before issue 21: derived from the account, so anyone who knew an account
 * id could name a key it holds (and forge usage that passes metering's provenance check). First
 * keys are now random like every other; accounts provisioned before keep theirs, and metering still
 * recognises another account's one by this form.
 */
export function legacyFirstKeyId(accountId: string): string {
  return `key_first_${accountId.replaceAll(/[^A-Za-z0-9]/g, '')}`;
}
