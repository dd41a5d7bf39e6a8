/** Milliseconds since the epoch, as the stand-in sees them. */
export type Clock = () => number;

/**
 * The stand-in's time: a base clock (the wall clock unless given) plus an offset that tests advance,
 * as Stripe's test clocks let a test move a customer's time forward to reach period ends and grace
 * periods without waiting. Time only moves forward.
 */
export class StandInTime {
  private offsetMs = 0;

  constructor(private readonly base: Clock = Date.now) {}

  nowMs(): number {
    return this.base() + this.offsetMs;
  }

  /** Seconds since the epoch, as every Stripe timestamp is. */
  nowSeconds(): number {
    return Math.floor(this.nowMs() / 1000);
  }

  advance(seconds: number): void {
    if (!(seconds >= 0)) throw new RangeError(`time only moves forward (asked ${seconds} s)`);
    this.offsetMs += seconds * 1000;
  }
}

export const DAY_SECONDS = 86_400;
export const HOUR_SECONDS = 3_600;
