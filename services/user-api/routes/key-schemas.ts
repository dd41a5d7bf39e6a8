import { z } from '@hono/zod-openapi';
import { MAX_ROLL_GRACE_MS } from '../../../contracts/config';
import { effectiveStatus, type KeyRecord } from '../../accounts/records';
import { timestamp } from '../openapi';

/** The shapes of the key routes' requests and answers (keys.ts), and how a key record is shown. */

const MAX_GRACE_SECONDS = MAX_ROLL_GRACE_MS / 1000;

/**
 * Characters a key name may not hold: control characters (NUL included) and the bidirectional
 * controls that can make a name display as another (U+200E/F, U+202A-E, U+2066-9). Lone UTF-16
 * surrogates are no text at all (String.isWellFormed would say so, but it is ES2024 and the
 * project's lib is ES2023).
 */
const UNSAFE_IN_NAMES = /[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const keyNameSchema = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(64, 'at most 64 characters')
  .refine((name) => !LONE_SURROGATE.test(name), 'must be well-formed text (no lone surrogates)')
  .refine(
    (name) => !UNSAFE_IN_NAMES.test(name),
    'must not contain control or bidirectional-override characters',
  );

export const createKeyBody = z
  .strictObject({
    name: keyNameSchema.optional(),
  })
  .openapi('CreateKeyRequest');

export const rollKeyBody = z
  .strictObject({
    /** Overrides the default grace period for this roll; 0 ends the old key now. */
    gracePeriodSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_GRACE_SECONDS)
      .optional()
      .openapi({
        description: `How long the old key keeps working, at most ${MAX_GRACE_SECONDS} (7 days); 0 ends it now. Default: the deployment's grace period`,
      }),
  })
  .openapi('RollKeyRequest');

// Ids Tollgate mints; anything else cannot exist, so it is answered like an unknown id.
export const keyIdParam = z.object({
  id: z
    .string()
    .regex(/^key_[A-Za-z0-9_]{1,100}$/)
    .openapi({ param: { name: 'id', in: 'path' }, example: 'key_2x8Qm4' }),
});

const keyStatus = z.enum(['pending', 'active', 'expiring', 'expired', 'revoked']).openapi('KeyStatus');

/** A key as its owner sees it: never the hash, never the secret. */
export const keyView = z
  .object({
    id: z.string(),
    name: z.string(),
    start: z.string().nullable().openapi({ description: 'The first characters of the key, for display' }),
    status: keyStatus,
    createdAt: timestamp,
    expiresAt: timestamp.optional(),
    revokedAt: timestamp.optional(),
    replacedBy: z.string().optional().openapi({ description: 'The key that replaced it in a roll' }),
  })
  .openapi('Key');

export const keyList = z
  .object({
    keys: z.array(
      keyView.extend({
        count: z.number().int().openapi({ description: 'Requests counted, all time' }),
        lastUsedAt: timestamp.nullable(),
      }),
    ),
  })
  .openapi('KeyList');

/** The one answer that carries a secret: on create, reveal and roll. */
export const issuedKey = z
  .object({
    id: z.string(),
    key: z.string().openapi({ description: 'The secret: shown this once, never stored by Tollgate' }),
    name: z.string(),
    start: z.string().nullable(),
    createdAt: timestamp,
  })
  .openapi('IssuedKey');

export const rolledKey = issuedKey
  .extend({
    previous: z.object({ id: z.string(), status: z.literal('expiring'), expiresAt: timestamp }),
  })
  .openapi('RolledKey');

export function view(key: KeyRecord, now: Date) {
  return {
    id: key.keyId,
    name: key.name,
    start: key.start ?? null,
    status: effectiveStatus(key, now),
    createdAt: key.createdAt,
    ...(key.expiresAt ? { expiresAt: key.expiresAt } : {}),
    ...(key.revokedAt ? { revokedAt: key.revokedAt } : {}),
    ...(key.replacedBy ? { replacedBy: key.replacedBy } : {}),
  };
}

export function issued(key: KeyRecord, secret: string) {
  return { id: key.keyId, key: secret, name: key.name, start: key.start ?? null, createdAt: key.createdAt };
}
