import {
  AdminGetUserCommand,
  CognitoIdentityProviderClient,
  type CognitoIdentityProviderClientConfig,
} from '@aws-sdk/client-cognito-identity-provider';
import type { AccountOwner } from '../accounts/records';
import { DependencyError } from '../platform/errors';

/** What the accounts table knows of an account's owner (PlanStore.owner). */
export type OwnerRecord = AccountOwner;

/** Where an alert goes: the owner's address as it is now. */
export interface OwnerAddresses {
  /** @returns the address, or undefined when the owner has none (the user is gone) */
  currentAddress(owner: OwnerRecord): Promise<string | undefined>;
}

/** The address stored at sign-up: what alerts use where no user pool is configured. */
export const storedAddresses: OwnerAddresses = {
  currentAddress: async (owner) => owner.email,
};

/** Cognito reads only: a timeout that throws, and one retry (AdminGetUser changes nothing). */
export const cognitoClientConfig = {
  requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  maxAttempts: 2,
} satisfies CognitoIdentityProviderClientConfig;

/**
 * The owner's current address, read from the user pool when an alert is sent (AdminGetUser). The
 * user pool is where an email change happens (the page, an admin, a support script), and no Cognito
 * trigger fires when a changed address is verified (CustomMessage_UpdateUserAttribute fires when the
 * code is sent, before; PostAuthentication only at the next sign-in; an admin's
 * AdminUpdateUserAttributes fires none): a copy kept by triggers would go stale, a read at send
 * time cannot. It costs one read per alert email, at most two per account and period.
 *
 * The pool keeps the original address until a new one is verified (`keepOriginal`,
 * infra/cdk/constructs/user-directory.ts), so `email` is the verified address; one marked
 * unverified anyway (an admin's write without `email_verified`) is not used: the address verified
 * at sign-up is.
 */
export class CognitoOwnerAddresses implements OwnerAddresses {
  readonly #cognito: CognitoIdentityProviderClient;
  readonly #userPoolId: string;

  constructor(options: { userPoolId: string; client?: CognitoIdentityProviderClient }) {
    this.#cognito = options.client ?? new CognitoIdentityProviderClient(cognitoClientConfig);
    this.#userPoolId = options.userPoolId;
  }

  async currentAddress(owner: OwnerRecord): Promise<string | undefined> {
    if (!owner.userName) return owner.email;
    let attributes: Map<string, string>;
    try {
      const out = await this.#cognito.send(
        new AdminGetUserCommand({ UserPoolId: this.#userPoolId, Username: owner.userName }),
      );
      attributes = new Map((out.UserAttributes ?? []).map((a) => [a.Name ?? '', a.Value ?? '']));
    } catch (error) {
      if ((error as { name?: string }).name === 'UserNotFoundException') return undefined;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === undefined || status >= 500 || status === 429 || isThrottling(error)) {
        throw new DependencyError('Cognito', { cause: error });
      }
      throw error;
    }
    const email = attributes.get('email');
    if (email && attributes.get('email_verified') !== 'false') return email;
    return owner.email;
  }
}

function isThrottling(error: unknown): boolean {
  const name = (error as { name?: string }).name ?? '';
  return name === 'TooManyRequestsException' || name === 'LimitExceededException';
}
