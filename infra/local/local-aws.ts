import { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import type { AwsOptions } from '../../services/platform/aws-clients';

/**
 * What every client of the local stack's engines shares: one region, one account, fixed
 * credentials (the emulators check none), and endpoints on loopback.
 */

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Function name the local PostConfirmation trigger is registered under. */
export const AUTH_TRIGGERS_FUNCTION = 'tollgate-auth-triggers';

/** Where a server of the local stack answers: loopback only. */
export function localUrl(port: number): string {
  return `http://127.0.0.1:${port}`;
}

/** The options of services/platform/aws-clients.ts for clients of these engines. */
export function localAws(endpoints: NonNullable<AwsOptions['endpoints']>): AwsOptions {
  return { region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, endpoints };
}

/**
 * A client of cognito-local. services/platform/aws-clients.ts builds no Cognito client (on AWS the
 * deployables that need one build it in their compose), so the local stack builds its own here.
 */
export function localCognitoClient(endpoint: string): CognitoIdentityProviderClient {
  return new CognitoIdentityProviderClient({
    region: LOCAL_REGION,
    endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
}

/** Uses a client once and destroys it, whatever the use did. */
export async function withClient<C extends { destroy(): void }, R>(
  client: C,
  use: (client: C) => Promise<R>,
): Promise<R> {
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}
