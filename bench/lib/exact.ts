import { utcDay } from '../../contracts/usage-event';
import type { UsageReader } from '../../services/usage/usage-reader';
import type { Transport, TransportExact } from './types';

/**
 * "Every accepted request is counted exactly once", for one transport on its own: the usage
 * metering wrote, read from DynamoDB through UsageReader as user-api reads it (strongly consistent,
 * with the SQS ledger's committed journals not flushed yet), against a ledger of what was accepted, key by key. Per key (a key's
 * all-time total, `keyTotals`), per account (its daily counts over the run's days, `dailyCounts`)
 * and in total. Each transport has accounts and keys of its own, so a double count on one cannot
 * cancel a loss on the other.
 */
export interface Scope {
  readonly transport: Transport;
  /** The accounts whose counters are read. */
  readonly accounts: readonly string[];
  /** Every key of the scope and its account. */
  readonly keyAccount: ReadonlyMap<string, string>;
  /** Accepted so far, per key id (the key API's 200s by key, or what a producer stored). */
  readonly answered: () => Promise<ReadonlyMap<string, number>>;
  /**
   * The answering side's own total, if it keeps one apart from its per-key tally (key-api's count
   * of 200s): both must agree, or a 200 escaped the tally.
   */
  readonly answeredTotal?: () => Promise<number>;
}

export interface ExactTiming {
  /** A pipeline that counted nothing new for this long while behind is stuck: the check fails. */
  readonly stallMs: number;
  readonly settleTimeoutMs: number;
  /** Once the totals agree, wait this long and read again: a late double count shows. */
  readonly holdMs: number;
  readonly pollMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

export class UsageLedger {
  readonly #reader: UsageReader;
  readonly #firstDay: string;

  constructor(options: { reader: UsageReader; firstDay: string }) {
    this.#reader = options.reader;
    this.#firstDay = options.firstDay;
  }

  /** Every key's all-time count in these accounts (UsageReader.keyTotals, one Query per account). */
  async perKey(accounts: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const totals of await Promise.all(accounts.map((a) => this.#reader.keyTotals(a)))) {
      for (const [keyId, t] of totals) out.set(keyId, (out.get(keyId) ?? 0) + t.count);
    }
    return out;
  }

  /** Every account's count from the run's first day to today (UsageReader.dailyCounts). */
  async perAccount(accounts: readonly string[]): Promise<Map<string, number>> {
    const today = utcDay(Date.now());
    const days = await Promise.all(
      accounts.map((accountId) => this.#reader.dailyCounts({ accountId }, this.#firstDay, today)),
    );
    return new Map(accounts.map((a, i) => [a, sum((days[i] ?? []).map((d) => d.count))]));
  }

  /** Counted in total in these accounts. */
  async total(accounts: readonly string[]): Promise<number> {
    return sum((await this.perKey(accounts)).values());
  }

  /** Waits for the scope's pipeline to drain, holds, then compares per key, per account and in total. */
  async check(scope: Scope, timing: ExactTiming): Promise<TransportExact> {
    const begun = Date.now();
    const answeredSum = async () => sum((await scope.answered()).values());
    let answered = await answeredSum();
    let counted = await this.total(scope.accounts);
    let progressAt = Date.now();
    while (counted !== answered && Date.now() - progressAt < timing.stallMs) {
      if (Date.now() - begun > timing.settleTimeoutMs) break;
      await sleep(timing.pollMs);
      const before = counted;
      answered = await answeredSum();
      counted = await this.total(scope.accounts);
      if (counted !== before) progressAt = Date.now();
    }
    const settledMs = Date.now() - begun;
    await sleep(timing.holdMs);

    const [answeredByKey, countedByKey, countedByAccount, answeredTotal] = await Promise.all([
      scope.answered(),
      this.perKey(scope.accounts),
      this.perAccount(scope.accounts),
      scope.answeredTotal?.(),
    ]);
    const mismatches: string[] = [];
    const note = (line: string) => {
      if (mismatches.length < 10) mismatches.push(line);
    };
    let keysWrong = 0;
    const keys = new Set([...scope.keyAccount.keys(), ...answeredByKey.keys(), ...countedByKey.keys()]);
    for (const keyId of keys) {
      const a = answeredByKey.get(keyId) ?? 0;
      const c = countedByKey.get(keyId) ?? 0;
      if (!scope.keyAccount.has(keyId)) {
        keysWrong++;
        note(`key ${keyId} is not one of this transport's keys (answered ${a}, counted ${c})`);
      } else if (a !== c) {
        keysWrong++;
        note(`key ${keyId}: answered ${a}, counted ${c}`);
      }
    }
    const expectedByAccount = new Map(scope.accounts.map((a) => [a, 0]));
    for (const [keyId, accountId] of scope.keyAccount) {
      expectedByAccount.set(
        accountId,
        (expectedByAccount.get(accountId) ?? 0) + (answeredByKey.get(keyId) ?? 0),
      );
    }
    let accountsWrong = 0;
    for (const [accountId, expected] of expectedByAccount) {
      const c = countedByAccount.get(accountId) ?? 0;
      if (c !== expected) {
        accountsWrong++;
        note(`account ${accountId}: answered ${expected}, counted ${c}`);
      }
    }
    const answeredAll = sum(answeredByKey.values());
    const countedAll = sum(countedByKey.values());
    const tallyOk = answeredTotal === undefined || answeredTotal === answeredAll;
    if (!tallyOk) note(`the key API answered ${answeredTotal} 200s, ${answeredAll} by key`);
    if (answeredAll !== countedAll) note(`total: answered ${answeredAll}, counted ${countedAll}`);
    return {
      transport: scope.transport,
      answered: answeredTotal ?? answeredAll,
      counted: countedAll,
      keys: scope.keyAccount.size,
      keysWrong,
      accounts: expectedByAccount.size,
      accountsWrong,
      ok: keysWrong === 0 && accountsWrong === 0 && tallyOk && answeredAll === countedAll,
      settledMs,
      mismatches,
    };
  }
}
