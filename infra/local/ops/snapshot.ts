import type {
  AlarmDef,
  ComparisonOperator,
  MetricDef,
  OperationsDefinition,
  SeriesDef,
  WidgetDef,
} from '../../../contracts/dashboard';
import { evaluateMath } from './metric-math';
import { computeStatistic, type MetricStore, metricKeyOf } from './metric-store';

/**
 * The ops page's figures: every widget of the dashboard's definition with each series' value over
 * the latest period, and every alarm's state, computed from what the local stack recorded.
 */

export interface SeriesFigure {
  readonly label: string;
  readonly axis: 'left' | 'right';
  /** The statistic, or `math` for an expression. */
  readonly statistic: string;
  /** Over the latest period; null without data (CloudWatch draws no point). */
  readonly value: number | null;
  /** How many recorded points the value is computed from (every metric of an expression). */
  readonly points: number;
}

export interface WidgetFigures {
  readonly id: string;
  readonly type: WidgetDef['type'];
  readonly title: string;
  readonly width: number;
  /** Text widgets only. */
  readonly markdown?: string;
  readonly series: readonly SeriesFigure[];
}

export type AlarmStateName = 'OK' | 'ALARM';

export interface AlarmFigures {
  readonly key: string;
  readonly name: string;
  readonly description: string;
  readonly state: AlarmStateName;
  /** The latest period's value; null without data (treated as not breaching). */
  readonly value: number | null;
  readonly threshold: number;
  readonly comparisonOperator: ComparisonOperator;
  readonly evaluationPeriods: number;
}

export interface OpsSnapshot {
  readonly asOf: string;
  readonly periodSeconds: number;
  readonly dashboard: string;
  readonly widgets: readonly WidgetFigures[];
  readonly alarms: readonly AlarmFigures[];
}

interface Window {
  readonly from: number;
  readonly to: number;
}

function metricLabel(def: MetricDef): string {
  if (def.label !== undefined) return def.label;
  const owner =
    def.kind === 'service' ? def.service : 'role' in def.resource ? def.resource.role : def.resource.type;
  return `${owner} ${def.name}`;
}

function seriesValue(
  def: SeriesDef,
  store: MetricStore,
  window: Window,
): { value: number | undefined; points: number } {
  if (def.kind !== 'math') {
    const recorded = store.window(metricKeyOf(def), window.from, window.to);
    return { value: computeStatistic(recorded, def.statistic), points: recorded.count };
  }
  let points = 0;
  const variables = Object.fromEntries(
    Object.entries(def.using).map(([name, metric]) => {
      const figure = seriesValue(metric, store, window);
      points += figure.points;
      return [name, figure.value];
    }),
  );
  return { value: evaluateMath(def.expression, variables), points };
}

function figure(def: SeriesDef, axis: 'left' | 'right', store: MetricStore, window: Window): SeriesFigure {
  const { value, points } = seriesValue(def, store, window);
  return {
    label: def.kind === 'math' ? (def.label ?? def.expression) : metricLabel(def),
    axis,
    statistic: def.kind === 'math' ? 'math' : def.statistic,
    value: value ?? null,
    points,
  };
}

function widgetFigures(widget: WidgetDef, store: MetricStore, window: Window): WidgetFigures {
  if (widget.type === 'text') {
    const title = /^#\s*(.+)$/m.exec(widget.markdown)?.[1] ?? widget.id;
    return { id: widget.id, type: 'text', title, width: widget.width, markdown: widget.markdown, series: [] };
  }
  return {
    id: widget.id,
    type: 'graph',
    title: widget.title,
    width: widget.width,
    series: [
      ...widget.left.map((def) => figure(def, 'left', store, window)),
      ...widget.right.map((def) => figure(def, 'right', store, window)),
    ],
  };
}

const BREACHES: Record<ComparisonOperator, (value: number, threshold: number) => boolean> = {
  GreaterThanThreshold: (value, threshold) => value > threshold,
  GreaterThanOrEqualToThreshold: (value, threshold) => value >= threshold,
};

/**
 * In ALARM when each of the last `evaluationPeriods` periods breaches; a period without data does
 * not breach (every alarm of the definition treats missing data as not breaching).
 */
function alarmFigures(
  key: string,
  alarm: AlarmDef,
  store: MetricStore,
  now: number,
  periodMs: number,
): AlarmFigures {
  const values = Array.from(
    { length: alarm.evaluationPeriods },
    (_, i) =>
      seriesValue(alarm.metric, store, { from: now - (i + 1) * periodMs, to: now - i * periodMs }).value,
  );
  const breaches = BREACHES[alarm.comparisonOperator];
  const inAlarm = values.every((value) => value !== undefined && breaches(value, alarm.threshold));
  return {
    key,
    name: alarm.name,
    description: alarm.description,
    state: inAlarm ? 'ALARM' : 'OK',
    value: values[0] ?? null,
    threshold: alarm.threshold,
    comparisonOperator: alarm.comparisonOperator,
    evaluationPeriods: alarm.evaluationPeriods,
  };
}

export function opsSnapshot(
  definition: OperationsDefinition,
  store: MetricStore,
  now = store.now(),
): OpsSnapshot {
  const periodMs = definition.periodSeconds * 1000;
  // The latest period ends now: a moving window, so a figure moves with every request.
  const window = { from: now - periodMs, to: now + 1 };
  return {
    asOf: new Date(now).toISOString(),
    periodSeconds: definition.periodSeconds,
    dashboard: definition.name,
    widgets: definition.rows.flat().map((widget) => widgetFigures(widget, store, window)),
    alarms: Object.entries(definition.alarms).map(([key, alarm]: [string, AlarmDef]) =>
      alarmFigures(key, alarm, store, now + 1, periodMs),
    ),
  };
}
