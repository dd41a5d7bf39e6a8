import { invalidRequest, missingParam } from './errors';
import type { Params, ParamValue } from './form';

/** Typed reads of a request's parameters that answer 400 as Stripe does when one is wrong. */
export class ParamReader {
  constructor(
    readonly raw: Params,
    private readonly prefix = '',
  ) {}

  private name(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}[${key}]`;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  optionalString(key: string): string | undefined {
    const value = this.raw[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw invalidRequest(`Invalid string: ${this.name(key)}`, this.name(key));
    return value;
  }

  string(key: string): string {
    const value = this.optionalString(key);
    if (value === undefined || value === '') throw missingParam(this.name(key));
    return value;
  }

  optionalInteger(key: string): number | undefined {
    const value = this.optionalString(key);
    if (value === undefined) return undefined;
    if (!/^-?\d+$/.test(value)) throw invalidRequest(`Invalid integer: ${value}`, this.name(key));
    return Number(value);
  }

  integer(key: string): number {
    const value = this.optionalInteger(key);
    if (value === undefined) throw missingParam(this.name(key));
    return value;
  }

  optionalBoolean(key: string): boolean | undefined {
    const value = this.optionalString(key);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false')
      throw invalidRequest(`Invalid boolean: ${value}`, this.name(key));
    return value === 'true';
  }

  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const value = this.optionalString(key);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      throw invalidRequest(`Invalid ${this.name(key)}: must be one of ${allowed.join(', ')}`, this.name(key));
    }
    return value as T;
  }

  optionalObject(key: string): ParamReader | undefined {
    const value = this.raw[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw invalidRequest(`Invalid object: ${this.name(key)}`, this.name(key));
    }
    return new ParamReader(value, this.name(key));
  }

  list(key: string): ParamReader[] {
    const value: ParamValue | undefined = this.raw[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw invalidRequest(`Invalid array: ${this.name(key)}`, this.name(key));
    return value.map((item, index) => {
      if (typeof item !== 'object' || Array.isArray(item)) {
        throw invalidRequest(`Invalid object: ${this.name(key)}[${index}]`, `${this.name(key)}[${index}]`);
      }
      return new ParamReader(item, `${this.name(key)}[${index}]`);
    });
  }

  /** `metadata[...]`: string values only, as Stripe stores them. */
  metadata(key = 'metadata'): Record<string, string> | undefined {
    const value = this.optionalObject(key);
    if (value === undefined) return undefined;
    return Object.fromEntries(Object.keys(value.raw).map((name) => [name, value.string(name)]));
  }
}
