import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import type { WidgetDef } from '../../../../contracts/dashboard';
import { type MonitoredResources, renderSeries } from './metrics';

/** Graphs are six units high (the dashboard's grid: 24 columns). */
const GRAPH_HEIGHT = 6;

/**
 * A widget of the definition (contracts/dashboard.ts) as CloudWatch draws it, its metrics on the
 * stack's resources.
 */
export function renderWidget(def: WidgetDef, m: MonitoredResources): cw.IWidget {
  if (def.type === 'text') {
    return new cw.TextWidget({ markdown: def.markdown, width: def.width, height: def.height });
  }
  return new cw.GraphWidget({
    title: def.title,
    left: def.left.map((series) => renderSeries(series, m)),
    right: def.right.map((series) => renderSeries(series, m)),
    ...(def.stacked ? { stacked: true } : {}),
    width: def.width,
    height: GRAPH_HEIGHT,
  });
}
