import { join } from 'node:path';
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type CfnLogGroup, LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, type SERVICE_NAMES } from '../../../services/shared/metric-names';
import { REPO_ROOT } from '../config';

export type ServiceName = (typeof SERVICE_NAMES)[keyof typeof SERVICE_NAMES];

export interface TollgateFunctionProps {
  /** Part of the function and log group names (`tollgate-<stage>-<service>`). */
  readonly stage: string;
  /**
   * The deployable: its handler is `services/<service>/handler.ts` (export `handler`), and it is
   * the Powertools service name, i.e. the `service` dimension of its metrics.
   */
  readonly service: ServiceName;
  readonly description: string;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default Duration.seconds(10) */
  readonly timeout?: Duration;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Variables that belong to no resource. Resource names, URLs and ARNs are set by the helper
   * that grants access to the resource (e.g. `DataTables.allowKeyLookup`), never here.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
}

/**
 * One Tollgate Lambda function with the defaults every deployable shares: Node.js 22 on arm64,
 * an ESM bundle built by the local esbuild (never Docker), source maps, Powertools settings and a
 * log group with a retention. Its role starts with nothing but writing to that log group; every
 * other permission is granted by the construct that owns the resource.
 */
export class TollgateFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;
  readonly service: ServiceName;

  constructor(scope: Construct, id: string, props: TollgateFunctionProps) {
    super(scope, id);
    this.service = props.service;
    const functionName = `tollgate-${props.stage}-${props.service}`;

    this.logGroup = new LogGroup(this, 'Logs', {
      logGroupName: `/aws/lambda/${functionName}`,
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      // Named, so a retained group would block redeploying the same stage after a tear-down;
      // the retention already bounds what is kept.
      removalPolicy: RemovalPolicy.DESTROY,
    });

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

    this.function = new NodejsFunction(this, 'Function', {
      functionName,
      description: props.description,
      entry: join(REPO_ROOT, 'services', props.service, 'handler.ts'),
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(10),
      role,
      logGroup: this.logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.service,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        // Prefer packages' ESM builds; the banner gives CommonJS dependencies bundled into an ESM
        // file the `require` they expect.
        mainFields: ['module', 'main'],
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        minify: true,
        // Error classes are told apart by name (e.g. DependencyError, SDK throttling errors).
        keepNames: true,
        sourceMap: true,
        sourcesContent: false,
        // Bundle the AWS SDK too: the functions then run the SDK version the tests ran, not
        // whichever one the runtime ships this month.
        externalModules: [],
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime the design fixes for every handler (docs: DESIGN.md, AWS section) and the ' +
        'one the local stack and tests are run against; moving to a newer runtime is a deliberate change.',
    });
  }
}
