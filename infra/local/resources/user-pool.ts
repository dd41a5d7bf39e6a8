import {
  type CognitoIdentityProviderClient,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  ListUserPoolClientsCommand,
  ListUserPoolsCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { userPool, userPoolClientName, userPoolName } from '../../../contracts/resources';
import { AUTH_TRIGGERS_FUNCTION, LOCAL_ACCOUNT_ID, LOCAL_REGION } from '../local-aws';

/** The user pool and its public app client on cognito-local (kept across restarts), found by name. */

export async function ensureUserPool(
  client: CognitoIdentityProviderClient,
  stage: string,
): Promise<{ userPoolId: string; userPoolClientId: string }> {
  const userPoolId = await ensurePool(client, stage);
  return { userPoolId, userPoolClientId: await ensureAppClient(client, stage, userPoolId) };
}

async function ensurePool(client: CognitoIdentityProviderClient, stage: string): Promise<string> {
  const poolName = userPoolName(stage);
  const pools = await client.send(new ListUserPoolsCommand({ MaxResults: 60 }));
  const existing = pools.UserPools?.find((pool) => pool.Name === poolName)?.Id;
  if (existing) return existing;
  const { passwordPolicy } = userPool;
  const created = await client.send(
    new CreateUserPoolCommand({
      PoolName: poolName,
      Policies: {
        PasswordPolicy: {
          MinimumLength: passwordPolicy.minimumLength,
          RequireLowercase: passwordPolicy.requireLowercase,
          RequireUppercase: passwordPolicy.requireUppercase,
          RequireNumbers: passwordPolicy.requireNumbers,
          RequireSymbols: passwordPolicy.requireSymbols,
        },
      },
      UsernameAttributes: [...userPool.usernameAttributes],
      AutoVerifiedAttributes: [...userPool.autoVerifiedAttributes],
      // Recorded for parity with AWS; cognito-local itself routes triggers by its global config.
      LambdaConfig: {
        PostConfirmation: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${AUTH_TRIGGERS_FUNCTION}`,
      },
    }),
  );
  const userPoolId = created.UserPool?.Id;
  if (!userPoolId) throw new Error(`Cognito returned no id for user pool ${poolName}`);
  return userPoolId;
}

async function ensureAppClient(
  client: CognitoIdentityProviderClient,
  stage: string,
  userPoolId: string,
): Promise<string> {
  const clientName = userPoolClientName(stage);
  const clients = await client.send(
    new ListUserPoolClientsCommand({ UserPoolId: userPoolId, MaxResults: 60 }),
  );
  const existing = clients.UserPoolClients?.find((c) => c.ClientName === clientName)?.ClientId;
  if (existing) return existing;
  const created = await client.send(
    new CreateUserPoolClientCommand({
      UserPoolId: userPoolId,
      ClientName: clientName,
      // A browser app cannot keep a secret.
      GenerateSecret: false,
      ExplicitAuthFlows: ['ALLOW_USER_PASSWORD_AUTH', 'ALLOW_REFRESH_TOKEN_AUTH'],
      IdTokenValidity: userPool.idTokenValidityMinutes,
      TokenValidityUnits: { IdToken: 'minutes' },
    }),
  );
  const userPoolClientId = created.UserPoolClient?.ClientId;
  if (!userPoolClientId) throw new Error(`Cognito returned no id for app client ${clientName}`);
  return userPoolClientId;
}
