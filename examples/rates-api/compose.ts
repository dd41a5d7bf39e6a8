import type { ALBEvent, ALBResult } from 'aws-lambda';
import { handle } from 'hono/aws-lambda';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { composeGate, type GateConfig, type GateOverrides } from '../../services/gate/index';
import { createRatesApp, ratesBilling } from './app';

/**
 * The example API: its gate (from the same configuration any gate reads) and the Hono app behind
 * it. `handler` is the ALB target's handler (Hono's Lambda adapter speaks ALB events); `app.fetch`
 * serves it on Node. The local stack serves `handler` behind its ALB stand-in, as AWS would.
 */
export function composeRatesApi(config: GateConfig, overrides: Omit<GateOverrides, 'serviceName'> = {}) {
  const tollgate = composeGate(config, { ...overrides, serviceName: SERVICE_NAMES.exampleApi });
  const app = createRatesApp(tollgate.middleware({ bill: ratesBilling }));
  const lambda = handle(app);
  // Hono types ALB events and answers its own way (an ALB event's optional fields, header values
  // that may be lists); @types/aws-lambda's are what the ALB stand-in and our tests speak. The
  // objects are the same.
  const handler = (event: ALBEvent): Promise<ALBResult> =>
    lambda(event as unknown as Parameters<typeof lambda>[0]) as unknown as Promise<ALBResult>;
  return { app, handler, cache: tollgate.cache };
}
