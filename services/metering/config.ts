import { type MeteringConfig, meteringConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { loadConfig } from '../platform/config';

export type { MeteringConfig } from '../../contracts/config';

/** metering's configuration from an environment (contracts/config.ts has the schema). */
export function loadMeteringConfig(env: Readonly<Record<string, string | undefined>>): MeteringConfig {
  return loadConfig(SERVICE_NAMES.metering, meteringConfigSchema, env);
}
