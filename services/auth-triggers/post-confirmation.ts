import { z } from 'zod';
import type { KeyStore } from '../accounts/key-store';
import type { Clock } from '../platform/clock';
import { InvalidEventError } from '../platform/errors';

/** The parts of Cognito's PostConfirmation event Tollgate relies on; other fields pass through. */
export const postConfirmationEventSchema = z.looseObject({
  triggerSource: z.enum(['PostConfirmation_ConfirmSignUp', 'PostConfirmation_ConfirmForgotPassword']),
  userPoolId: z.string().min(1),
  userName: z.string().min(1),
  request: z.looseObject({
    userAttributes: z.looseObject({
      sub: z.string().min(1),
      email: z.email(),
    }),
  }),
});

export type PostConfirmationEvent = z.infer<typeof postConfirmationEventSchema>;

export type ProvisionOutcome = 'provisioned' | 'already-provisioned' | 'not-a-sign-up';

/**
 * Provisions the account and its first key when a sign-up is confirmed. The account id is the
 * Cognito `sub`, which never changes, unlike the email address.
 */
export async function onPostConfirmation(
  event: unknown,
  deps: { store: KeyStore; clock: Clock },
): Promise<ProvisionOutcome> {
  const parsed = postConfirmationEventSchema.safeParse(event);
  if (!parsed.success) {
    throw new InvalidEventError(`invalid PostConfirmation event: ${z.prettifyError(parsed.error)}`);
  }
  const { triggerSource, userName, request } = parsed.data;
  // A password reset also fires PostConfirmation; it must not provision anything.
  if (triggerSource !== 'PostConfirmation_ConfirmSignUp') return 'not-a-sign-up';
  const { created } = await deps.store.provisionAccount({
    accountId: request.userAttributes.sub,
    email: request.userAttributes.email,
    userName,
    now: deps.clock.now(),
  });
  return created ? 'provisioned' : 'already-provisioned';
}
