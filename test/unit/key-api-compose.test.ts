import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { DEFAULT_KEY_CACHE_WINDOWS, ENV } from '../../contracts/config';
import { KeyApiMetric } from '../../contracts/metric-names';
import { type UsageEvent, usageEventSchema } from '../../contracts/usage-event';
import { generateApiKey } from '../../services/accounts/api-key';
import type { KeyLookupRecord } from '../../services/accounts/records';
import type { CachedLookup } from '../../services/gate/key-cache';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import type { InvocationMetrics } from '../../services/platform/metrics';
import { albEvent, resultJson } from '../support/alb';

// key-api as its handler.ts builds it (composeKeyApi over a config parsed by loadKeyApiConfig), but
// from a literal configuration and with in-memory stand-ins for everything that would reach AWS.
// Nothing here reads or sets process.env.

const SETTINGS = {
  [ENV.accountsTable]: 'tollgate-test-accounts',
  [ENV.keysTable]: 'tollgate-test-keys',
  [ENV.usageTable]: 'tollgate-test-usage',
  [ENV.plansTable]: 'tollgate-test-plans',
  [ENV.usageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tollgate-test-usage',
};

function composed(settings: Record<string, string> = {}) {
  const byHash = new Map<string, KeyLookupRecord>();
  const lookups: string[] = [];
  const published: UsageEvent[] = [];
  const recorded: string[] = [];
  let invocations = 0;
  const metrics: InvocationMetrics = {
    addMetric: (name) => {
      recorded.push(name);
    },
    endInvocation: () => {
      invocations++;
    },
  };
  const keyApi = composeKeyApi(loadKeyApiConfig({ ...SETTINGS, ...settings }), {
    lookup: async (keyHash): Promise<CachedLookup> => {
      lookups.push(keyHash);
      const record = byHash.get(keyHash);
      return record ? { found: true, record } : { found: false };
    },
    publisher: {
      publish: async (event) => {
        published.push(event);
      },
    },
    readKeyDayCount: async () => 41,
    // No account has a plan here (plans have their own tests, gate-limits.test.ts).
    terms: async () => ({ found: false }),
    logger: new Logger({ serviceName: 'key-api-test', logLevel: 'SILENT' }),
    metrics,
  });
  const addKey = (record: Omit<KeyLookupRecord, 'status'>) => {
    const key = generateApiKey('tg');
    byHash.set(key.keyHash, { ...record, status: 'active' });
    return key.key;
  };
  return { ...keyApi, addKey, lookups, published, recorded, invocations: () => invocations };
}

const withKey = (key: string) => albEvent({ method: 'GET', headers: { 'x-api-key': key } });

describe('composeKeyApi, from a literal configuration', () => {
  it('a known, well-formed key: 200, and exactly one usage event for its key and account', async () => {
    const api = composed();
    const key = api.addKey({ keyId: 'key_abc', accountId: 'acc_1' });
    const result = await api.handler(withKey(key));
    expect(result.statusCode).toBe(200);
    expect(resultJson(result)).toEqual({
      ok: true,
      keyId: 'key_abc',
      usage: { today: 41, asOf: expect.any(String) },
    });
    expect(api.published).toHaveLength(1);
    expect(api.published[0]).toMatchObject({ keyId: 'key_abc', accountId: 'acc_1', units: 1 });
    expect(usageEventSchema.safeParse(api.published[0]).success).toBe(true);
    expect(api.recorded).toContain(KeyApiMetric.checks.accepted);
    expect(api.invocations()).toBe(1);
  });

  it('an unknown key: 401 unknown_key, one lookup, nothing published', async () => {
    const api = composed();
    const result = await api.handler(withKey(generateApiKey('tg').key));
    expect(result.statusCode).toBe(401);
    expect(resultJson(result).error?.code).toBe('unknown_key');
    expect(api.lookups).toHaveLength(1);
    expect(api.published).toEqual([]);
  });

  it('a malformed key: 401 malformed_key without a lookup, nothing published', async () => {
    const api = composed();
    const key = api.addKey({ keyId: 'key_abc', accountId: 'acc_1' });
    for (const typo of [`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`, 'tg_short', key.slice(1)]) {
      const result = await api.handler(withKey(typo));
      expect(result.statusCode, typo).toBe(401);
      expect(resultJson(result).error?.code).toBe('malformed_key');
    }
    expect(api.lookups).toEqual([]);
    expect(api.published).toEqual([]);
    expect(api.invocations()).toBe(3);
  });

  it('takes its cache windows from the configuration: the documented defaults unless set', () => {
    expect(composed().cache.windows).toEqual(DEFAULT_KEY_CACHE_WINDOWS);
    expect(composed({ [ENV.keyCacheFreshMs]: '500', [ENV.keyCacheNegativeMs]: '0' }).cache.windows).toEqual({
      ...DEFAULT_KEY_CACHE_WINDOWS,
      freshMs: 500,
      negativeMs: 0,
    });
  });
});
