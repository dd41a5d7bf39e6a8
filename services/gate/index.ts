/**
 * The gate, as an owner's code imports it: compose it from the environment, then wrap an ALB
 * handler (`albHandler`) or guard Hono routes (`middleware`). README "Put your API behind Tollgate".
 */
export type { AlbGateOptions, GatedAlbHandler } from './alb';
export { albClientIp, honoClientIp, rightmostForwardedFor } from './client-ip';
export { type ComposedGate, composeGate, type GateOverrides } from './compose';
export { type GateConfig, loadGateConfig } from './config';
export {
  type BillingPolicy,
  billSuccesses,
  type Caller,
  type GateAnswer,
  type PublishFailureMode,
} from './gate';
export type { GuessThrottleSettings } from './guess-throttle';
export type { GateEnv, GateMiddlewareOptions } from './hono';
