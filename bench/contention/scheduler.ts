/**
 * A process of the simulation: a generator that yields how long (ms of simulated time) it waits
 * before its next step. What a step reads and writes happens at one instant, so a DynamoDB call is
 * modelled as half its latency, the instant the server applies it, then the other half.
 */
export type Process<T = void> = Generator<number, T, void>;

interface Entry {
  at: number;
  order: number;
  step: () => void;
}

/**
 * A discrete-event scheduler over simulated time. Ties are broken by the order entries were
 * scheduled, so a run depends only on its inputs (and the seed of their random draws).
 */
export class Scheduler {
  now = 0;
  #heap: Entry[] = [];
  #order = 0;

  /** Runs `step` at simulated time `at` (not before now). */
  at(at: number, step: () => void): void {
    this.#push({ at: Math.max(at, this.now), order: this.#order++, step });
  }

  /** Starts a process now. */
  spawn(process: Process): void {
    const resume = () => {
      const next = process.next();
      if (!next.done) this.at(this.now + Math.max(0, next.value), resume);
    };
    this.at(this.now, resume);
  }

  /** Runs every step due before `until`; later ones are dropped with the run. */
  run(until: number): void {
    for (let entry = this.#pop(); entry && entry.at < until; entry = this.#pop()) {
      this.now = entry.at;
      entry.step();
    }
    this.now = until;
  }

  #before(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const up = heap[parent] as Entry;
      if (!this.#before(entry, up)) break;
      heap[i] = up;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): Entry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && this.#before(heap[right] as Entry, heap[left] as Entry) ? right : left;
      if (!this.#before(heap[child] as Entry, last)) break;
      heap[i] = heap[child] as Entry;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
