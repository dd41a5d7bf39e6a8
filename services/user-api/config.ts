import { type UserApiConfig, userApiConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { loadConfig } from '../platform/config';

export type { UserApiConfig } from '../../contracts/config';

/** user-api's configuration from an environment (contracts/config.ts has the schema). */
export function loadUserApiConfig(env: Readonly<Record<string, string | undefined>>): UserApiConfig {
  return loadConfig(SERVICE_NAMES.userApi, userApiConfigSchema, env);
}
