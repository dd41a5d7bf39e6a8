import { describe, expect, it } from 'vitest';
import { onPostConfirmation } from '../../services/auth-triggers/post-confirmation';
import { InvalidEventError } from '../../services/shared/errors';
import type { KeyStore } from '../../services/shared/key-store';

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
