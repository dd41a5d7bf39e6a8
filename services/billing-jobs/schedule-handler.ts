import { type BillingJob, composeBillingJobs } from './compose';
import { loadBillingJobsConfig } from './config';

const jobs = composeBillingJobs(loadBillingJobsConfig(process.env));

/** EventBridge rules invoke this with `{ "job": "export" }` or `{ "job": "reconcile" }` (infra/cdk). */
export async function handler(event: { job?: string }): Promise<unknown> {
  if (event.job !== 'export' && event.job !== 'reconcile') {
    throw new Error(`unknown billing job ${JSON.stringify(event.job)}: expected "export" or "reconcile"`);
  }
  return jobs.runJob(event.job satisfies BillingJob);
}
