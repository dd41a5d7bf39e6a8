import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import { ENV } from '../../../contracts/config';
import { ADMIN_GROUP } from '../../../contracts/plans';
import {
  userPoolClientName,
  userPool as userPoolDefinition,
  userPoolName,
} from '../../../contracts/resources';
import type { TollgateFunction } from './tollgate-function';

export interface UserDirectoryProps {
  /** Part of the pool and client names. */
  readonly stage: string;
  /** Runs after a user confirms the sign-up: provisions the account and its first key. */
  readonly postConfirmation: TollgateFunction;
  /**
   * What happens to the pool (and every account owner's login) when the stack is deleted. RETAIN
   * also turns on deletion protection.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Account owners: a Cognito user pool (email sign-up and verification, password policy from
 * contracts/resources.ts), the web page's app client and the PostConfirmation trigger; and the
 * group of the SaaS owner's admins, who use user-api's admin routes.
 */
export class UserDirectory extends Construct {
  readonly userPool: cognito.UserPool;
  readonly webClient: cognito.UserPoolClient;
  /**
   * The owner's admins (ADMIN_GROUP). Nobody is in it after a deploy: an operator adds users
   * (docs/deploy.md); their ID tokens then carry it in `cognito:groups`, which user-api checks.
   */
  readonly adminGroup: cognito.CfnUserPoolGroup;
  /** `https://cognito-idp.<region>.amazonaws.com/<poolId>`: the `iss` of the pool's tokens. */
  readonly issuer: string;

  constructor(scope: Construct, id: string, props: UserDirectoryProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.userPool = this.#userPool(props, removalPolicy);
    this.webClient = this.#webClient(props.stage);
    this.adminGroup = this.#adminGroup(removalPolicy);
    const stack = Stack.of(this);
    this.issuer = `https://cognito-idp.${stack.region}.${stack.urlSuffix}/${this.userPool.userPoolId}`;
  }

  #userPool(props: UserDirectoryProps, removalPolicy: RemovalPolicy): cognito.UserPool {
    const policy = userPoolDefinition.passwordPolicy;
    // The trigger function learns table names, never the pool's id: pool → trigger → pool would
    // be a circular reference.
    const pool = new cognito.UserPool(this, 'Pool', {
      userPoolName: userPoolName(props.stage),
      selfSignUpEnabled: true,
      signInAliases: { email: true },
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      userVerification: { emailStyle: cognito.VerificationEmailStyle.CODE },
      keepOriginal: { email: true },
      passwordPolicy: {
        minLength: policy.minimumLength,
        requireLowercase: policy.requireLowercase,
        requireUppercase: policy.requireUppercase,
        requireDigits: policy.requireNumbers,
        requireSymbols: policy.requireSymbols,
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      lambdaTriggers: { postConfirmation: props.postConfirmation.function },
      removalPolicy,
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
    });
    Validations.of(pool).acknowledge(
      {
        id: 'AwsSolutions-COG1',
        reason:
          'The password policy is the one of contracts/resources.ts, shared with the local stack: 10+ characters ' +
          'with mixed case and digits. Symbols are not required, as NIST SP 800-63B advises against ' +
          'composition rules beyond length.',
      },
      {
        id: 'AwsSolutions-COG2',
        reason:
          'MFA is not required at sign-up: an account owner only manages API keys, each revocable, and the ' +
          'web page signs in with email and password. Optional TOTP is a follow-up, not a deploy blocker.',
      },
      {
        id: 'AwsSolutions-COG8',
        reason:
          'The Essentials feature plan is used: Plus (threat protection, compromised-credential checks) is ' +
          'billed per monthly active user; operators can upgrade the pool without changing Tollgate.',
      },
      {
        id: 'AwsSolutions-COG3',
        reason:
          'Threat protection (advanced security) needs the Plus feature plan, billed per monthly active user; ' +
          'operators of a small deployment opt in through the console when their user base warrants it.',
      },
    );
    return pool;
  }

  #webClient(stage: string): cognito.UserPoolClient {
    return this.userPool.addClient('WebClient', {
      userPoolClientName: userPoolClientName(stage),
      // A browser cannot keep a secret.
      generateSecret: false,
      authFlows: { userPassword: true, userSrp: true },
      // The page signs in through the API (USER_PASSWORD_AUTH / SRP), not the hosted UI.
      disableOAuth: true,
      idTokenValidity: Duration.minutes(userPoolDefinition.idTokenValidityMinutes),
      accessTokenValidity: Duration.minutes(userPoolDefinition.idTokenValidityMinutes),
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
    });
  }

  #adminGroup(removalPolicy: RemovalPolicy): cognito.CfnUserPoolGroup {
    const group = new cognito.CfnUserPoolGroup(this, 'AdminGroup', {
      userPoolId: this.userPool.userPoolId,
      groupName: ADMIN_GROUP,
      description:
        "The SaaS owner's admins: user-api's /admin routes (plans, accounts, suspension) answer only them",
    });
    // Its members are part of the pool's data: kept (or deleted) with the pool.
    group.applyRemovalPolicy(removalPolicy);
    return group;
  }

  /** user-api: verifies ID tokens itself (issuer, JWKS, audience = the web client). */
  allowTokenVerification(fn: TollgateFunction): void {
    fn.function.addEnvironment(ENV.jwtIssuer, this.issuer);
    fn.function.addEnvironment(ENV.jwksUri, `${this.issuer}/.well-known/jwks.json`);
    fn.function.addEnvironment(ENV.userPoolClientId, this.webClient.userPoolClientId);
  }
}
