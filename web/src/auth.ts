import { Amplify } from 'aws-amplify';
import {
  fetchAuthSession,
  type SignInInput,
  type SignUpInput,
  signIn,
  signOut,
  signUp,
} from 'aws-amplify/auth';
import { SessionExpiredError } from './api';
import type { WebConfig } from './config';

type AuthFlow = 'USER_PASSWORD_AUTH' | 'USER_SRP_AUTH';
let authFlow: AuthFlow = 'USER_SRP_AUTH';

/**
 * Points Amplify at the deployment's user pool. A local Cognito (cognito-local) has an endpoint of
 * its own and no SRP, so there the password flow is used; on AWS, SRP keeps the password off the wire.
 */
export function configureAuth(config: WebConfig): void {
  const { cognito } = config;
  const policy = cognito.passwordPolicy;
  authFlow = cognito.endpoint ? 'USER_PASSWORD_AUTH' : 'USER_SRP_AUTH';
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: cognito.userPoolId,
        userPoolClientId: cognito.clientId,
        ...(cognito.endpoint ? { userPoolEndpoint: cognito.endpoint } : {}),
        loginWith: { email: true },
        signUpVerificationMethod: 'code',
        userAttributes: { email: { required: true } },
        ...(policy
          ? {
              passwordFormat: {
                minLength: policy.minimumLength,
                requireLowercase: policy.requireLowercase,
                requireUppercase: policy.requireUppercase,
                requireNumbers: policy.requireNumbers,
                requireSpecialCharacters: policy.requireSymbols,
              },
            }
          : {}),
      },
    },
  });
}

/**
 * The Authenticator's calls to Cognito, with the sign-in flow this deployment supports (for the
 * sign-in form and for the automatic sign-in after a confirmed sign-up).
 */
export const authenticatorServices = {
  handleSignIn: (input: SignInInput) =>
    signIn({ ...input, options: { ...input.options, authFlowType: authFlow } }),
  handleSignUp: (input: SignUpInput) =>
    signUp({
      ...input,
      options: {
        ...input.options,
        userAttributes: input.options?.userAttributes ?? {},
        autoSignIn: { authFlowType: authFlow },
      },
    }),
};

/** The signed-in user's ID token, refreshed by Amplify when it is about to expire. */
export async function currentIdToken(): Promise<string> {
  let token: string | undefined;
  try {
    token = (await fetchAuthSession()).tokens?.idToken?.toString();
  } catch (error) {
    // A refresh that fails for lack of network is not the end of the session.
    if ((error as Error)?.name === 'NetworkError') throw error;
    throw new SessionExpiredError({ cause: error });
  }
  if (!token) throw new SessionExpiredError();
  return token;
}

/** Ends the session on this device only; the Authenticator then shows the sign-in form. */
export async function endSession(): Promise<void> {
  try {
    await signOut();
  } catch {
    // Signing out of a session that is already gone still clears what is stored locally.
  }
}
