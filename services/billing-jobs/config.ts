import { type BillingJobsConfig, billingJobsConfigSchema } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { loadConfig } from '../platform/config';

export type { BillingJobsConfig } from '../../contracts/config';

/** The billing jobs' configuration from an environment (contracts/config.ts has the schema). */
export function loadBillingJobsConfig(env: Readonly<Record<string, string | undefined>>): BillingJobsConfig {
  return loadConfig(SERVICE_NAMES.billing, billingJobsConfigSchema, env);
}
