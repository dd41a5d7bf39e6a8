import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { ALBEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { type UsageEvent, usageEventSchema } from '../../contracts/usage-event';
import { generateApiKey } from '../../services/accounts/api-key';
import type { KeyLookupRecord } from '../../services/accounts/records';
import { KeyCache } from '../../services/gate/key-cache';
import { KeyVerifier } from '../../services/gate/key-verifier';
import { createKeyApiHandler, type PublishFailureMode } from '../../services/key-api/app';
import { UsageSnapshots } from '../../services/key-api/usage-snapshots';
import { DependencyError } from '../../services/platform/errors';

const NOW = new Date('2026-11-21T12:00:00Z');

function setup() {
  const byHash = new Map<string, KeyLookupRecord>();
  let failing = false;
  let reads = 0;
  const cache = new KeyCache({
    load: async (hash) => {
      reads++;
      if (failing) throw new DependencyError('DynamoDB');
      const record = byHash.get(hash);
      return record ? { found: true, record } : { found: false };
    },
  });
  const published: UsageEvent[] = [];
  let publishFails = false;
  let mode: PublishFailureMode = 'closed';
  const metrics = new Metrics({ namespace: 'test', serviceName: 'key-api-test' });
  const handler = createKeyApiHandler({
    verifier: new KeyVerifier({ cache, keyPrefix: 'tg', clock: { now: () => NOW } }),
    publisher: {
      publish: async (event) => {
        if (publishFails) throw new Error('queue down');
        published.push(event);
      },
    },
    usage: new UsageSnapshots({ read: async () => 41, now: () => NOW }),
    clock: { now: () => NOW },
    logger: new Logger({ serviceName: 'key-api-test', logLevel: 'SILENT' }),
    metrics,
    get publishFailureMode() {
      return mode;
    },
    allowedOrigins: ['http://localhost:5173'],
  });
  const addKey = (status: KeyLookupRecord['status'], expiresAt?: string) => {
    const key = generateApiKey('tg');
    const keyId = `key_${byHash.size}`;
    byHash.set(key.keyHash, { accountId: 'acc_1', keyId, status, ...(expiresAt ? { expiresAt } : {}) });
    return { key: key.key, keyId };
  };
  return {
    handler,
    addKey,
    fail: () => {
      failing = true;
    },
    published,
    metrics,
    failPublishing: (nextMode: PublishFailureMode) => {
      publishFails = true;
      mode = nextMode;
    },
    reads: () => reads,
  };
}

function albEvent(overrides: Partial<ALBEvent> = {}): ALBEvent {
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:local:0:targetgroup/key-api/0' } },
    httpMethod: 'POST',
    path: '/',
    headers: {},
    body: null,
    isBase64Encoded: false,
    ...overrides,
  };
}

const bodyOf = (result: { body?: string }) => JSON.parse(result.body ?? 'null');

describe('key-api', () => {
  it('accepts a valid key in x-api-key, as a Bearer token, or as the JSON body', async () => {
    const { handler, addKey } = setup();
    const { key, keyId } = addKey('active');
    const events = [
      albEvent({ headers: { 'x-api-key': key } }),
      albEvent({ headers: { authorization: `Bearer ${key}` } }),
      albEvent({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) }),
      albEvent({ body: Buffer.from(JSON.stringify({ key })).toString('base64'), isBase64Encoded: true }),
      albEvent({ multiValueHeaders: { 'X-Api-Key': [key] }, headers: undefined }),
    ];
    for (const event of events) {
      const result = await handler(event);
      expect(result.statusCode).toBe(200);
      expect(bodyOf(result)).toEqual({ ok: true, keyId, usage: { today: 41, asOf: NOW.toISOString() } });
    }
  });

  it('says which refusal it was: missing, malformed, unknown, revoked, expired', async () => {
    const { handler, addKey } = setup();
    const cases: Array<[ALBEvent, string]> = [
      [albEvent(), 'missing_key'],
      [albEvent({ body: 'not json' }), 'missing_key'],
      [albEvent({ headers: { authorization: 'Basic abc' } }), 'missing_key'],
      [albEvent({ headers: { 'x-api-key': 'tg_definitelynotakey' } }), 'malformed_key'],
      [albEvent({ headers: { 'x-api-key': generateApiKey('tg').key } }), 'unknown_key'],
      [albEvent({ headers: { 'x-api-key': addKey('revoked').key } }), 'revoked_key'],
      [albEvent({ headers: { 'x-api-key': addKey('expiring', '2026-11-21T11:59:59Z').key } }), 'expired_key'],
    ];
    for (const [event, code] of cases) {
      const result = await handler(event);
      expect(result.statusCode, code).toBe(401);
      expect(bodyOf(result).error.code).toBe(code);
      expect(typeof bodyOf(result).error.message).toBe('string');
    }
  });

  it('keeps accepting a rolled key inside its grace period', async () => {
    const { handler, addKey } = setup();
    const { key } = addKey('expiring', '2026-11-21T12:00:01Z');
    expect((await handler(albEvent({ headers: { 'x-api-key': key } }))).statusCode).toBe(200);
  });

  it('refuses malformed keys without reading the store', async () => {
    const { handler, reads } = setup();
    for (let i = 0; i < 100; i++) {
      await handler(albEvent({ headers: { 'x-api-key': `tg_${'x'.repeat(i % 40)}` } }));
    }
    expect(reads()).toBe(0);
  });

  it('refuses two different keys in one request with a 400', async () => {
    const { handler, addKey } = setup();
    const result = await handler(
      albEvent({
        headers: { 'x-api-key': addKey('active').key, authorization: `Bearer ${addKey('active').key}` },
      }),
    );
    expect(result.statusCode).toBe(400);
    expect(bodyOf(result).error.code).toBe('invalid_request');
  });

  it('answers 503 with retry-after, not 500, when the store is down and the key is not cached', async () => {
    const { handler, addKey, fail } = setup();
    const { key } = addKey('active');
    fail();
    const result = await handler(albEvent({ headers: { 'x-api-key': key } }));
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('1');
    expect(bodyOf(result).error.code).toBe('service_unavailable');
  });

  it('allows CORS only for configured origins and answers preflights', async () => {
    const { handler } = setup();
    const allowed = await handler(
      albEvent({ httpMethod: 'OPTIONS', headers: { origin: 'http://localhost:5173' } }),
    );
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers?.['access-control-allow-origin']).toBe('http://localhost:5173');
    const other = await handler(albEvent({ headers: { origin: 'https://evil.example' } }));
    expect(other.headers?.['access-control-allow-origin']).toBeUndefined();
  });

  it('publishes exactly one valid usage event per accepted request and none for refusals', async () => {
    const { handler, addKey, published } = setup();
    const { key, keyId } = addKey('active');
    await handler(albEvent({ headers: { 'x-api-key': key } }));
    await handler(albEvent({ headers: { 'x-api-key': key } }));
    await handler(albEvent({ headers: { 'x-api-key': addKey('revoked').key } }));
    await handler(albEvent());
    expect(published).toHaveLength(2);
    for (const event of published) {
      expect(usageEventSchema.parse(event)).toMatchObject({
        v: 1,
        keyId,
        accountId: 'acc_1',
        ts: NOW.getTime(),
        units: 1,
      });
    }
    expect(published[0]?.id).not.toBe(published[1]?.id);
  });

  it('fails closed by default when the usage event cannot be published: 503, nothing accepted', async () => {
    const { handler, addKey, failPublishing } = setup();
    const { key } = addKey('active');
    failPublishing('closed');
    const result = await handler(albEvent({ headers: { 'x-api-key': key } }));
    expect(result.statusCode).toBe(503);
    expect(bodyOf(result).error.code).toBe('service_unavailable');
  });

  it('can fail open instead, letting the request through and counting it as unmetered', async () => {
    const { handler, addKey, failPublishing, metrics } = setup();
    const { key } = addKey('active');
    failPublishing('open');
    const result = await handler(albEvent({ headers: { 'x-api-key': key } }));
    expect(result.statusCode).toBe(200);
    const stored = JSON.stringify(metrics.serializeMetrics());
    expect(stored).toContain('UnmeteredRequests');
    expect(stored).toContain('UsagePublishFailures');
  });
});
