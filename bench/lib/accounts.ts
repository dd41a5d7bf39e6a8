import {
  CognitoIdentityProviderClient,
  ConfirmSignUpCommand,
  InitiateAuthCommand,
  SignUpCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { latestCode } from '../../infra/local/mailbox';
import type { StackInfo } from './types';

/**
 * Account owners for the benchmark, made the way a person makes one: sign up with cognito-local,
 * read the captured verification code, confirm (the PostConfirmation trigger provisions the
 * account), sign in; then keys through the user API. Usage is read back through `GET /usage` and
 * `GET /keys`, the same answers an owner gets.
 */
export interface Owner {
  readonly email: string;
  readonly idToken: string;
}

export interface IssuedKey {
  readonly id: string;
  readonly key: string;
}

export class UserApi {
  readonly #stack: StackInfo;
  readonly #cognito: CognitoIdentityProviderClient;

  constructor(stack: StackInfo) {
    this.#stack = stack;
    this.#cognito = new CognitoIdentityProviderClient({
      region: stack.endpoints.region,
      endpoint: stack.endpoints.cognito.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  }

  close(): void {
    this.#cognito.destroy();
  }

  async signUp(label: string): Promise<Owner> {
    const { clientId } = this.#stack.endpoints.cognito;
    const email = `bench-${label}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
    const password = 'Bench-Password-42';
    await this.#cognito.send(
      new SignUpCommand({
        ClientId: clientId,
        Username: email,
        Password: password,
        UserAttributes: [{ Name: 'email', Value: email }],
      }),
    );
    let code: string | undefined;
    for (let attempt = 0; attempt < 50 && !code; attempt++) {
      code = await latestCode(this.#stack.dataDir, email);
      if (!code) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (!code) throw new Error(`no verification code was captured for ${email}`);
    await this.#cognito.send(
      new ConfirmSignUpCommand({ ClientId: clientId, Username: email, ConfirmationCode: code }),
    );
    const auth = await this.#cognito.send(
      new InitiateAuthCommand({
        ClientId: clientId,
        AuthFlow: 'USER_PASSWORD_AUTH',
        AuthParameters: { USERNAME: email, PASSWORD: password },
      }),
    );
    const idToken = auth.AuthenticationResult?.IdToken;
    if (!idToken) throw new Error('sign-in returned no ID token');
    return { email, idToken };
  }

  async request<T>(owner: Owner, method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.#stack.endpoints.userApi}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${owner.idToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text) as T;
  }

  /** The owner's account id (`GET /me`): their Cognito user id. */
  async accountId(owner: Owner): Promise<string> {
    return (await this.request<{ userId: string }>(owner, 'GET', '/me')).userId;
  }

  createKey(owner: Owner, name: string): Promise<IssuedKey> {
    return this.request<IssuedKey>(owner, 'POST', '/keys', { name });
  }

  /** The owner's counted requests from `from` to today (UTC), as `GET /usage` answers. */
  async usageTotal(owner: Owner, from: string, keyId?: string): Promise<number> {
    const query = `from=${from}${keyId ? `&keyId=${encodeURIComponent(keyId)}` : ''}`;
    return (await this.request<{ total: number }>(owner, 'GET', `/usage?${query}`)).total;
  }

  /** Each key's all-time count, as `GET /keys` answers. */
  async keyCounts(owner: Owner): Promise<Map<string, number>> {
    const { keys } = await this.request<{ keys: Array<{ id: string; count: number }> }>(
      owner,
      'GET',
      '/keys',
    );
    return new Map(keys.map((k) => [k.id, k.count]));
  }
}
