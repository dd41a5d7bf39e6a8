import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AdminAddUserToGroupCommand,
  AdminCreateUserCommand,
  AdminSetUserPasswordCommand,
  type CognitoIdentityProviderClient,
  CreateGroupCommand,
  ListGroupsCommand,
  ListUsersCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { ADMIN_GROUP } from '../../../contracts/plans';

/** What `<dataDir>/admin.json` holds: the sign-in of the local admin. */
export interface LocalAdmin {
  readonly email: string;
  readonly password: string;
}

export const ADMIN_FILE = 'admin.json';
export const LOCAL_ADMIN_EMAIL = 'admin@tollgate.local';

/**
 * The group `admins` and one admin in it, the SaaS owner's sign-in for the admin routes. The
 * password is generated once and kept in `<dataDir>/admin.json`; every start makes the user's
 * password that one again, so the file is always the way in (and a deleted file a new password).
 * The user is made by AdminCreateUser and confirmed by a permanent password, so no PostConfirmation
 * runs: its account is provisioned, like any owner's whose trigger never ran, on its first `GET /me`.
 */
export async function ensureAdmin(
  client: CognitoIdentityProviderClient,
  userPoolId: string,
  dataDir: string,
): Promise<LocalAdmin> {
  const path = join(dataDir, ADMIN_FILE);
  const admin = (await readAdmin(path)) ?? { email: LOCAL_ADMIN_EMAIL, password: generatePassword() };

  // Only if it is missing: cognito-local's CreateGroup replaces a group, members and all. Listed,
  // not GetGroup: cognito-local fails GetGroup with a 500 in a pool that has no group yet.
  if (!(await hasGroup(client, userPoolId, ADMIN_GROUP))) {
    await client.send(
      new CreateGroupCommand({
        UserPoolId: userPoolId,
        GroupName: ADMIN_GROUP,
        Description: "The SaaS owner's admins: the user API's /admin routes",
      }),
    );
  }

  // ListUsers rather than AdminGetUser: cognito-local logs every "no such user" as an error, which
  // would greet each first `npm start` with a stack trace.
  const existing = await client.send(
    new ListUsersCommand({ UserPoolId: userPoolId, Filter: `email = "${admin.email}"`, Limit: 1 }),
  );
  if ((existing.Users ?? []).length === 0) {
    await client.send(
      new AdminCreateUserCommand({
        UserPoolId: userPoolId,
        Username: admin.email,
        UserAttributes: [
          { Name: 'email', Value: admin.email },
          { Name: 'email_verified', Value: 'true' },
        ],
        MessageAction: 'SUPPRESS',
        TemporaryPassword: admin.password,
      }),
    );
  }
  // Permanent: the user is CONFIRMED and signs in with it, without a forced change.
  await client.send(
    new AdminSetUserPasswordCommand({
      UserPoolId: userPoolId,
      Username: admin.email,
      Password: admin.password,
      Permanent: true,
    }),
  );
  await client.send(
    new AdminAddUserToGroupCommand({ UserPoolId: userPoolId, Username: admin.email, GroupName: ADMIN_GROUP }),
  );

  await writeFile(`${path}.tmp`, `${JSON.stringify(admin, null, 2)}\n`, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
  return admin;
}

async function hasGroup(client: CognitoIdentityProviderClient, userPoolId: string, name: string) {
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListGroupsCommand({ UserPoolId: userPoolId, Limit: 60, ...(token ? { NextToken: token } : {}) }),
    );
    if (page.Groups?.some((group) => group.GroupName === name)) return true;
    token = page.NextToken;
  } while (token);
  return false;
}

async function readAdmin(path: string): Promise<LocalAdmin | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LocalAdmin>;
    if (
      typeof parsed.email === 'string' &&
      typeof parsed.password === 'string' &&
      parsed.password.length > 0
    ) {
      return { email: parsed.email, password: parsed.password };
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && !(error instanceof SyntaxError)) throw error;
  }
  return undefined;
}

/**
 * 128 random bits, plus one of each class userPool.passwordPolicy may require (lower, upper,
 * digit), comfortably past its minimum length.
 */
function generatePassword(): string {
  return `Tg1-${randomBytes(16).toString('base64url')}`;
}
