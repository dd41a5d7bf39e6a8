import type { AcceptedRecord } from '../batch';
import type { LedgerEvent } from './context';

/**
 * The accepted records the ledger claims (those whose event carries `pid`, `seq` and `at`), and the
 * rest, which keep the per-event mark path (events published before producers numbered them).
 */
export function splitForLedger(accepted: readonly AcceptedRecord[]): {
  ledger: LedgerEvent[];
  marks: AcceptedRecord[];
} {
  const ledger: LedgerEvent[] = [];
  const marks: AcceptedRecord[] = [];
  for (const item of accepted) {
    const { pid, seq, at, accountId, keyId, ts, units, route, method } = item.event;
    if (pid === undefined || seq === undefined || at === undefined) {
      marks.push(item);
      continue;
    }
    ledger.push({
      recordId: item.record.recordId,
      pid,
      seq,
      at,
      accountId,
      keyId,
      ts,
      units,
      ...(route === undefined ? {} : { route }),
      ...(method === undefined ? {} : { method }),
    });
  }
  return { ledger, marks };
}
