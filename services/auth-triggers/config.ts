import { type AuthTriggersConfig, authTriggersConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { loadConfig } from '../platform/config';

export type { AuthTriggersConfig } from '../../contracts/config';

/** auth-triggers' configuration from an environment (contracts/config.ts has the schema). */
export function loadAuthTriggersConfig(
  env: Readonly<Record<string, string | undefined>>,
): AuthTriggersConfig {
  return loadConfig(SERVICE_NAMES.authTriggers, authTriggersConfigSchema, env);
}
