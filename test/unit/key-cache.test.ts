import { describe, expect, it } from 'vitest';
import { type CachedLookup, KeyCache } from '../../services/gate/key-cache';
import { DependencyError } from '../../services/platform/errors';

const active: CachedLookup = { found: true, record: { accountId: 'acc', keyId: 'key_1', status: 'active' } };
const revoked: CachedLookup = {
  found: true,
  record: { accountId: 'acc', keyId: 'key_1', status: 'revoked' },
};

function harness(windows = { freshMs: 1000, staleMs: 5000, negativeMs: 200, maxEntries: 3 }) {
  let now = 0;
  let answer: CachedLookup | Error = active;
  const reads: string[] = [];
  const cache = new KeyCache({
    windows,
    now: () => now,
    load: async (hash) => {
      reads.push(hash);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  return {
    cache,
    reads,
    advance: (ms: number) => {
      now += ms;
    },
    answer: (next: CachedLookup | Error) => {
      answer = next;
    },
  };
}

describe('KeyCache', () => {
  it('serves a fresh answer without reading again', async () => {
    const h = harness();
    expect((await h.cache.get('h')).source).toBe('loaded');
    h.advance(999);
    expect(await h.cache.get('h')).toEqual({ lookup: active, source: 'fresh' });
    expect(h.reads).toHaveLength(1);
  });

  it('sees a revocation as soon as the fresh window ends', async () => {
    const h = harness();
    await h.cache.get('h');
    h.answer(revoked);
    h.advance(500);
    expect((await h.cache.get('h')).lookup).toEqual(active);
    h.advance(500);
    expect(await h.cache.get('h')).toEqual({ lookup: revoked, source: 'loaded' });
  });

  it('keeps a known key working within the stale window when the store fails, and not after', async () => {
    const h = harness();
    await h.cache.get('h');
    h.answer(new DependencyError('DynamoDB'));
    h.advance(5999);
    expect(await h.cache.get('h')).toEqual({ lookup: active, source: 'stale' });
    h.advance(1);
    await expect(h.cache.get('h')).rejects.toThrow('DynamoDB is unavailable');
  });

  it('serves no stale answer when the read fails for any other reason (a bug, a refused request)', async () => {
    const h = harness();
    await h.cache.get('h');
    h.advance(1001);
    h.answer(new Error('ValidationException: the index does not exist'));
    await expect(h.cache.get('h')).rejects.toThrow('ValidationException');
  });

  it('remembers unknown keys for the negative window only, and never serves them stale', async () => {
    const h = harness();
    h.answer({ found: false });
    await h.cache.get('x');
    h.advance(199);
    expect((await h.cache.get('x')).source).toBe('fresh');
    expect(h.reads).toHaveLength(1);
    h.advance(1);
    h.answer(new Error('down'));
    await expect(h.cache.get('x')).rejects.toThrow('down');
  });

  it('shares one read among concurrent misses for the same key', async () => {
    const h = harness();
    await Promise.all(Array.from({ length: 50 }, () => h.cache.get('h')));
    expect(h.reads).toEqual(['h']);
  });

  it('stays within its size bound, evicting the least recently used', async () => {
    const h = harness();
    for (const k of ['a', 'b', 'c', 'd']) await h.cache.get(k);
    await h.cache.get('a');
    expect(h.reads).toEqual(['a', 'b', 'c', 'd', 'a']);
  });

  it('keeps unknown keys apart: a flood of forged keys cannot evict a known key', async () => {
    const h = harness();
    await h.cache.get('customer');
    h.answer({ found: false });
    for (let i = 0; i < 10; i++) await h.cache.get(`forged-${i}`);
    h.answer(new DependencyError('DynamoDB'));
    h.advance(1500);
    // Past its fresh window, DynamoDB down: the customer's entry is still there to fall back on.
    expect(await h.cache.get('customer')).toEqual({ lookup: active, source: 'stale' });
    expect(h.reads.filter((r) => r === 'customer')).toHaveLength(2);
  });
});
