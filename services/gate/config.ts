import { ENV, type GateConfig, gateConfigSchema } from '../../contracts/config';
import { loadConfig } from '../platform/config';
import type { GuessThrottleSettings } from './guess-throttle';

export type { GateConfig } from '../../contracts/config';

/** A gate's configuration from an environment (contracts/config.ts has the schema). */
export function loadGateConfig(
  env: Readonly<Record<string, string | undefined>>,
  serviceName = 'gate',
): GateConfig {
  return loadConfig(serviceName, gateConfigSchema, env);
}

/** The guess throttle's settings in a gate's configuration (TOLLGATE_GUESS_*). */
export function guessThrottleSettings(config: GateConfig): GuessThrottleSettings {
  return {
    budget: config[ENV.guessBudget],
    windowMs: config[ENV.guessWindowMs],
    maxClients: config[ENV.guessMaxClients],
  };
}
