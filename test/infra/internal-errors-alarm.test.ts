import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KEY_API_FAILURE_METRICS,
  KeyApiMetric,
  METRICS_NAMESPACE,
  SERVICE_NAMES,
  UserApiMetric,
} from '../../contracts/metric-names';
import { logicalIdOf, resourcesOf, type Synthesized, synthesize } from './synth';

// Errors by class: a 500 is a bug or a bad deploy, never an outage, so any one of them alarms.
// The alarms watch the metrics key-api, user-api and the owner API's gate count on their 500 path,
// and notify the topic every other alarm notifies.

const STAGE = 'test';

// biome-ignore lint/suspicious/noExplicitAny: the template is untyped JSON; assertions check its shape.
type CfnProperties = any;

describe('internal-error alarms', () => {
  let synth: Synthesized;
  const alarms = (): CfnProperties[] =>
    Object.values(resourcesOf(synth.template, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties);
  const alarmNamed = (suffix: string): CfnProperties => {
    const alarm = alarms().find((a) => a.AlarmName === `tollgate-${STAGE}-${suffix}`);
    expect(alarm, suffix).toBeDefined();
    return alarm;
  };

  beforeAll(() => {
    synth = synthesize({ stage: STAGE, transport: 'sqs', region: 'eu-west-1' });
  });
  afterAll(() => synth?.cleanUp());

  it('synthesizes', () => {
    expect(synth.violations).toEqual([]);
  });

  it.each([
    ['key-api-internal-errors', SERVICE_NAMES.keyApi, KeyApiMetric.internalErrors],
    ['user-api-internal-errors', SERVICE_NAMES.userApi, UserApiMetric.internalErrors],
    // The gate counts with key-api's metric names, under the service name of the function it runs in.
    ['example-api-internal-errors', SERVICE_NAMES.exampleApi, KeyApiMetric.internalErrors],
  ])('%s fires on any 500 of %s in a period and notifies the alarm topic', (suffix, service, metricName) => {
    const alarm = alarmNamed(suffix);
    expect(alarm).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: metricName,
      // Powertools publishes with one dimension: the service that emits the metric.
      Dimensions: [{ Name: 'service', Value: service }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 1,
      // No 500s, no data: not an alarm.
      TreatMissingData: 'notBreaching',
    });
    const topic = logicalIdOf(synth.template, 'AWS::SNS::Topic', { TopicName: `tollgate-${STAGE}-alarms` });
    expect(alarm.AlarmActions).toEqual([{ Ref: topic }]);
    expect(alarm.OKActions).toEqual([{ Ref: topic }]);
    // The same action as the alarms that were there before.
    expect(alarm.AlarmActions).toEqual(alarmNamed('usage-publish-failures').AlarmActions);
  });

  it('watches metrics the services write at once, so the alarm is never a flush interval behind', () => {
    // key-api buffers routine metrics; failure metrics are written at the end of their invocation.
    expect(KEY_API_FAILURE_METRICS).toContain(KeyApiMetric.internalErrors);
  });

  it('charts internal errors of key-api, user-api and the owner API on the dashboard', () => {
    const dashboards = Object.values(resourcesOf(synth.template, 'AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.Properties?.DashboardBody);
    const widget = (service: string, name: string) =>
      JSON.stringify([METRICS_NAMESPACE, name, 'service', service]).slice(1, -1).replaceAll('"', '\\"');
    expect(body).toContain(widget(SERVICE_NAMES.keyApi, KeyApiMetric.internalErrors));
    expect(body).toContain(widget(SERVICE_NAMES.userApi, UserApiMetric.internalErrors));
    expect(body).toContain(widget(SERVICE_NAMES.exampleApi, KeyApiMetric.internalErrors));
  });

  it("charts the owner API's Lambda errors and its target group's 5xx beside key-api's", () => {
    const dashboard = Object.values(resourcesOf(synth.template, 'AWS::CloudWatch::Dashboard'))[0];
    // The body with each reference written as `ref:<logical id>`, parsed: its widgets' metric rows.
    const flatten = (value: unknown): string => {
      if (typeof value === 'string') return value;
      const token = value as { 'Fn::Join'?: [string, unknown[]]; Ref?: string; 'Fn::GetAtt'?: string[] };
      if (token['Fn::Join']) return token['Fn::Join'][1].map(flatten).join(token['Fn::Join'][0]);
      return `ref:${token.Ref ?? token['Fn::GetAtt']?.[0] ?? 'other'}`;
    };
    const body: { widgets: Array<{ properties: { metrics?: unknown[][] } }> } = JSON.parse(
      flatten(dashboard?.Properties?.DashboardBody),
    );
    const rows = body.widgets.flatMap((widget) => widget.properties.metrics ?? []);
    const ownerApi = logicalIdOf(synth.template, 'AWS::Lambda::Function', {
      FunctionName: `tollgate-${STAGE}-${SERVICE_NAMES.exampleApi}`,
    });
    expect(rows).toContainEqual([
      'AWS/Lambda',
      'Errors',
      'FunctionName',
      `ref:${ownerApi}`,
      expect.anything(),
    ]);
    const targetGroup = logicalIdOf(synth.template, 'AWS::ElasticLoadBalancingV2::TargetGroup', {
      Targets: [{ Id: { 'Fn::GetAtt': [ownerApi, 'Arn'] } }],
    });
    expect(rows).toContainEqual([
      'AWS/ApplicationELB',
      'HTTPCode_Target_5XX_Count',
      'LoadBalancer',
      expect.any(String),
      'TargetGroup',
      `ref:${targetGroup}`,
      expect.objectContaining({ label: `${SERVICE_NAMES.exampleApi} 5xx` }),
    ]);
  });
});
