/** A request's parameters after Stripe's bracket notation is expanded (`items[0][price]=…`). */
export type Params = { [key: string]: ParamValue };
export type ParamValue = string | Params | ParamValue[];

/** `a[b][0][c]` → `['a', 'b', '0', 'c']`. */
function keyPath(key: string): string[] {
  const head = key.split('[', 1)[0] ?? key;
  const rest = [...key.slice(head.length).matchAll(/\[([^\]]*)\]/g)].map((match) => match[1] ?? '');
  return [head, ...rest];
}

function assign(target: Params, path: readonly string[], value: string): void {
  let node: Params = target;
  for (const [index, segment] of path.entries()) {
    if (index === path.length - 1) {
      node[segment] = value;
      return;
    }
    const next = node[segment];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next;
    } else {
      const created: Params = {};
      node[segment] = created;
      node = created;
    }
  }
}

/** Objects whose keys are all indices (`0`, `1`, …) become arrays, in index order. */
function arraysFromIndices(value: ParamValue): ParamValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  const converted = Object.fromEntries(keys.map((key) => [key, arraysFromIndices(value[key] as ParamValue)]));
  if (keys.length > 0 && keys.every((key) => /^\d+$/.test(key))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((key) => converted[key] as ParamValue);
  }
  return converted;
}

/**
 * Parses `application/x-www-form-urlencoded` as the Stripe SDK encodes it: nested objects and
 * arrays in bracket notation, every leaf a string. (A query string is parsed the same way.)
 */
export function parseStripeParams(encoded: string): Params {
  const out: Params = {};
  for (const [key, value] of new URLSearchParams(encoded)) assign(out, keyPath(key), value);
  return arraysFromIndices(out) as Params;
}
