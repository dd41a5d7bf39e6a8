/**
 * How usage events travel from the gate to metering. SQS (the default) costs nothing when idle and
 * needs no sizing; Kinesis orders events per key, which lets metering count without a write per
 * event (docs/metering.md). The same value selects the transport in every service, the local stack
 * and CDK.
 */
export const TRANSPORTS = ['sqs', 'kinesis'] as const;

export type Transport = (typeof TRANSPORTS)[number];

export const DEFAULT_TRANSPORT: Transport = 'sqs';
