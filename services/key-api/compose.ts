import type { ALBEvent, ALBResult } from 'aws-lambda';
import { ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { composeGate, type GateOverrides } from '../gate/compose';
import type { KeyCache } from '../gate/key-cache';
import { UsageReader } from '../usage/usage-reader';
import { createKeyApiHandler } from './app';
import type { KeyApiConfig } from './config';
import { UsageSnapshots } from './usage-snapshots';

/** What a caller may provide instead of what key-api builds from its configuration. */
export interface KeyApiOverrides extends Omit<GateOverrides, 'serviceName'> {
  /** Replaces the day-count read behind the usage figure. */
  readonly readKeyDayCount?: (accountId: string, keyId: string, day: string) => Promise<number>;
}

export interface KeyApi {
  /** The ALB target's handler. */
  readonly handler: (event: ALBEvent) => Promise<ALBResult>;
  /** This container's key cache (tests read its windows and evict from it). */
  readonly cache: KeyCache;
}

/**
 * key-api: its configuration and clients → the ALB handler, around the same gate an owner's
 * function composes (services/gate/compose.ts). Lambda's handler.ts, the local stack, tests and
 * bench all build it here; everything is built once and reused by warm invocations.
 */
export function composeKeyApi(config: KeyApiConfig, overrides: KeyApiOverrides = {}): KeyApi {
  const composed = composeGate(config, { ...overrides, serviceName: SERVICE_NAMES.keyApi });
  const { deps } = composed;
  const read =
    overrides.readKeyDayCount ??
    (() => {
      const reader = new UsageReader({ client: composed.dynamo, table: config[ENV.usageTable] });
      return (accountId: string, keyId: string, day: string) => reader.keyDayCount(accountId, keyId, day);
    })();
  const handleEvent = createKeyApiHandler({
    ...deps,
    usage: new UsageSnapshots({ read, now: () => deps.clock.now() }),
    allowedOrigins: config[ENV.allowedOrigins],
  });
  return {
    cache: composed.cache,
    handler: async (event) => {
      try {
        return await handleEvent(event);
      } finally {
        composed.endInvocation();
      }
    },
  };
}
