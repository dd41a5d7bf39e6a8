import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { SERVICE_NAMES } from '../../../contracts/metric-names';
import type { TollgateFunction } from './tollgate-function';

export interface UserApiGatewayProps {
  /** Part of the API's name. */
  readonly stage: string;
  /** The Hono app that serves every route. */
  readonly userApi: TollgateFunction;
  /** Whose ID tokens are accepted. */
  readonly userPool: cognito.IUserPool;
  /**
   * Browser origins allowed by CORS: the web page's own origin first (it also goes on the
   * gateway's own error answers, which cannot vary by origin).
   */
  readonly allowedOrigins: readonly string[];
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Steady-state requests per second across all account owners.
   * @default 50
   */
  readonly throttlingRateLimit?: number;
  /** @default 100 */
  readonly throttlingBurstLimit?: number;
  /**
   * Steady-state requests per second of each route that mints or shows a key secret
   * ({@link MINTING_ROUTES}), across all account owners: far below the stage's, since nobody
   * needs more than a few keys a second, and a stolen token or a runaway script should not be
   * able to mint (and spend the key writes of) thousands.
   * @default 5
   */
  readonly mintingThrottlingRateLimit?: number;
  /** @default 10 */
  readonly mintingThrottlingBurstLimit?: number;
  /**
   * Serve user-api's billing routes ({@link BILLING_ROUTES}), behind the authorizer like the others.
   * @default false
   */
  readonly billing?: boolean;
}

/**
 * The routes that mint a key secret or show one again (services/user-api/routes/keys.ts), each
 * throttled apart from (and tighter than) the stage. API Gateway throttles per route and stage, not
 * per caller: the per-caller limit is the web ACL's per-IP rate rule (tollgate-stack.ts).
 */
export const MINTING_ROUTES: ReadonlyArray<{ path: string; method: string }> = [
  { path: 'keys', method: 'POST' },
  { path: 'keys/{id}/reveal', method: 'POST' },
  { path: 'keys/{id}/roll', method: 'POST' },
];

/**
 * The user API's routes, as user-api's Hono app defines them (services/user-api/routes), each
 * behind the authorizer.
 */
const ROUTES: ReadonlyArray<{ path: string; methods: readonly string[] }> = [
  { path: 'me', methods: ['GET', 'PATCH'] },
  { path: 'me/plan', methods: ['GET'] },
  { path: 'keys', methods: ['GET', 'POST'] },
  { path: 'keys/{id}', methods: ['DELETE'] },
  { path: 'keys/{id}/reveal', methods: ['POST'] },
  { path: 'keys/{id}/roll', methods: ['POST'] },
  { path: 'usage', methods: ['GET'] },
  // The owner's admins (services/user-api/routes/admin.ts). The authorizer only proves a signed-in
  // user; membership of the admins group is checked by user-api, which answers anyone else 403.
  { path: 'admin/accounts', methods: ['GET'] },
  { path: 'admin/accounts/{accountId}/plan', methods: ['PUT'] },
  { path: 'admin/accounts/{accountId}/usage', methods: ['GET'] },
  { path: 'admin/accounts/{accountId}/suspend', methods: ['POST'] },
  { path: 'admin/accounts/{accountId}/resume', methods: ['POST'] },
  { path: 'admin/plans', methods: ['GET'] },
  { path: 'admin/plans/{planId}', methods: ['PUT'] },
  { path: 'admin/usage/top', methods: ['GET'] },
  { path: 'admin/usage/accounts', methods: ['GET'] },
];

/** user-api's billing routes (Checkout, the customer portal, the owner's billing): only where billing is deployed. */
export const BILLING_ROUTES: ReadonlyArray<{ path: string; methods: readonly string[] }> = [
  { path: 'billing/checkout', methods: ['POST'] },
  { path: 'billing/portal', methods: ['POST'] },
  { path: 'me/billing', methods: ['GET'] },
  { path: 'billing/plans', methods: ['GET'] },
];

/** user-api's OpenAPI document: public and static, so served without a token (services/user-api/app.ts). */
const PUBLIC_ROUTES: ReadonlyArray<{ path: string; methods: readonly string[] }> = [
  { path: 'openapi.json', methods: ['GET'] },
];

/**
 * API Gateway (REST) in front of user-api: every route but the OpenAPI document needs a Cognito ID
 * token, checked by a user pool authorizer before Lambda is invoked (user-api verifies it again, as
 * it does locally). Routes are listed explicitly, so unknown paths are refused without an invocation.
 */
export class UserApiGateway extends Construct {
  readonly api: apigw.RestApi;

  constructor(scope: Construct, id: string, props: UserApiGatewayProps) {
    super(scope, id);
    this.api = this.#restApi(props);
    // Answers the gateway gives itself (401 from the authorizer, 429, 5xx) bypass user-api's CORS
    // handling; without the header the page could not even read that it must sign in again.
    const webOrigin = props.allowedOrigins[0];
    if (webOrigin !== undefined) this.#allowOriginOnGatewayAnswers(webOrigin);
    this.#addRoutes(props);
    this.#acknowledgeFindings();
  }

  #restApi(props: UserApiGatewayProps): apigw.RestApi {
    const accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    return new apigw.RestApi(this, 'Api', {
      restApiName: `tollgate-${props.stage}-${SERVICE_NAMES.userApi}`,
      description:
        "Tollgate user API: account owners manage their keys and read their usage; the owner's admins manage plans and accounts",
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // API Gateway writes logs through one role per account and region; a fresh account has none.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: 'v1',
        accessLogDestination: new apigw.LogGroupLogDestination(accessLogs),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        throttlingRateLimit: props.throttlingRateLimit ?? 50,
        throttlingBurstLimit: props.throttlingBurstLimit ?? 100,
        // Keyed `/<path>/<METHOD>`, as API Gateway's method settings name a route.
        methodOptions: Object.fromEntries(
          MINTING_ROUTES.map((route) => [
            `/${route.path}/${route.method}`,
            {
              throttlingRateLimit: props.mintingThrottlingRateLimit ?? 5,
              throttlingBurstLimit: props.mintingThrottlingBurstLimit ?? 10,
            },
          ]),
        ),
      },
      defaultCorsPreflightOptions: {
        allowOrigins: [...props.allowedOrigins],
        allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        allowHeaders: ['Authorization', 'Content-Type'],
        maxAge: Duration.minutes(10),
      },
    });
  }

  #allowOriginOnGatewayAnswers(webOrigin: string): void {
    for (const [gatewayId, type] of [
      ['Default4xx', apigw.ResponseType.DEFAULT_4XX],
      ['Default5xx', apigw.ResponseType.DEFAULT_5XX],
    ] as const) {
      this.api.addGatewayResponse(gatewayId, {
        type,
        responseHeaders: { 'Access-Control-Allow-Origin': `'${webOrigin}'`, Vary: "'Origin'" },
      });
    }
  }

  /** ROUTES behind the authorizer, PUBLIC_ROUTES without it; all to the one Lambda integration. */
  #addRoutes(props: UserApiGatewayProps): void {
    const authorizer = new apigw.CognitoUserPoolsAuthorizer(this, 'Authorizer', {
      cognitoUserPools: [props.userPool],
      authorizerName: `tollgate-${props.stage}-users`,
      resultsCacheTtl: Duration.minutes(5),
    });
    const integration = new apigw.LambdaIntegration(props.userApi.function, { proxy: true });
    for (const route of [...ROUTES, ...(props.billing ? BILLING_ROUTES : [])]) {
      const resource = this.api.root.resourceForPath(route.path);
      for (const method of route.methods) {
        resource.addMethod(method, integration, {
          authorizationType: apigw.AuthorizationType.COGNITO,
          authorizer,
        });
      }
    }
    for (const route of PUBLIC_ROUTES) {
      const resource = this.api.root.resourceForPath(route.path);
      for (const method of route.methods) {
        const added = resource.addMethod(method, integration, {
          authorizationType: apigw.AuthorizationType.NONE,
        });
        acknowledgeNoAuthorizer(
          added,
          "user-api's OpenAPI document: a public, static description of the API (no account data), " +
            'meant to be read before signing in. The stage throttling and the web ACL apply to it as to every route.',
        );
      }
    }
  }

  #acknowledgeFindings(): void {
    // Besides the OpenAPI document, only the CORS preflights go without the authorizer.
    for (const method of this.api.methods.filter((m) => m.httpMethod === 'OPTIONS')) {
      acknowledgeNoAuthorizer(
        method,
        'CORS preflight: browsers send it without credentials, so it cannot carry a token. It is a mock ' +
          'integration that never reaches Lambda.',
      );
    }
    Validations.of(this.api).acknowledge(
      {
        id: 'AwsSolutions-APIG2',
        reason:
          'Every body and query string is validated by user-api with the zod schemas its routes share with ' +
          'the local stack and the tests; API Gateway models would be a second copy that drifts.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "AmazonAPIGatewayPushToCloudWatchLogs is the policy AWS documents for API Gateway's account-wide " +
          'logging role; it only allows writing CloudWatch Logs.',
      },
    );
  }

  /** The stage's base URL, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com/v1/`. */
  get url(): string {
    return this.api.url;
  }
}

/** A method without the Cognito authorizer: cdk-nag's authorization findings, with the reason. */
function acknowledgeNoAuthorizer(method: apigw.Method, reason: string): void {
  for (const rule of ['AwsSolutions-APIG4', 'AwsSolutions-COG4']) {
    Validations.of(method).acknowledge({ id: rule, reason });
  }
}
