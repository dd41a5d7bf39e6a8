import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ENV } from '../../contracts/config';
import { addComplianceChecks } from '../../infra/cdk/compliance';
import {
  DeploymentConfigError,
  FALLBACK_REGION,
  INSECURE_HTTP_REFUSAL,
  readDeploymentContext,
  stackPropsFromContext,
} from '../../infra/cdk/config';
import { EXAMPLE_API_ENTRY, EXAMPLE_API_PATHS, REPO_ROOT } from '../../infra/cdk/paths';
import { DEFAULT_KEY_API_RESERVED_CONCURRENCY } from '../../infra/cdk/stack-props';

const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';

const noEnv = {};
/** The context as given, nothing added: `npm run synth` with these `-c` settings. */
const strictContextOf = (context: Record<string, unknown>, env: Record<string, string | undefined> = noEnv) =>
  readDeploymentContext(new App({ context }).node, env);
/** The default prod stage, with plain HTTP accepted: every test but the refusal's is about something else. */
const contextOf = (context: Record<string, unknown>, env: Record<string, string | undefined> = noEnv) =>
  strictContextOf({ allowInsecureHttp: 'true', ...context }, env);

describe('plain HTTP on the prod stage', () => {
  it('is refused by default, in one line naming a certificate and allowInsecureHttp', () => {
    expect(() => strictContextOf({})).toThrow(DeploymentConfigError);
    expect(() => strictContextOf({ stage: 'prod', allowInsecureHttp: 'false' })).toThrow(
      INSECURE_HTTP_REFUSAL,
    );
    expect(INSECURE_HTTP_REFUSAL).not.toContain('\n');
    expect(INSECURE_HTTP_REFUSAL).toContain('-c certificateArn=');
    expect(INSECURE_HTTP_REFUSAL).toContain('-c allowInsecureHttp=true');
  });

  it('is allowed when asked for by name (string from -c, or boolean from cdk.json), or not needed with a certificate', () => {
    expect(strictContextOf({ allowInsecureHttp: 'true' }).certificateArn).toBeUndefined();
    expect(strictContextOf({ allowInsecureHttp: true }).allowInsecureHttp).toBe(true);
    expect(strictContextOf({ certificateArn: CERTIFICATE }).certificateArn).toBe(CERTIFICATE);
    expect(() => strictContextOf({ allowInsecureHttp: 'yes' })).toThrow(/allowInsecureHttp/);
  });

  it('is left to the operator on other stages (a warning at synth, no refusal)', () => {
    expect(strictContextOf({ stage: 'dev' }).stage).toBe('dev');
  });

  it('stops `cdk synth` (the app itself) with that line and no stack trace', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'tollgate-refusal-'));
    onTestFinished(() => rmSync(outdir, { recursive: true, force: true }));
    // What `cdk synth` runs (cdk.json's "app"), with the context the CLI would pass: none.
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'infra/cdk/app.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        CDK_OUTDIR: outdir,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([
      `invalid deployment context: certificateArn: ${INSECURE_HTTP_REFUSAL}`,
    ]);
  });
});

describe('deployment context', () => {
  it('defaults to a retained prod stage on SQS over HTTP (when plain HTTP is allowed)', () => {
    const props = stackPropsFromContext(contextOf({}), undefined);
    expect(props).toMatchObject({
      stackName: 'tollgate-prod',
      stage: 'prod',
      transport: 'sqs',
      env: { region: FALLBACK_REGION },
      certificateArn: undefined,
      allowedOrigins: [],
      logRetention: RetentionDays.ONE_MONTH,
      applicationLogLevel: 'INFO',
      dataRemovalPolicy: RemovalPolicy.RETAIN,
      keyApiReservedConcurrency: DEFAULT_KEY_API_RESERVED_CONCURRENCY,
    });
    expect(props.env?.account).toBeUndefined();
  });

  it('reserves concurrency for key-api unless told a number or none', () => {
    expect(stackPropsFromContext(contextOf({ keyApiReservedConcurrency: '50' }), undefined)).toMatchObject({
      keyApiReservedConcurrency: 50,
    });
    expect(stackPropsFromContext(contextOf({ keyApiReservedConcurrency: 'none' }), undefined)).toMatchObject({
      keyApiReservedConcurrency: 'none',
    });
    expect(() => contextOf({ keyApiReservedConcurrency: '0' })).toThrow(/keyApiReservedConcurrency/);
  });

  it(`takes the transport from ${ENV.transport} unless context names one`, () => {
    expect(contextOf({}, { [ENV.transport]: 'kinesis' }).transport).toBe('kinesis');
    expect(contextOf({ transport: 'sqs' }, { [ENV.transport]: 'kinesis' }).transport).toBe('sqs');
  });

  it('sizes the Kinesis stream in shards or puts it on demand, from context', () => {
    expect(contextOf({}).kinesisShards).toBe(1);
    expect(stackPropsFromContext(contextOf({ kinesisShards: '4' }), undefined).kinesisShards).toBe(4);
    expect(stackPropsFromContext(contextOf({ kinesisShards: 'on-demand' }), undefined).kinesisShards).toBe(
      'on-demand',
    );
    expect(() => contextOf({ kinesisShards: 'lots' })).toThrow(DeploymentConfigError);
  });

  it('takes the region from context, then the CDK CLI, then the AWS environment', () => {
    expect(contextOf({ region: 'eu-west-1' }, { CDK_DEFAULT_REGION: 'us-west-2' }).region).toBe('eu-west-1');
    expect(contextOf({}, { CDK_DEFAULT_REGION: 'us-west-2', AWS_REGION: 'eu-central-1' }).region).toBe(
      'us-west-2',
    );
    expect(contextOf({}, { AWS_REGION: 'eu-central-1' }).region).toBe('eu-central-1');
  });

  it('reads -c values, which arrive as strings', () => {
    const context = contextOf({
      stage: 'dev',
      allowedOrigins: 'http://localhost:5173, https://admin.example.com',
      logRetentionDays: '90',
      logLevel: 'debug',
      retainData: 'false',
      webDomainNames: 'app.example.com',
      webCertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/x',
    });
    expect(context).toMatchObject({
      stage: 'dev',
      allowedOrigins: ['http://localhost:5173', 'https://admin.example.com'],
      logRetentionDays: 90,
      logLevel: 'DEBUG',
      retainData: false,
      webDomainNames: ['app.example.com'],
    });
    expect(stackPropsFromContext(context, undefined).dataRemovalPolicy).toBe(RemovalPolicy.DESTROY);
  });

  it('sends quota alerts only when told a sender address, which must be an email address', () => {
    expect(stackPropsFromContext(contextOf({}), undefined).alertFromAddress).toBeUndefined();
    expect(
      stackPropsFromContext(contextOf({ alertFromAddress: '' }), undefined).alertFromAddress,
    ).toBeUndefined();
    expect(
      stackPropsFromContext(contextOf({ alertFromAddress: 'alerts@example.com' }), undefined)
        .alertFromAddress,
    ).toBe('alerts@example.com');
    expect(() => contextOf({ alertFromAddress: 'alerts' })).toThrow(DeploymentConfigError);
    expect(() => contextOf({ alertFromAddress: 'alerts@' })).toThrow(/alertFromAddress/);
  });

  it('deploys billing only when told a Stripe meter id, with its event name if given', () => {
    const billingOf = (context: Record<string, unknown>) =>
      stackPropsFromContext(contextOf(context), undefined).billing;
    expect(billingOf({})).toBeUndefined();
    expect(billingOf({ billingMeterId: '' })).toBeUndefined();
    expect(billingOf({ billingMeterId: 'mtr_61Abc' })).toEqual({ meterId: 'mtr_61Abc' });
    expect(billingOf({ billingMeterId: 'mtr_61Abc', billingMeterEvent: 'api_calls' })).toEqual({
      meterId: 'mtr_61Abc',
      meterEventName: 'api_calls',
    });
    // A price or product id where the meter's belongs, or an event name with no meter to take it.
    expect(() => contextOf({ billingMeterId: 'price_123' })).toThrow(/billingMeterId/);
    expect(() => contextOf({ billingMeterEvent: 'api_calls' })).toThrow(/billingMeterId/);
  });

  it('puts the example API behind the gate unless told of another handler and its paths', () => {
    expect(stackPropsFromContext(contextOf({}), undefined)).toMatchObject({
      ownerApiEntry: EXAMPLE_API_ENTRY,
      ownerApiPaths: EXAMPLE_API_PATHS,
    });
    const props = stackPropsFromContext(
      contextOf({ ownerApiEntry: 'services/key-api/handler.ts', ownerApiPaths: '/api/*, /docs/*,/health' }),
      undefined,
    );
    expect(props.ownerApiEntry).toBe('services/key-api/handler.ts');
    expect(props.ownerApiPaths).toEqual(['/api/*', '/docs/*', '/health']);
  });

  it('refuses an owner API handler outside the repository or missing, and malformed path patterns', () => {
    expect(() => contextOf({ ownerApiEntry: 'examples/none/handler.ts' })).toThrow(/ownerApiEntry/);
    expect(() => contextOf({ ownerApiEntry: '../elsewhere/handler.ts' })).toThrow(/ownerApiEntry/);
    expect(() => contextOf({ ownerApiEntry: 'examples/rates-api' })).toThrow(/ownerApiEntry/);
    expect(() => contextOf({ ownerApiPaths: 'v1/*' })).toThrow(/ownerApiPaths/);
    expect(() => contextOf({ ownerApiPaths: '/v1/rates?base=EUR#x' })).toThrow(/ownerApiPaths/);
    expect(() => contextOf({ ownerApiPaths: `/${'a'.repeat(128)}` })).toThrow(/ownerApiPaths/);
    const many = Array.from({ length: 51 }, (_, i) => `/p${i}`).join(',');
    expect(() => contextOf({ ownerApiPaths: many })).toThrow(/ownerApiPaths: at most 50/);
  });

  it('refuses a bad setting before anything is built, naming it', () => {
    expect(() => contextOf({ transport: 'kafka' })).toThrow(DeploymentConfigError);
    expect(() => contextOf({ transport: 'kafka' })).toThrow(/transport/);
    expect(() => contextOf({ logRetentionDays: '31' })).toThrow(/logRetentionDays/);
    // WARN would also drop the metrics: EMF lines have no level, so Lambda files them as INFO.
    expect(() => contextOf({ logLevel: 'WARN' })).toThrow(/logLevel: TRACE, DEBUG or INFO/);
    expect(() => contextOf({ allowedOrigins: 'not a url' })).toThrow(/allowedOrigins/);
    expect(() => contextOf({ webDomainNames: 'app.example.com' })).toThrow(/webCertificateArn/);
  });
});

describe('compliance checks', () => {
  it('stop synthesis on an unacknowledged cdk-nag error', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'tollgate-nag-'));
    onTestFinished(() => rmSync(outdir, { recursive: true, force: true }));
    const app = new App({ outdir });
    const stack = new Stack(app, 'Bad');
    // No dead-letter queue, no TLS-only policy: AwsSolutions-SQS3 and -SQS4.
    new sqs.Queue(stack, 'Queue', { encryption: sqs.QueueEncryption.SQS_MANAGED });
    addComplianceChecks(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3[\s\S]*AwsSolutions-SQS4/);
  });
});
