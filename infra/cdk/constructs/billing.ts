import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as events from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { BILLING_WEBHOOK_PATH, DEFAULT_EXPORT_INTERVAL_MS } from '../../../contracts/billing';
import { ENV } from '../../../contracts/config';
import { SERVICE_NAMES } from '../../../contracts/metric-names';
import type { DataTables } from './data-tables';
import { type FunctionLogLevel, TollgateFunction } from './tollgate-function';

/** The path Stripe delivers events to (services/billing-jobs/webhook.ts serves it). */

/** What each scheduled run of services/billing-jobs/schedule-handler.ts gets as its event. */
export const BILLING_SCHEDULES = {
  /** Every interval: each customer's due days, and the past-due grace sweep. */
  export: { job: 'export', schedule: events.Schedule.rate(Duration.millis(DEFAULT_EXPORT_INTERVAL_MS)) },
  /**
   * Daily, once yesterday (UTC) is closed and its last export ran: billed = metered per account and
   * day, short days re-pushed.
   */
  reconcile: { job: 'reconcile', schedule: events.Schedule.cron({ hour: '2', minute: '30' }) },
} as const;

export interface BillingProps {
  /** Part of the function, secret, API and rule names. */
  readonly stage: string;
  readonly tables: DataTables;
  /** user-api: its billing routes (checkout, portal, GET /me/billing) call Stripe with the secret key. */
  readonly userApi: TollgateFunction;
  /** Where Stripe's Checkout and customer portal send the owner back: the web page. */
  readonly returnUrl: string;
  /** The Stripe meter usage is reported to (`mtr_…`): docs/billing.md, "Deploying billing". */
  readonly meterId: string;
  /** @default - the jobs' default, DEFAULT_METER_EVENT_NAME */
  readonly meterEventName?: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /** @default ApplicationLogLevel.INFO */
  readonly applicationLogLevel?: FunctionLogLevel;
  /**
   * What happens to the two secrets when the stack is deleted, as for the tables.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Billing with Stripe (docs/billing.md): the Stripe secret key and webhook signing secret in
 * Secrets Manager (created with a placeholder the operator replaces; functions get their ARNs,
 * never their values), the webhook behind its own HTTP API, and the scheduled export and
 * reconciliation (EventBridge).
 *
 * The webhook has an HTTP API of its own, not a route on user-api's REST API: that API's web ACL
 * blocks bodies over 8 KB (AWS common rule set), which Stripe's events (an invoice with its lines)
 * exceed, and a refused delivery is retried for days, then Stripe disables the endpoint. Stripe
 * signs every delivery; the handler refuses a bad signature with 400 before anything else.
 */
export class Billing extends Construct {
  readonly webhook: TollgateFunction;
  readonly schedule: TollgateFunction;
  readonly webhookApi: apigwv2.HttpApi;
  readonly secrets: {
    readonly stripeSecretKey: secretsmanager.Secret;
    readonly webhookSecret: secretsmanager.Secret;
  };
  readonly rules: { readonly export: events.Rule; readonly reconcile: events.Rule };

  constructor(scope: Construct, id: string, props: BillingProps) {
    super(scope, id);
    this.secrets = this.#secrets(props);
    const fn = (fnId: string, name: string, description: string, extra: Partial<TollgateFunctionExtra>) =>
      new TollgateFunction(this, fnId, {
        stage: props.stage,
        service: SERVICE_NAMES.billing,
        name,
        entry: `services/billing-jobs/${name}-handler.ts`,
        description,
        ...(props.logRetention !== undefined ? { logRetention: props.logRetention } : {}),
        ...(props.applicationLogLevel !== undefined
          ? { applicationLogLevel: props.applicationLogLevel }
          : {}),
        environment: {
          [ENV.billingMeterId]: props.meterId,
          ...(props.meterEventName !== undefined ? { [ENV.billingMeterEvent]: props.meterEventName } : {}),
        },
        ...extra,
      });
    // Stripe waits a few seconds for an answer, then counts the delivery failed and retries it.
    this.webhook = fn('Webhook', 'webhook', "Applies Stripe's signed subscription and invoice events", {
      timeout: Duration.seconds(15),
    });
    // An export reads every customer's due days and pushes them; done well within its interval.
    this.schedule = fn('Schedule', 'schedule', 'Exports usage to Stripe and reconciles billed with metered', {
      memorySize: 512,
      timeout: Duration.minutes(4),
    });
    this.#grant(props);
    this.webhookApi = this.#webhookApi(props);
    this.rules = this.#rules(props.stage);
  }

  /**
   * Two secrets, each created with a generated placeholder: `aws secretsmanager put-secret-value`
   * puts the real one (docs/billing.md). A function reads one by its ARN when it first needs it
   * (Powertools Parameters, cached), so neither value is ever in a template, an environment or a log.
   */
  #secrets(props: BillingProps): Billing['secrets'] {
    const secret = (secretId: string, name: string, description: string) => {
      const created = new secretsmanager.Secret(this, secretId, {
        secretName: `tollgate/${props.stage}/${name}`,
        description,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
      Validations.of(created).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'A Stripe key is issued and rolled by Stripe (Dashboard, Developers: roll key; a webhook endpoint: roll ' +
          'secret), not generated by a rotation Lambda; the operator puts the new value (docs/billing.md).',
      });
      return created;
    };
    return {
      stripeSecretKey: secret(
        'StripeSecretKey',
        'stripe-secret-key',
        'Stripe secret API key (sk_live_… or sk_test_…, or a restricted key): put the real value after deploying',
      ),
      webhookSecret: secret(
        'StripeWebhookSecret',
        'stripe-webhook-secret',
        "Signing secret (whsec_…) of the Stripe webhook endpoint at the stack's BillingWebhookUrl",
      ),
    };
  }

  /**
   * Who reads which secret: the webhook both (signatures, and Stripe calls), the schedule and
   * user-api the secret key only. The jobs' config names both ARNs; the schedule never asks for
   * the webhook secret (services/billing/secrets.ts reads a secret when it is first used).
   */
  #grant(props: BillingProps): void {
    const { stripeSecretKey, webhookSecret } = this.secrets;
    for (const job of [this.webhook, this.schedule]) {
      props.tables.allowBillingJobs(job);
      job.function.addEnvironment(ENV.stripeSecretKeyArn, stripeSecretKey.secretArn);
      job.function.addEnvironment(ENV.stripeWebhookSecretArn, webhookSecret.secretArn);
      stripeSecretKey.grantRead(job.function);
    }
    webhookSecret.grantRead(this.webhook.function);

    props.tables.allowBillingCustomer(props.userApi);
    props.userApi.function.addEnvironment(ENV.stripeSecretKeyArn, stripeSecretKey.secretArn);
    props.userApi.function.addEnvironment(ENV.billingReturnUrl, props.returnUrl);
    stripeSecretKey.grantRead(props.userApi.function);
  }

  #webhookApi(props: BillingProps): apigwv2.HttpApi {
    const api = new apigwv2.HttpApi(this, 'WebhookApi', {
      apiName: `tollgate-${props.stage}-billing-webhook`,
      description: 'Tollgate billing: Stripe webhook deliveries (signed by Stripe)',
      createDefaultStage: false,
    });
    const accessLogs = new LogGroup(this, 'WebhookAccessLogs', {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    new apigwv2.HttpStage(this, 'WebhookStage', {
      httpApi: api,
      stageName: '$default',
      autoDeploy: true,
      // Stripe sends a few events per subscription change; this is far above that, and a cap on
      // what a flood of forged deliveries (each refused, but each an invocation) can cost.
      throttle: { rateLimit: 20, burstLimit: 40 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.jsonWithStandardFields(),
      },
    });
    const [route] = api.addRoutes({
      path: BILLING_WEBHOOK_PATH,
      methods: [apigwv2.HttpMethod.POST],
      integration: new HttpLambdaIntegration('Webhook', this.webhook.function),
    });
    if (route) {
      for (const rule of ['AwsSolutions-APIG4', 'AwsSolutions-COG4']) {
        Validations.of(route).acknowledge({
          id: rule,
          reason:
            'Stripe authenticates its deliveries by signing them (Stripe-Signature, HMAC-SHA256 over the body with ' +
            'the endpoint secret), not with a token: the handler verifies it with the stripe SDK and answers 400, ' +
            'changing nothing, to a bad or missing signature.',
        });
      }
    }
    return api;
  }

  #rules(stage: string): Billing['rules'] {
    const rule = (
      ruleId: string,
      { job, schedule }: (typeof BILLING_SCHEDULES)[keyof typeof BILLING_SCHEDULES],
    ) =>
      new events.Rule(this, ruleId, {
        ruleName: `tollgate-${stage}-billing-${job}`,
        description: `Runs the billing job "${job}" (services/billing-jobs/schedule-handler.ts)`,
        schedule,
        targets: [
          new LambdaFunction(this.schedule.function, {
            event: events.RuleTargetInput.fromObject({ job }),
            // A run that failed is the next run's work (each is idempotent); no point in a late copy.
            retryAttempts: 1,
            maxEventAge: Duration.minutes(2),
          }),
        ],
      });
    return {
      export: rule('ExportRule', BILLING_SCHEDULES.export),
      reconcile: rule('ReconcileRule', BILLING_SCHEDULES.reconcile),
    };
  }

  /** Where Stripe's webhook endpoint points: `https://<id>.execute-api.<region>.amazonaws.com/billing/webhook`. */
  get webhookUrl(): string {
    return `${this.webhookApi.apiEndpoint}${BILLING_WEBHOOK_PATH}`;
  }
}

type TollgateFunctionExtra = { memorySize: number; timeout: Duration };
