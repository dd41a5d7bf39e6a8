import { type GateConfig, gateConfigSchema } from '../../contracts/config';
import { loadConfig } from '../shared/config';

export type { GateConfig } from '../../contracts/config';

/** A gate's configuration from an environment (contracts/config.ts has the schema). */
export function loadGateConfig(
  env: Readonly<Record<string, string | undefined>>,
  serviceName = 'gate',
): GateConfig {
  return loadConfig(serviceName, gateConfigSchema, env);
}
