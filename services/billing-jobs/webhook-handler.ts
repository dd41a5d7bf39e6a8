import { handle } from 'hono/aws-lambda';
import { composeBillingJobs } from './compose';
import { loadBillingJobsConfig } from './config';

// Cold start: configuration from the function's environment (secret ARNs, never values), the app
// built once per container; the secrets are read from Secrets Manager on first use.
export const handler = handle(composeBillingJobs(loadBillingJobsConfig(process.env)).webhook);
