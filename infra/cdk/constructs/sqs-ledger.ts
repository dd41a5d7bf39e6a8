import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { DEFAULT_LEDGER_FLUSH, ENV, type LEDGER_FLUSH_PROFILES } from '../../../contracts/config';
import { LEDGER_BACKSTOP_EVENT, LEDGER_BACKSTOP_INTERVAL_SECONDS } from '../../../contracts/resources';
import type { DataTables } from './data-tables';
import type { TollgateFunction } from './tollgate-function';

/** When the SQS ledger applies its journals to the counters (TOLLGATE_LEDGER_FLUSH). */
export type LedgerFlushProfile = (typeof LEDGER_FLUSH_PROFILES)[number];

/** How often the backstop runs (the local stack's timer runs as often). */
export const LEDGER_BACKSTOP_SCHEDULE = Duration.seconds(LEDGER_BACKSTOP_INTERVAL_SECONDS);

/**
 * metering's SQS ledger (docs/metering.md, "The SQS ledger"), on an SQS deployment:
 *  - its requests to the usage table (DataTables.allowLedgerCounting) and the variable that turns
 *    it on;
 *  - its flush profile (TOLLGATE_LEDGER_FLUSH);
 *  - a rule every LEDGER_BACKSTOP_INTERVAL_SECONDS that hands metering LEDGER_BACKSTOP_EVENT, so
 *    journals committed just before traffic stopped reach the counters without a next batch.
 */
export function attachSqsLedger(
  fn: TollgateFunction,
  tables: DataTables,
  flush: LedgerFlushProfile = DEFAULT_LEDGER_FLUSH,
): events.Rule {
  tables.allowLedgerCounting(fn);
  fn.function.addEnvironment(ENV.ledgerFlush, flush);
  return new events.Rule(Stack.of(fn), 'LedgerBackstopSchedule', {
    description: "Flushes the SQS ledger's committed journals that no batch has applied to the counters",
    schedule: events.Schedule.rate(LEDGER_BACKSTOP_SCHEDULE),
    // The next run is an interval away and does the same work: no retries, and no queue of stale
    // runs behind a slow one (a run that finds a flush in progress takes it over past its lease).
    targets: [
      new targets.LambdaFunction(fn.function, {
        event: events.RuleTargetInput.fromObject(LEDGER_BACKSTOP_EVENT),
        retryAttempts: 0,
        maxEventAge: LEDGER_BACKSTOP_SCHEDULE,
      }),
    ],
  });
}
