import { describe, expect, it } from 'vitest';
import { keyNameSchema } from '../../services/user-api/routes/key-schemas';

// Key names are shown to their owner (the page, the API): a name must display as what it is.
describe('key names', () => {
  it.each([
    ['plain', 'production server'],
    ['non-Latin scripts', 'сервер 生产 خادم'],
    ['emoji with joiners', '👩‍💻 laptop'],
  ])('accepts %s', (_, name) => {
    expect(keyNameSchema.safeParse(name)).toEqual({ success: true, data: name });
  });

  it.each([
    ['NUL', 'prod\u0000'],
    ['another control character', 'a\u0007b'],
    ['a right-to-left override', 'invoice\u202Efdp.exe'],
    ['a bidirectional isolate', '\u2066admin\u2069'],
    ['a lone surrogate', 'key \uD800'],
    ['nothing but spaces', '   '],
    ['65 characters', 'x'.repeat(65)],
  ])('refuses %s', (_, name) => {
    expect(keyNameSchema.safeParse(name).success).toBe(false);
  });
});
