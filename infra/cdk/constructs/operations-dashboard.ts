import { Duration, Validations } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { type OperationsDefinition, operationsDefinition } from '../../../contracts/dashboard';
import { type AlarmDef, comparisonOperatorOf, mapAlarms, type OperationsAlarms } from './operations/alarms';
import { renderWidget } from './operations/dashboard-widgets';
import { deploymentShapeOf, type MonitoredResources, renderSeries } from './operations/metrics';

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
 * failed (5xx), or the code is failing (internal errors: bugs, not outages). Both are defined once
 * as data (contracts/dashboard.ts), which the local ops page (infra/local/ops/) renders too, and
 * rendered here on the stack's resources.
 */
export class OperationsDashboard extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly alarmTopic: sns.Topic;
  readonly alarms: OperationsAlarms<cw.Alarm>;
  /** What the dashboard and the alarms were rendered from. */
  readonly definition: OperationsDefinition;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const prefix = `tollgate-${props.stage}`;
    this.alarmTopic = this.#alarmTopic(prefix, props);
    this.definition = operationsDefinition(
      deploymentShapeOf(props, {
        maxEventAgeMs: (props.maxEventAge ?? Duration.minutes(5)).toMilliseconds(),
        max5xxPercent: props.max5xxPercent ?? 1,
        maxUsageLagMs: (props.maxUsageLag ?? Duration.minutes(2)).toMilliseconds(),
      }),
    );

    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: this.definition.name,
      defaultInterval: Duration.hours(3),
    });
    for (const row of this.definition.rows) {
      this.dashboard.addWidgets(...row.map((widget) => renderWidget(widget, props)));
    }
    this.alarms = mapAlarms(this.definition.alarms, (alarm) => this.#alarm(prefix, alarm, props));
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

  #alarm(prefix: string, def: AlarmDef, resources: MonitoredResources): cw.Alarm {
    const alarm = new cw.Alarm(this, def.id, {
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      alarmName: `${prefix}-${def.name}`,
      alarmDescription: def.description,
      metric: renderSeries(def.metric, resources),
      threshold: def.threshold,
      comparisonOperator: comparisonOperatorOf(def.comparisonOperator),
      evaluationPeriods: def.evaluationPeriods,
    });
    alarm.addAlarmAction(new SnsAction(this.alarmTopic));
    alarm.addOkAction(new SnsAction(this.alarmTopic));
    return alarm;
  }
}
