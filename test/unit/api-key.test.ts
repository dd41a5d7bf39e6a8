import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey, isWellFormedApiKey, keyStart } from '../../services/accounts/api-key';

describe('API key format', () => {
  it('issues prefixed keys with 128 random bits and a checksum that validates', () => {
    const { key, keyHash, start } = generateApiKey('tg');
    expect(key).toMatch(/^tg_[0-9A-Za-z]{28}$/);
    expect(isWellFormedApiKey(key, 'tg')).toBe(true);
    expect(keyHash).toBe(hashApiKey(key));
    expect(keyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(start).toBe(key.slice(0, 7));
    expect(keyStart(key, 'tg')).toBe(start);
  });

  it('never repeats a key', () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateApiKey('tg').key));
    expect(keys.size).toBe(2000);
  });

  it('refuses a key with any single character changed (typo or guess)', () => {
    const { key } = generateApiKey('tg');
    let accepted = 0;
    for (let i = 3; i < key.length; i++) {
      const swapped = key[i] === 'a' ? 'b' : 'a';
      if (isWellFormedApiKey(key.slice(0, i) + swapped + key.slice(i + 1), 'tg')) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it('refuses another deployment prefix, wrong lengths and foreign characters', () => {
    const { key } = generateApiKey('tg');
    expect(isWellFormedApiKey(key, 'acme')).toBe(false);
    expect(isWellFormedApiKey(key.slice(0, -1), 'tg')).toBe(false);
    expect(isWellFormedApiKey(`${key}x`, 'tg')).toBe(false);
    expect(isWellFormedApiKey(`${key.slice(0, 10)}-${key.slice(11)}`, 'tg')).toBe(false);
    expect(isWellFormedApiKey('', 'tg')).toBe(false);
    expect(isWellFormedApiKey('tg_', 'tg')).toBe(false);
  });

  it('accepts only checksum-valid strings among random ones (about 1 in 2^32)', () => {
    let accepted = 0;
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    for (let n = 0; n < 20_000; n++) {
      let body = 'tg_';
      for (let i = 0; i < 28; i++) body += alphabet[Math.floor(Math.random() * 62)];
      if (isWellFormedApiKey(body, 'tg')) accepted++;
    }
    expect(accepted).toBe(0);
  });

  it('rejects prefixes that would make keys ambiguous', () => {
    expect(() => generateApiKey('TG')).toThrow(RangeError);
    expect(() => generateApiKey('t_g')).toThrow(RangeError);
  });
});
