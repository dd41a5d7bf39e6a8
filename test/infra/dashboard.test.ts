import { type CfnElement, Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsResource,
  type MetricDef,
  type OperationsDefinition,
  operationsDefinition,
  type SeriesDef,
  widgetsOf,
} from '../../contracts/dashboard';
import type { Transport } from '../../contracts/transport';
import type { TollgateStack } from '../../infra/cdk/tollgate-stack';
import { resourcesOf, type Synthesized, synthesize } from './synth';

// The CloudWatch dashboard and alarms are the shared definition (contracts/dashboard.ts), which
// the local ops page renders too: read back from the synthesized template, every widget is the
// definition's widget (title, width, stacking) and every line its series (namespace, metric,
// dimensions of the right resource, statistic, period, label, axis), in order; every alarm its
// alarm. A widget changed in the construct alone, or in the definition alone, fails here.

const STAGE = 'test';
const METER = 'mtr_test_61Tollgate';
const CERTIFICATE = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';

// biome-ignore lint/suspicious/noExplicitAny: the template is untyped JSON; assertions check its shape.
type Json = any;

/** The body's JSON with each reference to a resource written as «logicalId» or «logicalId.Attribute». */
function dashboardBody(body: unknown): { widgets: Json[] } {
  const flatten = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const token = value as {
      'Fn::Join'?: [string, unknown[]];
      Ref?: string;
      'Fn::GetAtt'?: [string, string];
    };
    if (token['Fn::Join']) return token['Fn::Join'][1].map(flatten).join(token['Fn::Join'][0]);
    if (token.Ref) return `«${token.Ref}»`;
    if (token['Fn::GetAtt']) return `«${token['Fn::GetAtt'].join('.')}»`;
    return `«${JSON.stringify(value).replace(/"/g, "'")}»`;
  };
  return JSON.parse(flatten(body));
}

interface Row {
  readonly namespace?: string;
  readonly name?: string;
  readonly dimensions: Record<string, string>;
  readonly options: Json;
}

/** `[namespace, name, dim, value, …, options]` or `[{ expression, … }]`. */
function parseRow(row: unknown[]): Row {
  if (typeof row[0] !== 'string') return { dimensions: {}, options: row[0] ?? {} };
  const last = row[row.length - 1];
  const options = typeof last === 'object' && last !== null ? last : {};
  const pairs = row.slice(2, typeof last === 'object' ? -1 : undefined) as string[];
  const dimensions: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) dimensions[pairs[i] as string] = pairs[i + 1] as string;
  return { namespace: row[0], name: row[1] as string, dimensions, options };
}

const idOf = (construct: IConstruct) =>
  Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnElement);

/** Each resource a definition can name, as the dimension values CloudFormation gets for it. */
function dimensionsOf(stack: TollgateStack, resource: AwsResource): Record<string, string> {
  const alb = `«${idOf(stack.keyApiEndpoint.loadBalancer)}.LoadBalancerFullName»`;
  switch (resource.type) {
    case 'function': {
      const fn =
        resource.role === 'billingWebhook'
          ? stack.billing?.webhook
          : resource.role === 'billingSchedule'
            ? stack.billing?.schedule
            : stack.functions[resource.role];
      if (!fn) throw new Error(`no function ${resource.role}`);
      return { FunctionName: `«${idOf(fn.function)}»` };
    }
    case 'queue': {
      const queue =
        resource.role === 'usage' ? stack.usageTransport.queue : stack.usageTransport.deadLetterQueue;
      if (!queue) throw new Error('no usage queue');
      return { QueueName: `«${idOf(queue)}.QueueName»` };
    }
    case 'stream': {
      const stream = stack.usageTransport.stream;
      if (!stream) throw new Error('no usage stream');
      return { StreamName: `«${idOf(stream)}»` };
    }
    case 'loadBalancer':
      return { LoadBalancer: alb };
    case 'targetGroup': {
      const group =
        resource.role === 'keyApi'
          ? stack.keyApiEndpoint.targetGroup
          : stack.keyApiEndpoint.ownerApiTargetGroup;
      if (!group) throw new Error('no owner API target group');
      // A target group names its load balancer through the listener that forwards to it: the
      // listener ARN's parts 1 to 3 (app/<name>/<id>).
      const listener = idOf(stack.keyApiEndpoint.listener);
      const parts = [1, 2, 3].map((i) => `«{'Fn::Select':[${i},{'Fn::Split':['/',{'Ref':'${listener}'}]}]}»`);
      return { TargetGroup: `«${idOf(group)}.TargetGroupFullName»`, LoadBalancer: parts.join('/') };
    }
    case 'table':
      return { TableName: `«${idOf(stack.tables[resource.role])}»` };
  }
}

function expectMetric(row: Row, def: MetricDef, stack: TollgateStack, what: string): void {
  expect(row.namespace, what).toBe(def.namespace);
  expect(row.name, what).toBe(def.name);
  expect(row.dimensions, what).toEqual(
    def.kind === 'service' ? { service: def.service } : dimensionsOf(stack, def.resource),
  );
  // CDK leaves out the defaults: the Average statistic and the 300 s period.
  expect(row.options.stat ?? 'Average', what).toBe(def.statistic);
  expect(row.options.period ?? 300, what).toBe(300);
}

function expectSeries(
  rows: Row[],
  row: Row,
  def: SeriesDef,
  axis: string,
  stack: TollgateStack,
  what: string,
) {
  expect(row.options.yAxis ?? 'left', what).toBe(axis);
  if (def.kind === 'math') {
    expect(row.options.expression, what).toBe(def.expression);
    expect(row.options.label, what).toBe(def.label);
    for (const [id, metric] of Object.entries(def.using)) {
      const used = rows.find((candidate) => candidate.options.id === id);
      expect(used, `${what}: ${id}`).toBeDefined();
      expectMetric(used as Row, metric, stack, `${what}: ${id}`);
    }
    return;
  }
  expectMetric(row, def, stack, what);
  // CDK draws a metric that an expression of the same graph also uses once: as the expression's
  // (unlabelled) copy, with the expression's id. Every other line carries the definition's label.
  if (row.options.id === undefined) expect(row.options.label, what).toBe(def.label);
}

function expectDashboardIs(synth: Synthesized, definition: OperationsDefinition): void {
  const stack = synth.stack;
  const dashboards = Object.values(resourcesOf(synth.template, 'AWS::CloudWatch::Dashboard'));
  expect(dashboards).toHaveLength(1);
  expect(dashboards[0]?.Properties?.DashboardName).toBe(definition.name);
  const rendered = dashboardBody(dashboards[0]?.Properties?.DashboardBody).widgets;
  const defined = widgetsOf(definition);
  expect(rendered.map((w) => w.properties.title ?? w.properties.markdown)).toEqual(
    defined.map((w) => (w.type === 'graph' ? w.title : w.markdown)),
  );
  defined.forEach((widget, i) => {
    const shown = rendered[i];
    expect(shown.width, widget.id).toBe(widget.width);
    if (widget.type === 'text') {
      expect(shown).toMatchObject({ type: 'text', height: widget.height });
      return;
    }
    expect(shown.type, widget.id).toBe('metric');
    expect(shown.height, widget.id).toBe(6);
    expect(shown.properties.stacked ?? false, widget.id).toBe(widget.stacked);
    const rows = (shown.properties.metrics as unknown[][]).map(parseRow);
    const visible = rows.filter((row) => row.options.visible !== false);
    const series = [
      ...widget.left.map((def) => ({ def, axis: 'left' })),
      ...widget.right.map((def) => ({ def, axis: 'right' })),
    ];
    expect(visible.length, widget.id).toBe(series.length);
    series.forEach(({ def, axis }, j) => {
      expectSeries(rows, visible[j] as Row, def, axis, stack, `${widget.id} #${j}`);
    });
  });
}

function expectAlarmsAre(synth: Synthesized, definition: OperationsDefinition): void {
  const alarms = Object.values(resourcesOf(synth.template, 'AWS::CloudWatch::Alarm')).map(
    (a) => a.Properties as Json,
  );
  const defined = Object.values(definition.alarms);
  expect(alarms.map((a) => a.AlarmName).sort()).toEqual(
    defined.map((a) => `tollgate-${STAGE}-${a.name}`).sort(),
  );
  for (const alarm of defined) {
    const rendered = alarms.find((a) => a.AlarmName === `tollgate-${STAGE}-${alarm.name}`);
    expect(rendered, alarm.name).toMatchObject({
      AlarmDescription: alarm.description,
      Threshold: alarm.threshold,
      ComparisonOperator: alarm.comparisonOperator,
      EvaluationPeriods: alarm.evaluationPeriods,
      TreatMissingData: 'notBreaching',
    });
    const metrics = alarm.metric.kind === 'math' ? Object.values(alarm.metric.using) : [alarm.metric];
    for (const metric of metrics) expect(JSON.stringify(rendered), alarm.name).toContain(`"${metric.name}"`);
  }
}

describe.each([
  ['sqs', {}, false],
  ['kinesis', { certificateArn: CERTIFICATE, billingMeterId: METER }, true],
] as Array<[Transport, Record<string, string>, boolean]>)(
  'the operations dashboard (%s)',
  (transport, context, billing) => {
    let synth: Synthesized;
    const definition = () =>
      operationsDefinition({
        stage: STAGE,
        transport,
        ownerApiTargetGroup: true,
        billing,
        ownerApiService: 'example-api',
      });

    beforeAll(() => {
      synth = synthesize({ stage: STAGE, transport, region: 'eu-west-1', ...context });
    });
    afterAll(() => synth?.cleanUp());

    it('is rendered from the shared definition', () => {
      expect(synth.violations).toEqual([]);
      expect(synth.stack.operations.definition).toEqual(definition());
    });

    it("has the definition's widgets, in order, each with the definition's series", () => {
      expectDashboardIs(synth, definition());
    });

    it("has the definition's alarms", () => {
      expectAlarmsAre(synth, definition());
    });
  },
);
