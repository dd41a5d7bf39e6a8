import { CfnOutput, Duration, type RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import { ApplicationLogLevel } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { SERVICE_NAMES } from '../../services/shared/metric-names';
import { userPool } from '../resources';
import type { Transport } from './config';
import { DataTables } from './constructs/data-tables';
import { KeyApiEndpoint } from './constructs/key-api-endpoint';
import { LogBucket } from './constructs/log-bucket';
import { OperationsDashboard } from './constructs/operations-dashboard';
import {
  type FunctionLogLevel,
  jsonLogsForEveryFunction,
  TollgateFunction,
} from './constructs/tollgate-function';
import { UsageTransport } from './constructs/usage-transport';
import { UserApiGateway } from './constructs/user-api-gateway';
import { UserDirectory } from './constructs/user-directory';
import { WebHosting } from './constructs/web-hosting';

export interface TollgateStackProps extends StackProps {
  /**
   * Part of every resource name (`tollgate-<stage>-…`), like the local stack's `local`.
   * @default 'prod'
   */
  readonly stage?: string;
  /**
   * How usage events travel from key-api to metering.
   * @default 'sqs'
   */
  readonly transport?: Transport;
  /**
   * ACM certificate for the key API's HTTPS listener.
   * @default - plain HTTP on port 80
   */
  readonly certificateArn?: string;
  /**
   * The key API's DNS name (pointed at the ALB by you), for the reported URL.
   * @default - the ALB's DNS name
   */
  readonly keyApiDomainName?: string;
  /**
   * Custom domain names for the web page.
   * @default - the CloudFront domain only
   */
  readonly webDomainNames?: readonly string[];
  /**
   * ACM certificate in us-east-1 for `webDomainNames`.
   * @default - CloudFront's default certificate
   */
  readonly webCertificateArn?: string;
  /**
   * Browser origins allowed to call the APIs besides the web page's own (e.g. a local dev server).
   * @default - none
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Prefix of every minted API key.
   * @default 'tg'
   */
  readonly keyPrefix?: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Lowest level of the functions' own logs sent to CloudWatch Logs (Lambda's platform lines are
   * always filtered to WARN).
   * @default ApplicationLogLevel.INFO
   */
  readonly applicationLogLevel?: FunctionLogLevel;
  /**
   * Fate of the tables and the user pool when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly dataRemovalPolicy?: RemovalPolicy;
  /**
   * Subscribed to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Built web page to upload (a directory with index.html).
   * @default - the bucket and distribution are created empty
   */
  readonly webAssetsPath?: string;
}

/**
 * Tollgate on AWS: the same handlers as the local stack, wired to the resources of
 * infra/resources.ts. See docs/deploy.md.
 */
export class TollgateStack extends Stack {
  readonly transport: Transport;
  readonly functions: {
    readonly keyApi: TollgateFunction;
    readonly metering: TollgateFunction;
    readonly userApi: TollgateFunction;
    readonly authTriggers: TollgateFunction;
  };
  readonly tables: DataTables;
  readonly usageTransport: UsageTransport;
  readonly userDirectory: UserDirectory;
  readonly keyApiEndpoint: KeyApiEndpoint;
  readonly userApiGateway: UserApiGateway;
  readonly web: WebHosting;
  readonly operations: OperationsDashboard;

  constructor(scope: Construct, id: string, props: TollgateStackProps = {}) {
    super(scope, id, props);
    const stage = props.stage ?? 'prod';
    this.transport = props.transport ?? 'sqs';
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const applicationLogLevel = props.applicationLogLevel ?? ApplicationLogLevel.INFO;
    const keyData = { TOLLGATE_KEY_PREFIX: props.keyPrefix ?? 'tg' };

    const logs = new LogBucket(this, 'AccessLogs');
    this.tables = new DataTables(this, 'Tables', { stage, removalPolicy: props.dataRemovalPolicy });
    this.usageTransport = new UsageTransport(this, 'UsageTransport', { stage, transport: this.transport });

    const fn = (id: string, service: TollgateFunction['service'], description: string, extra = {}) =>
      new TollgateFunction(this, id, {
        stage,
        service,
        description,
        logRetention,
        applicationLogLevel,
        ...extra,
      });
    this.functions = {
      keyApi: fn(
        'KeyApi',
        SERVICE_NAMES.keyApi,
        'Checks API keys behind the ALB and publishes usage events',
        {
          environment: keyData,
          // The key cache lives in the container; more memory also means more CPU for hashing.
          memorySize: 512,
          timeout: Duration.seconds(5),
        },
      ),
      metering: fn('Metering', SERVICE_NAMES.metering, 'Counts usage events exactly once, per key and day', {
        timeout: UsageTransport.consumerTimeout(),
      }),
      userApi: fn('UserApi', SERVICE_NAMES.userApi, 'Account owners manage keys and read usage', {
        environment: keyData,
      }),
      authTriggers: fn(
        'AuthTriggers',
        SERVICE_NAMES.authTriggers,
        'Provisions account and first key on sign-up',
        {
          environment: keyData,
        },
      ),
    };
    const { keyApi, metering, userApi, authTriggers } = this.functions;
    // The same log format and platform-line filter for the handlers aws-cdk-lib adds itself.
    jsonLogsForEveryFunction(this);

    // Each grant also sets the variables the function's config schema reads for that resource.
    this.tables.allowKeyLookup(keyApi);
    this.tables.allowKeyDayCountRead(keyApi);
    this.usageTransport.allowPublish(keyApi);

    this.usageTransport.attachConsumer(metering);
    this.tables.allowUsageCounting(metering, this.transport);

    this.tables.allowAccountProvisioning(authTriggers);

    this.tables.allowKeyManagement(userApi);
    this.tables.allowUsageRead(userApi);

    this.userDirectory = new UserDirectory(this, 'Users', {
      stage,
      postConfirmation: authTriggers,
      removalPolicy: props.dataRemovalPolicy,
    });
    this.userDirectory.allowTokenVerification(userApi);

    this.web = new WebHosting(this, 'Web', {
      logBucket: logs.bucket,
      domainNames: props.webDomainNames,
      certificateArn: props.webCertificateArn,
    });
    // The page's own origin first: API Gateway's own error answers can name only one.
    const allowedOrigins = [...this.web.origins, ...(props.allowedOrigins ?? [])];
    const origins = allowedOrigins.join(',');
    keyApi.function.addEnvironment('TOLLGATE_ALLOWED_ORIGINS', origins);
    userApi.function.addEnvironment('TOLLGATE_ALLOWED_ORIGINS', origins);

    this.keyApiEndpoint = new KeyApiEndpoint(this, 'KeyApiEndpoint', {
      keyApi,
      logBucket: logs.bucket,
      certificateArn: props.certificateArn,
      domainName: props.keyApiDomainName,
    });
    this.userApiGateway = new UserApiGateway(this, 'UserApiGateway', {
      stage,
      userApi,
      userPool: this.userDirectory.userPool,
      allowedOrigins,
      logRetention,
    });

    if (props.webAssetsPath) {
      this.web.deploy(props.webAssetsPath, {
        region: this.region,
        cognito: {
          userPoolId: this.userDirectory.userPool.userPoolId,
          clientId: this.userDirectory.webClient.userPoolClientId,
          passwordPolicy: { ...userPool.passwordPolicy },
        },
        userApi: this.userApiGateway.url,
        keyApi: this.keyApiEndpoint.url,
      });
    }

    this.operations = new OperationsDashboard(this, 'Operations', {
      stage,
      keyApi,
      metering,
      userApi,
      authTriggers,
      usageTransport: this.usageTransport,
      endpoint: this.keyApiEndpoint,
      tables: this.tables,
      alarmEmail: props.alarmEmail,
    });

    // What the web page and the operator need; `cdk deploy --outputs-file` collects them.
    const outputs: Record<string, { value: string; description: string }> = {
      Region: { value: this.region, description: 'AWS region of the stack' },
      KeyApiUrl: { value: this.keyApiEndpoint.url, description: 'Key API (ALB): send API keys here' },
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
      AlarmTopicArn: { value: this.operations.alarmTopic.topicArn, description: 'Subscribe to get alarms' },
      DashboardName: {
        value: this.operations.dashboard.dashboardName,
        description: 'CloudWatch dashboard of the stage',
      },
    };
    for (const [name, output] of Object.entries(outputs)) new CfnOutput(this, name, output);
  }
}
