import { Duration, Validations } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { type AlarmSpec, alarmSpecs, mapAlarms, type OperationsAlarms } from './operations/alarms';
import { dashboardRows, renderWidget } from './operations/dashboard-widgets';
import { type MonitoredResources, renderMetric } from './operations/metrics';

export interface OperationsDashboardProps extends MonitoredResources {
  /**
   * Subscribed to the alarm topic (the address must confirm the subscription).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * Oldest usage event still waiting (SQS message age or Kinesis iterator age) before alarming.
   * @default Duration.minutes(5)
   */
  readonly maxEventAge?: Duration;
  /**
   * Share of a target group's answers that are 5xx (key-api's, and the owner API's: the function's
   * own or the load balancer's for a failed invocation) before alarming.
   * @default 1 (percent)
   */
  readonly max5xxPercent?: number;
  /**
   * p99 of event time → counted before alarming.
   * @default Duration.minutes(2)
   */
  readonly maxUsageLag?: Duration;
}

/**
 * The operator's view: one dashboard from key checks to counted usage, and the alarms that say
 * usage is not being counted (dead letters, a backlog, a failing consumer, lag), clients are
 * failed (5xx), or the code is failing (internal errors: bugs, not outages). Both are described as
 * data (operations/dashboard-widgets.ts, operations/alarms.ts) and rendered here.
 */
export class OperationsDashboard extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly alarmTopic: sns.Topic;
  readonly alarms: OperationsAlarms<cw.Alarm>;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const prefix = `tollgate-${props.stage}`;
    this.alarmTopic = this.#alarmTopic(prefix, props);

    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: `${prefix}-operations`,
      defaultInterval: Duration.hours(3),
    });
    for (const row of dashboardRows(props)) this.dashboard.addWidgets(...row.map(renderWidget));

    const specs = alarmSpecs(props, {
      maxEventAge: props.maxEventAge ?? Duration.minutes(5),
      max5xxPercent: props.max5xxPercent ?? 1,
      maxUsageLag: props.maxUsageLag ?? Duration.minutes(2),
    });
    this.alarms = mapAlarms(specs, (spec) => this.#alarm(prefix, spec));
  }

  #alarmTopic(prefix: string, props: OperationsDashboardProps): sns.Topic {
    const topic = new sns.Topic(this, 'AlarmTopic', {
      topicName: `${prefix}-alarms`,
      displayName: `Tollgate ${props.stage} alarms`,
      enforceSSL: true,
    });
    Validations.of(topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry alarm names and metric values, no customer data. CloudWatch cannot ' +
        'publish to a topic under the AWS-managed SNS key, and a customer key for this alone costs more ' +
        'than an idle stage.',
    });
    if (props.alarmEmail) topic.addSubscription(new EmailSubscription(props.alarmEmail));
    return topic;
  }

  #alarm(prefix: string, spec: AlarmSpec): cw.Alarm {
    const alarm = new cw.Alarm(this, spec.id, {
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      alarmName: `${prefix}-${spec.name}`,
      alarmDescription: spec.description,
      metric: renderMetric(spec.metric),
      threshold: spec.threshold,
      comparisonOperator: spec.comparisonOperator,
      evaluationPeriods: spec.evaluationPeriods,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    alarm.addOkAction(new SnsAction(this.alarmTopic));
    return alarm;
  }
}
