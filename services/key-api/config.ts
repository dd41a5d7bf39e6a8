import { type KeyApiConfig, keyApiConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { loadConfig } from '../platform/config';

export type { KeyApiConfig } from '../../contracts/config';

/** key-api's configuration from an environment (contracts/config.ts has the schema). */
export function loadKeyApiConfig(env: Readonly<Record<string, string | undefined>>): KeyApiConfig {
  return loadConfig(SERVICE_NAMES.keyApi, keyApiConfigSchema, env);
}
