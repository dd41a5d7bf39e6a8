import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API key format: `<prefix>_<random><checksum>`.
 *  - random: 16 bytes (128 bits) from the CSPRNG, base62, fixed 22 characters;
 *  - checksum: CRC-32 of `<prefix>_<random>`, base62, fixed 6 characters.
 * The checksum lets key-api refuse typos and guessed keys without a database read; it is not a
 * secret and adds no strength. Only SHA-256(key) is ever stored.
 */
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_BYTES = 16;
const RANDOM_CHARS = 22; // ceil(128 / log2(62))
const CHECKSUM_CHARS = 6; // 62^6 > 2^32
/** Characters of the random part kept in `start` so owners can tell keys apart. */
const START_CHARS = 4;

export const KEY_PREFIX_PATTERN = /^[a-z][a-z0-9]{1,15}$/;

// base-x and friends encode to variable length; a fixed width keeps the key shape checkable by a
// single length test, so this 10-line fixed-width encoder stays here.
function base62(value: bigint, width: number): string {
  let out = '';
  let rest = value;
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  return out;
}

/** The same digits as `base62` for a CRC-32 (< 2^32, exact in a double), without BigInt: it runs on every key check. */
function checksum(body: string): string {
  let out = '';
  let rest = crc32(body);
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[rest % 62] + out;
    rest = Math.floor(rest / 62);
  }
  return out;
}

/** 0-9, A-Z, a-z: the alphabet's characters, checked by code rather than by searching the alphabet. */
function isBase62Code(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

export interface NewApiKey {
  /** The secret. Shown to its owner once, never stored. */
  key: string;
  keyHash: string;
  start: string;
}

export function generateApiKey(prefix: string): NewApiKey {
  if (!KEY_PREFIX_PATTERN.test(prefix)) throw new RangeError(`invalid key prefix: ${prefix}`);
  const random = base62(BigInt(`0x${randomBytes(RANDOM_BYTES).toString('hex')}`), RANDOM_CHARS);
  const body = `${prefix}_${random}`;
  const key = `${body}${checksum(body)}`;
  return { key, keyHash: hashApiKey(key), start: keyStart(key, prefix) };
}

/** True when `key` has this deployment's prefix, the right shape, and a matching checksum. */
export function isWellFormedApiKey(key: string, prefix: string): boolean {
  const bodyLength = prefix.length + 1 + RANDOM_CHARS;
  if (key.length !== bodyLength + CHECKSUM_CHARS || !key.startsWith(`${prefix}_`)) return false;
  for (let i = prefix.length + 1; i < key.length; i++) {
    if (!isBase62Code(key.charCodeAt(i))) return false;
  }
  const body = key.slice(0, bodyLength);
  return checksum(body) === key.slice(bodyLength);
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function keyStart(key: string, prefix: string): string {
  return key.slice(0, prefix.length + 1 + START_CHARS);
}
