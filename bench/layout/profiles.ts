import type { Transport } from '../lib/types';

/** The two counter layouts measured side by side: today's (hourly counts) and the one before. */
export const LAYOUTS = ['hours', 'previous'] as const;
export type Layout = (typeof LAYOUTS)[number];

export interface LayoutSettings {
  readonly profile: 'full' | 'smoke';
  /** Events a second and for how long, per (transport, layout) run. */
  readonly rate: number;
  readonly durationSec: number;
  /** Made-up keys drawn Zipf(zipfS), key i in account i % accounts: the paced phase's shape. */
  readonly keys: number;
  readonly accounts: number;
  readonly zipfS: number;
  /** The refusal rule (bench/layout/verdict.ts) applies: off in smoke, where the load is too short to mean anything. */
  readonly refuse: boolean;
  /** The read-units account: this many keys with this many days of counters, traffic in many hours. */
  readonly read: { readonly keys: number; readonly days: number };
}

/** `npm run bench:layout`: 1,000 events/s for 20 s over 100 Zipf(1) keys, per transport and layout. */
const FULL: LayoutSettings = {
  profile: 'full',
  rate: 1_000,
  durationSec: 20,
  keys: 100,
  accounts: 10,
  zipfS: 1,
  refuse: true,
  read: { keys: 25, days: 30 },
};

export const LAYOUT_PROFILES = {
  full: FULL,
  /** Does every part run, is every count exact: seconds of load, fewer keys, no refusal on ratios. */
  smoke: {
    ...FULL,
    profile: 'smoke',
    rate: 200,
    durationSec: 2,
    keys: 20,
    accounts: 2,
    refuse: false,
    read: { keys: 5, days: 30 },
  },
} as const satisfies Record<string, LayoutSettings>;

/**
 * The order of the runs, ABBA: each transport runs both layouts back to back, the second transport
 * in the other order, so a machine that slows down through the run favours neither layout.
 */
export const RUN_ORDER: ReadonlyArray<{ readonly transport: Transport; readonly layout: Layout }> = [
  { transport: 'sqs', layout: 'previous' },
  { transport: 'sqs', layout: 'hours' },
  { transport: 'kinesis', layout: 'hours' },
  { transport: 'kinesis', layout: 'previous' },
];
