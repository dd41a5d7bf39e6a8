import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CognitoIdentityProviderClient,
  ConfirmSignUpCommand,
  InitiateAuthCommand,
  SignUpCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { inject } from 'vitest';
import { ADMIN_FILE, type LocalAdmin } from '../../infra/local/bootstrap';
import { latestCode } from '../../infra/local/mailbox';
import { engineClients, LOCAL_CREDENTIALS } from './aws';

// The shared local stack of test/setup/global-setup.ts, as a test file sees it. This file (and
// metering-consumer.ts) read vitest's provided context; the rest of test/support does not.

export const endpoints = () => inject('endpoints');
/** The settings the stack composed its handlers with, by the names of contracts/config.ts. */
export const stackEnv = () => inject('env');
/** Where the stack's engines are, for handlers a test composes itself. */
export const stackAws = () => inject('aws');

/** Real SDK clients of this test's own, pointed at the shared stack's engines. */
export const localClients = () => engineClients(endpoints());

export function cognitoClient(): CognitoIdentityProviderClient {
  const { cognito, region } = endpoints();
  return new CognitoIdentityProviderClient({
    region,
    endpoint: cognito.endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
}

export interface TestUser {
  email: string;
  password: string;
  idToken: string;
  accessToken: string;
}

let counter = 0;

/** Signs a new user up the way a person would: sign up, read the emailed code, confirm, sign in. */
export async function signUpAndSignIn(label = 'user'): Promise<TestUser> {
  const { cognito } = endpoints();
  const client = cognitoClient();
  const email = `${label}-${Date.now()}-${counter++}@example.com`;
  const password = 'Correct-Horse-42';
  await client.send(
    new SignUpCommand({
      ClientId: cognito.clientId,
      Username: email,
      Password: password,
      UserAttributes: [{ Name: 'email', Value: email }],
    }),
  );
  const code = await latestCode(inject('dataDir'), email);
  if (!code) throw new Error(`no verification code was captured for ${email}`);
  await client.send(
    new ConfirmSignUpCommand({ ClientId: cognito.clientId, Username: email, ConfirmationCode: code }),
  );
  const auth = await client.send(
    new InitiateAuthCommand({
      ClientId: cognito.clientId,
      AuthFlow: 'USER_PASSWORD_AUTH',
      AuthParameters: { USERNAME: email, PASSWORD: password },
    }),
  );
  const idToken = auth.AuthenticationResult?.IdToken;
  const accessToken = auth.AuthenticationResult?.AccessToken;
  if (!idToken || !accessToken) throw new Error('sign-in returned no tokens');
  return { email, password, idToken, accessToken };
}

/** Signs in with an email and password (`USER_PASSWORD_AUTH`): the tokens of that user. */
export async function signIn(email: string, password: string): Promise<TestUser> {
  const auth = await cognitoClient().send(
    new InitiateAuthCommand({
      ClientId: endpoints().cognito.clientId,
      AuthFlow: 'USER_PASSWORD_AUTH',
      AuthParameters: { USERNAME: email, PASSWORD: password },
    }),
  );
  const idToken = auth.AuthenticationResult?.IdToken;
  const accessToken = auth.AuthenticationResult?.AccessToken;
  if (!idToken || !accessToken) throw new Error(`sign-in of ${email} returned no tokens`);
  return { email, password, idToken, accessToken };
}

/** The shared stack's local admin, as bootstrap wrote it to `<dataDir>/admin.json`. */
export async function localAdmin(): Promise<LocalAdmin> {
  return JSON.parse(await readFile(join(inject('dataDir'), ADMIN_FILE), 'utf8')) as LocalAdmin;
}

/** Signs in as the shared stack's local admin (a member of the group `admins`). */
export async function signInAdmin(): Promise<TestUser> {
  const admin = await localAdmin();
  return signIn(admin.email, admin.password);
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

async function toJsonResponse(response: Response): Promise<JsonResponse> {
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** Calls the user API as a signed-in owner. */
export async function userApi(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${endpoints().userApi}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return toJsonResponse(response);
}

/** Calls the key API through the local ALB adapter. */
export async function keyApi(
  init: { headers?: Record<string, string>; body?: string; method?: string } = {},
) {
  const response = await fetch(endpoints().keyApi, {
    method: init.method ?? 'POST',
    headers: init.headers,
    body: init.body,
  });
  return toJsonResponse(response);
}

/** Calls the example owner API (examples/rates-api) behind its gate, the key in x-api-key. */
export async function exampleApi(
  path: string,
  init: { key?: string; method?: string; body?: unknown } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = {};
  if (init.key) headers['x-api-key'] = init.key;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${endpoints().exampleApi}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return toJsonResponse(response);
}

export function errorCode(response: JsonResponse): string | undefined {
  return (response.body as { error?: { code?: string } } | undefined)?.error?.code;
}
