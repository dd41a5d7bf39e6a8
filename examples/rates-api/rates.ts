/**
 * Fixed, illustrative exchange rates (units of each currency per US dollar): the example is about
 * the gate, not about markets, so its answers never change.
 */
const PER_USD: Readonly<Record<string, number>> = {
  USD: 1,
  EUR: 0.92,
  GBP: 0.79,
  JPY: 151.4,
  CHF: 0.88,
  CAD: 1.37,
};

export const RATES_AS_OF = '2026-11-30';
export const SUPPORTED_CURRENCIES = Object.keys(PER_USD);

/** What one unit of `base` buys of every other currency, or undefined for an unknown one. */
export function ratesFrom(base: string): Record<string, number> | undefined {
  const basePerUsd = PER_USD[base];
  if (basePerUsd === undefined) return undefined;
  const rates: Record<string, number> = {};
  for (const [code, perUsd] of Object.entries(PER_USD)) {
    if (code !== base) rates[code] = Math.round((perUsd / basePerUsd) * 1e6) / 1e6;
  }
  return rates;
}
