import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import { ApplicationLogLevel } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import {
  DEFAULT_KEY_CACHE_WINDOWS,
  DEFAULT_KEY_PREFIX,
  DEFAULT_LEDGER_FLUSH,
  DEFAULT_ROLL_GRACE_MS,
  ENV,
} from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { LEDGER_QUEUE_BATCHING_WINDOW_SECONDS, userPool } from '../../contracts/resources';
import { DEFAULT_TRANSPORT, type Transport } from '../../contracts/transport';
import { allowAlertAddressLookup, allowAlertEmail } from './constructs/alert-email';
import { Billing } from './constructs/billing';
import { DataTables } from './constructs/data-tables';
import { KeyApiEndpoint } from './constructs/key-api-endpoint';
import { LogBucket } from './constructs/log-bucket';
import { OperationsDashboard } from './constructs/operations-dashboard';
import { attachSqsLedger } from './constructs/sqs-ledger';
import { jsonLogsForEveryFunction, TollgateFunction } from './constructs/tollgate-function';
import { UsageTransport } from './constructs/usage-transport';
import { UserApiGateway } from './constructs/user-api-gateway';
import { UserDirectory } from './constructs/user-directory';
import { DEFAULT_RATE_LIMITS, type RateLimits, RegionalWebAcl } from './constructs/web-acls';
import { WebHosting } from './constructs/web-hosting';
import { EXAMPLE_API_ENTRY, EXAMPLE_API_PATHS } from './paths';
import { DEFAULT_KEY_API_RESERVED_CONCURRENCY, type TollgateStackProps } from './stack-props';

export type { TollgateStackProps } from './stack-props';

/**
 * Tollgate on AWS: the same handlers as the local stack, wired to the resources of
 * contracts/resources.ts. See docs/deploy.md.
 */
export class TollgateStack extends Stack {
  readonly transport: Transport;
  readonly functions: {
    readonly keyApi: TollgateFunction;
    readonly metering: TollgateFunction;
    readonly userApi: TollgateFunction;
    readonly authTriggers: TollgateFunction;
    /** The owner API behind the gate (the example API unless `ownerApiEntry` names another). */
    readonly ownerApi: TollgateFunction;
  };
  readonly tables: DataTables;
  readonly usageTransport: UsageTransport;
  readonly userDirectory: UserDirectory;
  readonly keyApiEndpoint: KeyApiEndpoint;
  readonly userApiGateway: UserApiGateway;
  readonly web: WebHosting;
  readonly operations: OperationsDashboard;
  /** Billing with Stripe, when `billing` is set (docs/billing.md). */
  readonly billing?: Billing;
  /** WAF in front of each public entry point but the static page. */
  readonly webAcls: {
    readonly keyApi: RegionalWebAcl;
    readonly userApi: RegionalWebAcl;
    readonly userPool: RegionalWebAcl;
  };

  constructor(scope: Construct, id: string, props: TollgateStackProps = {}) {
    super(scope, id, props);
    const stage = props.stage ?? 'prod';
    this.transport = props.transport ?? DEFAULT_TRANSPORT;
    if (this.transport !== 'sqs' && props.ledgerFlush !== undefined)
      throw new Error("ledgerFlush is the SQS ledger's: a Kinesis deployment has none");
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;

    const logs = new LogBucket(this, 'AccessLogs');
    this.tables = new DataTables(this, 'Tables', { stage, removalPolicy: props.dataRemovalPolicy });
    this.usageTransport = new UsageTransport(this, 'UsageTransport', {
      stage,
      transport: this.transport,
      ...(props.kinesisShards !== undefined ? { kinesisShards: props.kinesisShards } : {}),
      ...(props.lateWindowMs !== undefined ? { lateWindowMs: props.lateWindowMs } : {}),
      // The queue's window follows the ledger's flush profile (economy gathers longer batches).
      ...(this.transport === 'sqs'
        ? {
            maxBatchingWindow: Duration.seconds(
              LEDGER_QUEUE_BATCHING_WINDOW_SECONDS[props.ledgerFlush ?? DEFAULT_LEDGER_FLUSH],
            ),
          }
        : {}),
    });
    this.functions = this.#functions(stage, logRetention, props);
    // The same log format and platform-line filter for the handlers aws-cdk-lib adds itself.
    jsonLogsForEveryFunction(this);
    this.#grantDataAccess(props);
    this.userDirectory = this.#userDirectory(stage, props);

    this.web = new WebHosting(this, 'Web', {
      logBucket: logs.bucket,
      domainNames: props.webDomainNames,
      certificateArn: props.webCertificateArn,
    });
    const allowedOrigins = this.#allowBrowserOrigins(props.allowedOrigins);
    this.keyApiEndpoint = new KeyApiEndpoint(this, 'KeyApiEndpoint', {
      keyApi: this.functions.keyApi,
      ownerApi: { handler: this.functions.ownerApi, pathPatterns: props.ownerApiPaths ?? EXAMPLE_API_PATHS },
      logBucket: logs.bucket,
      certificateArn: props.certificateArn,
      domainName: props.keyApiDomainName,
    });
    this.userApiGateway = new UserApiGateway(this, 'UserApiGateway', {
      stage,
      userApi: this.functions.userApi,
      userPool: this.userDirectory.userPool,
      allowedOrigins,
      logRetention,
      billing: props.billing !== undefined,
    });
    if (props.billing) {
      this.billing = new Billing(this, 'Billing', {
        stage,
        tables: this.tables,
        userApi: this.functions.userApi,
        // Checkout and the customer portal send the owner back to the page.
        returnUrl: this.web.origin,
        meterId: props.billing.meterId,
        ...(props.billing.meterEventName !== undefined
          ? { meterEventName: props.billing.meterEventName }
          : {}),
        logRetention,
        ...(props.applicationLogLevel !== undefined
          ? { applicationLogLevel: props.applicationLogLevel }
          : {}),
        ...(props.dataRemovalPolicy !== undefined ? { removalPolicy: props.dataRemovalPolicy } : {}),
      });
    }
    // The page's CSP lets it call exactly these (contracts/web-config.ts), as the local site's does.
    this.web.allowConnections([
      `https://cognito-idp.${this.region}.${this.urlSuffix}`,
      `https://${this.userApiGateway.api.restApiId}.execute-api.${this.region}.${this.urlSuffix}`,
      this.keyApiEndpoint.url,
    ]);
    this.webAcls = this.#webAcls(stage, { ...DEFAULT_RATE_LIMITS, ...props.rateLimits });
    if (props.webAssetsPath) this.#deployPage(props.webAssetsPath);

    this.operations = new OperationsDashboard(this, 'Operations', {
      stage,
      ...this.functions,
      usageTransport: this.usageTransport,
      endpoint: this.keyApiEndpoint,
      tables: this.tables,
      ...(this.billing
        ? { billing: { webhook: this.billing.webhook, schedule: this.billing.schedule } }
        : {}),
      alarmEmail: props.alarmEmail,
    });
    this.#outputs();
  }

  /** The five deployables, with the defaults of TollgateFunction and what each needs besides. */
  #functions(
    stage: string,
    logRetention: RetentionDays,
    props: TollgateStackProps,
  ): TollgateStack['functions'] {
    const applicationLogLevel = props.applicationLogLevel ?? ApplicationLogLevel.INFO;
    const keyData = { [ENV.keyPrefix]: props.keyPrefix ?? DEFAULT_KEY_PREFIX };
    const fn = (id: string, service: TollgateFunction['service'], description: string, extra = {}) =>
      new TollgateFunction(this, id, {
        stage,
        service,
        description,
        logRetention,
        applicationLogLevel,
        ...extra,
      });
    return {
      keyApi: fn(
        'KeyApi',
        SERVICE_NAMES.keyApi,
        'Checks API keys behind the ALB and publishes usage events',
        {
          environment: keyData,
          // The key cache lives in the container; more memory also means more CPU for hashing.
          memorySize: 512,
          timeout: Duration.seconds(5),
          // A cap on what a flood can take from the account, and a floor nothing else can take.
          ...(props.keyApiReservedConcurrency === 'none'
            ? {}
            : {
                reservedConcurrentExecutions:
                  props.keyApiReservedConcurrency ?? DEFAULT_KEY_API_RESERVED_CONCURRENCY,
              }),
        },
      ),
      metering: fn('Metering', SERVICE_NAMES.metering, 'Counts usage events exactly once, per key and day', {
        // Sized for the largest batch (10,000 records, up to Lambda's 6 MB payload): parsing and
        // validating it and holding its aggregates; memory also buys the CPU for that.
        memorySize: UsageTransport.CONSUMER_MEMORY_MB,
        timeout: UsageTransport.consumerTimeout(),
      }),
      userApi: fn(
        'UserApi',
        SERVICE_NAMES.userApi,
        'Account owners manage keys and read usage; admins manage plans and accounts',
        { environment: keyData },
      ),
      authTriggers: fn(
        'AuthTriggers',
        SERVICE_NAMES.authTriggers,
        'Provisions account and first key on sign-up',
        {
          environment: keyData,
        },
      ),
      ownerApi: fn(
        'OwnerApi',
        SERVICE_NAMES.exampleApi,
        'The owner API behind the ALB: checks API keys itself (the gate) and publishes usage events',
        {
          entry: props.ownerApiEntry ?? EXAMPLE_API_ENTRY,
          environment: keyData,
          // Like key-api: the gate's key cache lives in the container, and hashing wants CPU.
          memorySize: 512,
        },
      ),
    };
  }

  /**
   * Each function's access to the tables and the usage transport, least privilege. Each grant also
   * sets the variables the function's config schema reads for that resource.
   */
  #grantDataAccess({ alertFromAddress, ledgerFlush }: TollgateStackProps): void {
    const { keyApi, metering, userApi, authTriggers, ownerApi } = this.functions;
    // key-api and the owner API are both gates: the key check, the plan's limits (the account's
    // standing, its plan, its counted usage for a quota), the usage events, and the summaries of
    // what they refused. No other write.
    this.tables.allowGateKeyCheck(keyApi);
    this.tables.allowKeyDayCountRead(keyApi);
    this.tables.allowRefusalSummaries(keyApi);
    this.usageTransport.allowPublish(keyApi);

    this.tables.allowGateKeyCheck(ownerApi);
    this.tables.allowRefusalSummaries(ownerApi);
    this.usageTransport.allowPublish(ownerApi);

    this.usageTransport.attachConsumer(metering);
    this.tables.allowUsageCounting(metering, this.transport);
    // Over SQS, numbered events are claimed in the ledger, flushed by batches and by its backstop.
    if (this.transport === 'sqs') attachSqsLedger(metering, this.tables, ledgerFlush);
    // Event provenance: a usage event is counted only for the account its key belongs to.
    this.tables.allowProvenanceCheck(metering);
    // The redrive (npm run usage:redrive): its role reads counters to tell what a given-up Kinesis
    // batch already counted; on Kinesis, metering also counts the redrive queue (marks, as on SQS).
    this.usageTransport.allowRedriveCounterReads(this.tables.usage);
    if (this.transport === 'kinesis') {
      this.tables.allowUsageCounting(metering, 'sqs');
      // The ledger is the SQS transport's: the redrive queue keeps the marks its grant allows.
      metering.function.addEnvironment(ENV.sqsDedupe, 'marks');
    }
    // Quota alerts only with a sender: without one, metering keeps to counting (and the service,
    // missing the variables, sends none).
    if (alertFromAddress !== undefined) {
      this.tables.allowQuotaAlerts(metering);
      allowAlertEmail(metering, alertFromAddress);
    }

    this.tables.allowAccountProvisioning(authTriggers);

    this.tables.allowKeyManagement(userApi);
    this.tables.allowUsageRead(userApi);
    // The admin routes: only members of the admins group get past user-api's own check.
    this.tables.allowPlanAdministration(userApi);
  }

  /** Account owners' sign-up and sign-in, and the functions that read the pool. */
  #userDirectory(stage: string, props: TollgateStackProps): UserDirectory {
    const { metering, userApi, authTriggers } = this.functions;
    const directory = new UserDirectory(this, 'Users', {
      stage,
      postConfirmation: authTriggers,
      removalPolicy: props.dataRemovalPolicy,
    });
    directory.allowTokenVerification(userApi);
    // Quota alerts read the owner's current address from the pool when they are sent.
    if (props.alertFromAddress !== undefined) allowAlertAddressLookup(metering, directory.userPool);
    return directory;
  }

  /** The browser origins the APIs answer: the page's own first, API Gateway's own error answers can name only one. */
  #allowBrowserOrigins(extraOrigins: readonly string[] | undefined): string[] {
    const allowedOrigins = [...this.web.origins, ...(extraOrigins ?? [])];
    const origins = allowedOrigins.join(',');
    this.functions.keyApi.function.addEnvironment(ENV.allowedOrigins, origins);
    this.functions.userApi.function.addEnvironment(ENV.allowedOrigins, origins);
    return allowedOrigins;
  }

  /** The built page, with the stack's endpoints as its config.json. */
  #deployPage(webAssetsPath: string): void {
    this.web.deploy(webAssetsPath, {
      region: this.region,
      cognito: {
        userPoolId: this.userDirectory.userPool.userPoolId,
        clientId: this.userDirectory.webClient.userPoolClientId,
        passwordPolicy: { ...userPool.passwordPolicy },
      },
      userApi: this.userApiGateway.url,
      keyApi: this.keyApiEndpoint.url,
      // The functions here run with the shipped windows (neither variable is set).
      windows: { keyCacheFreshMs: DEFAULT_KEY_CACHE_WINDOWS.freshMs, rollGraceMs: DEFAULT_ROLL_GRACE_MS },
    });
  }

  /** What the web page and the operator need; `cdk deploy --outputs-file` collects them. */
  #outputs(): void {
    const outputs: Record<string, { value: string; description: string }> = {
      Region: { value: this.region, description: 'AWS region of the stack' },
      KeyApiUrl: {
        value: this.keyApiEndpoint.url,
        description:
          'Key API (ALB): send API keys here; the owner API answers its paths (ownerApiPaths) on it too',
      },
      UserApiUrl: { value: this.userApiGateway.url, description: 'User API (API Gateway), for the web page' },
      UserPoolId: { value: this.userDirectory.userPool.userPoolId, description: 'Cognito user pool id' },
      UserPoolClientId: {
        value: this.userDirectory.webClient.userPoolClientId,
        description: 'Cognito app client id of the web page',
      },
      WebUrl: { value: this.web.origin, description: 'The web page (CloudFront)' },
      WebBucketName: { value: this.web.bucket.bucketName, description: 'Bucket the web page is served from' },
      WebDistributionId: {
        value: this.web.distribution.distributionId,
        description: 'CloudFront distribution of the web page (for cache invalidations)',
      },
      UsageDeadLetterQueueUrl: {
        value: this.usageTransport.deadLetterQueue.queueUrl,
        description: 'Refused or failed usage records, with reasons',
      },
      UsageRedriveRoleArn: {
        value: this.usageTransport.redriveRole.roleArn,
        description: 'Role npm run usage:redrive assumes on AWS (docs/metering.md, runbook)',
      },
      UsageRedriveQueueUrl: {
        value: this.usageTransport.redriveTarget.queueUrl,
        description: 'Where npm run usage:redrive sends dead-lettered usage back to metering',
      },
      ...(this.usageTransport.stream
        ? {
            UsageStreamName: {
              value: this.usageTransport.stream.streamName,
              description: 'The usage stream, which the redrive reads given-up batches back from',
            },
          }
        : {}),
      AlarmTopicArn: { value: this.operations.alarmTopic.topicArn, description: 'Subscribe to get alarms' },
      DashboardName: {
        value: this.operations.dashboard.dashboardName,
        description: 'CloudWatch dashboard of the stage',
      },
      ...(this.billing
        ? {
            BillingWebhookUrl: {
              value: this.billing.webhookUrl,
              description: "Stripe webhook endpoint's URL (docs/billing.md: the events to send)",
            },
            StripeSecretKeyArn: {
              value: this.billing.secrets.stripeSecretKey.secretArn,
              description: 'Put the Stripe secret key here (aws secretsmanager put-secret-value)',
            },
            StripeWebhookSecretArn: {
              value: this.billing.secrets.webhookSecret.secretArn,
              description: "Put the webhook endpoint's signing secret (whsec_…) here",
            },
          }
        : {}),
    };
    for (const [name, output] of Object.entries(outputs)) new CfnOutput(this, name, output);
  }

  /**
   * One REGIONAL web ACL per front door (their rate limits differ): the ALB, the user API's stage
   * (a REST API: WAF attaches to REST API stages, not to HTTP APIs) and the user pool, which the
   * page calls directly for sign-up and sign-in. CloudFront's static page has none (see web-hosting).
   */
  #webAcls(stage: string, limits: RateLimits): TollgateStack['webAcls'] {
    const keyApi = new RegionalWebAcl(this, 'KeyApiWebAcl', {
      name: `tollgate-${stage}-key-api`,
      description: 'Tollgate key API, ALB: per-IP rate limit, AWS common and known-bad-inputs rules',
      rateLimit: limits.keyApi,
      // The key API's clients are programs: an owner API may take bodies over the rule's 8 KB, and
      // an HTTP library that sends no User-Agent is not an attack. Both are counted, not blocked.
      countOnlyCommonRules: ['SizeRestrictions_BODY', 'NoUserAgent_HEADER'],
    });
    keyApi.associate('LoadBalancer', this.keyApiEndpoint.loadBalancer.loadBalancerArn);

    const userApi = new RegionalWebAcl(this, 'UserApiWebAcl', {
      name: `tollgate-${stage}-user-api`,
      description:
        'Tollgate user API, API Gateway stage: per-IP rate limit, AWS common and known-bad-inputs rules',
      rateLimit: limits.userApi,
    });
    const apiStage = this.userApiGateway.api.deploymentStage;
    userApi.associate('Stage', apiStage.stageArn, apiStage);

    const userPool = new RegionalWebAcl(this, 'UserPoolWebAcl', {
      name: `tollgate-${stage}-user-pool`,
      description: 'Tollgate user pool, Cognito: per-IP rate limit, AWS common and known-bad-inputs rules',
      rateLimit: limits.userPool,
    });
    userPool.associate('UserPool', this.userDirectory.userPool.userPoolArn);
    return { keyApi, userApi, userPool };
  }
}
