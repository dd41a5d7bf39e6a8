import { join, resolve } from 'node:path';
import { Aspects, CfnResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  CfnFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type CfnLogGroup, LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import type { EnvName } from '../../../contracts/config';
import { METRICS_NAMESPACE, type SERVICE_NAMES } from '../../../contracts/metric-names';
import { REPO_ROOT } from '../paths';

export type ServiceName = (typeof SERVICE_NAMES)[keyof typeof SERVICE_NAMES];

/** Every function's logs: JSON, so that Lambda can filter them by level. */
const FUNCTION_LOG_FORMAT = LoggingFormat.JSON;
/** Lambda's own lines from WARN up: not the START, END and REPORT lines of every invocation. */
const FUNCTION_SYSTEM_LOG_LEVEL = SystemLogLevel.WARN;

/**
 * The application log levels a Tollgate function may run at: INFO or more detailed. Powertools'
 * EMF metric lines carry no level, so Lambda files them as INFO; at WARN or above it would drop
 * every metric with the INFO logs.
 */
export type FunctionLogLevel =
  | ApplicationLogLevel.TRACE
  | ApplicationLogLevel.DEBUG
  | ApplicationLogLevel.INFO;

/** How every function is bundled: by the local esbuild (never Docker), as an ESM file with source maps. */
const BUNDLING: BundlingOptions = {
  forceDockerBundling: false,
  format: OutputFormat.ESM,
  target: 'node22',
  // Prefer packages' ESM builds; the banner gives CommonJS dependencies bundled into an ESM
  // file the `require` they expect.
  mainFields: ['module', 'main'],
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  minify: true,
  // Error classes are told apart by name (e.g. DependencyError, SDK throttling errors).
  keepNames: true,
  sourceMap: true,
  sourcesContent: false,
  // Bundle the AWS SDK too: the functions then run the SDK version the tests ran, not
  // whichever one the runtime ships this month.
  externalModules: [],
};

export interface TollgateFunctionProps {
  /** Part of the function and log group names (`tollgate-<stage>-<service>`). */
  readonly stage: string;
  /**
   * The deployable: its handler is `services/<service>/handler.ts` (export `handler`) unless
   * `entry` says otherwise, and it is the Powertools service name, i.e. the `service` dimension of
   * its metrics.
   */
  readonly service: ServiceName;
  /**
   * The function's own part of its name, for a deployable with more than one function (the billing
   * jobs' webhook and schedule): `tollgate-<stage>-<service>-<name>`.
   * @default - none: `tollgate-<stage>-<service>`
   */
  readonly name?: string;
  /**
   * The handler file (export `handler`), absolute or from the repository root, for a deployable
   * that lives outside services/ (an owner's API behind the gate). It must lie inside the
   * repository: the bundle is built from there, with its lock file.
   * @default - `services/<service>/handler.ts`
   */
  readonly entry?: string;
  readonly description: string;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default Duration.seconds(10) */
  readonly timeout?: Duration;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Executions reserved for the function: both the most it may run at once and a share of the
   * account's pool no other function can take.
   * @default - none: it shares the account's unreserved pool
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Lowest level of the function's own logs that Lambda sends to CloudWatch Logs.
   * @default ApplicationLogLevel.INFO
   */
  readonly applicationLogLevel?: FunctionLogLevel;
  /**
   * Variables that belong to no resource, by their names in contracts/config.ts (`ENV`). Resource
   * names, URLs and ARNs are set by the helper that grants access to the resource (e.g.
   * `DataTables.allowGateKeyCheck`), never here.
   * @default - none
   */
  readonly environment?: Readonly<Partial<Record<EnvName, string>>>;
}

/**
 * One Tollgate Lambda function with the defaults every deployable shares: Node.js 22 on arm64,
 * an ESM bundle built by the local esbuild (never Docker), source maps, Powertools settings, JSON
 * logs filtered by level and a log group with a retention. Its role starts with nothing but writing
 * to that log group; every other permission is granted by the construct that owns the resource.
 */
export class TollgateFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;
  readonly service: ServiceName;

  constructor(scope: Construct, id: string, props: TollgateFunctionProps) {
    super(scope, id);
    this.service = props.service;
    const functionName = `tollgate-${props.stage}-${props.service}${props.name ? `-${props.name}` : ''}`;
    this.logGroup = this.#logGroup(functionName, props.logRetention);
    const role = this.#role(functionName);
    this.function = this.#function(functionName, role, props);
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime every handler is built for (docs/development.md: Lambda runs Node.js 22.x) and the ' +
        'one the local stack and tests are run against; moving to a newer runtime is a deliberate change.',
    });
  }

  #logGroup(functionName: string, retention: RetentionDays | undefined): LogGroup {
    return new LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: retention ?? RetentionDays.ONE_MONTH,
      // Named, so a retained group would block redeploying the same stage after a tear-down;
      // the retention already bounds what is kept.
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  #role(functionName: string): iam.Role {
    // An own role instead of AWSLambdaBasicExecutionRole: that managed policy may write to any
    // log group in the account, this one only to the function's own.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${functionName}`,
    });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`${this.logGroup.logGroupArn}:log-stream:*`],
      }),
    );
    const logGroupId = Stack.of(this).getLogicalId(this.logGroup.node.defaultChild as CfnLogGroup);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logGroupId}.Arn>:log-stream:*]`,
      reason:
        'Log streams are created by Lambda with generated names; the wildcard covers only the streams of the ' +
        "function's own log group.",
    });
    return role;
  }

  #function(functionName: string, role: iam.Role, props: TollgateFunctionProps): NodejsFunction {
    return new NodejsFunction(this, 'Function', {
      functionName,
      description: props.description,
      entry: resolve(REPO_ROOT, props.entry ?? join('services', props.service, 'handler.ts')),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(10),
      ...(props.reservedConcurrentExecutions !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
        : {}),
      role,
      logGroup: this.logGroup,
      // JSON logs let Lambda filter by level. System level WARN keeps the START, END and REPORT
      // lines of every invocation (about 270 bytes each time) out of CloudWatch Logs: durations,
      // errors, throttles and concurrency stay in Lambda's own metrics; switch a function to INFO
      // when its per-invocation REPORT lines (init duration, memory used) are needed.
      // Lambda passes the application level to the function as AWS_LAMBDA_LOG_LEVEL, which
      // Powertools Logger adopts over POWERTOOLS_LOG_LEVEL; so no POWERTOOLS_LOG_LEVEL is set here.
      // Powertools already writes one JSON object per line with the `level` and `timestamp` keys
      // Lambda's filter reads.
      loggingFormat: FUNCTION_LOG_FORMAT,
      systemLogLevelV2: FUNCTION_SYSTEM_LOG_LEVEL,
      applicationLogLevelV2: props.applicationLogLevel ?? ApplicationLogLevel.INFO,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.service,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: BUNDLING,
    });
  }
}

/**
 * Gives the functions aws-cdk-lib adds on the stack's behalf (custom-resource handlers such as the
 * bucket deployment's) the log format and system log level of a TollgateFunction. They only run
 * during deployments, so this is about consistency rather than cost: "every function logs JSON,
 * without platform lines below WARN" then holds with no list of exceptions to keep up to date.
 * A function whose construct configured its logging (every TollgateFunction) is left as it is.
 */
export function jsonLogsForEveryFunction(scope: IConstruct): void {
  Aspects.of(scope).add({
    visit(node) {
      if (!(node instanceof CfnResource) || node.cfnResourceType !== 'AWS::Lambda::Function') return;
      if (node instanceof CfnFunction && node.loggingConfig !== undefined) return;
      node.addPropertyOverride('LoggingConfig.LogFormat', FUNCTION_LOG_FORMAT);
      node.addPropertyOverride('LoggingConfig.SystemLogLevel', FUNCTION_SYSTEM_LOG_LEVEL);
    },
  });
}
