/**
 * The size of a stored DynamoDB item in bytes, as DynamoDB counts it for capacity units (it
 * follows the documented item-size rules, "DynamoDB item sizes and formats" in the developer
 * guide): each attribute is its name's UTF-8 bytes plus its value's size, where a string is its
 * UTF-8 bytes; a number 1 byte per two significant digits (leading and trailing zeros trimmed)
 * plus 1; a binary its raw bytes; a boolean or null 1; a list or map 3 bytes plus its elements,
 * each 1 byte more; a set the sum of its elements. The 100 bytes of per-item storage overhead are
 * not part of it (they are billed as storage, not as read or write units).
 */
export type Marshalled = Record<string, unknown>;

const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/** Significant digits of a DynamoDB number's text: sign, point, exponent and outer zeros dropped. */
function significantDigits(number: string): number {
  const mantissa = number.replace(/^[-+]/, '').split(/[eE]/)[0] ?? '';
  const digits = mantissa.replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.max(1, digits.length);
}

const numberSize = (number: string) => Math.ceil(significantDigits(number) / 2) + 1;

/** A marshalled value's size ({S: …}, {N: …}, {M: …}, …), its name not included. */
export function valueSize(value: unknown): number {
  if (!value || typeof value !== 'object') return 0;
  const v = value as Record<string, unknown>;
  if (typeof v.S === 'string') return utf8(v.S);
  if (typeof v.N === 'string') return numberSize(v.N);
  if (v.B instanceof Uint8Array) return v.B.byteLength;
  if (typeof v.B === 'string') return Buffer.from(v.B, 'base64').byteLength;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (Array.isArray(v.SS)) return (v.SS as string[]).reduce((sum, s) => sum + utf8(s), 0);
  if (Array.isArray(v.NS)) return (v.NS as string[]).reduce((sum, n) => sum + numberSize(n), 0);
  if (Array.isArray(v.BS)) return (v.BS as Uint8Array[]).reduce((sum, b) => sum + b.byteLength, 0);
  if (Array.isArray(v.L)) return 3 + v.L.reduce((sum: number, item) => sum + 1 + valueSize(item), 0);
  if (v.M && typeof v.M === 'object') {
    return 3 + Object.entries(v.M).reduce((sum, [name, item]) => sum + 1 + utf8(name) + valueSize(item), 0);
  }
  return 0;
}

/** A marshalled item's size: every attribute's name and value. */
export function dynamoItemSize(item: Marshalled): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += utf8(name) + valueSize(value);
  return size;
}
