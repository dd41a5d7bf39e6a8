import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';

/**
 * Stripe's published response schemas (test/fixtures/stripe-openapi.json, extracted from the
 * stripe/openapi repository by infra/local/stripe/extract-openapi.ts) as validators: an answer of
 * the stand-in is checked against the schema of the operation and status that produced it.
 */
interface Fixture {
  readonly source: { readonly commit: string; readonly apiVersion: string };
  readonly operations: Record<string, Record<string, object>>;
  readonly components: { readonly schemas: Record<string, object> };
}

/**
 * OpenAPI 3.0's `nullable: true` as JSON Schema: `null` joins the type (and the enum), or, beside
 * `anyOf`/`$ref`, becomes a `null` alternative. Stripe writes both forms.
 */
function withNull(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withNull);
  if (typeof node !== 'object' || node === null) return node;
  const { nullable, ...rest } = node as Record<string, unknown>;
  const out = Object.fromEntries(Object.entries(rest).map(([key, value]) => [key, withNull(value)]));
  if (nullable !== true) return out;
  if (typeof out.type === 'string') {
    return {
      ...out,
      type: [out.type, 'null'],
      ...(Array.isArray(out.enum) ? { enum: [...out.enum, null] } : {}),
    };
  }
  return { anyOf: [out, { type: 'null' }] };
}

const fixture = withNull(
  JSON.parse(readFileSync(new URL('../fixtures/stripe-openapi.json', import.meta.url), 'utf8')),
) as Fixture;

// Formats such as `unix-time` and the `x-…` extensions are Stripe's annotations, not constraints.
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
ajv.addSchema({ components: fixture.components }, 'stripe');

const cache = new Map<string, ValidateFunction>();
function compiled(id: string, schema: object): ValidateFunction {
  let validate = cache.get(id);
  if (validate === undefined) {
    // Rewrite local refs to the registered document so the operation schema resolves them there.
    const rebased = JSON.parse(
      JSON.stringify(schema).replaceAll('"#/components/', '"stripe#/components/'),
    ) as object;
    validate = ajv.compile(rebased);
    cache.set(id, validate);
  }
  return validate;
}

export const STRIPE_SPEC_SOURCE = fixture.source;

/** Problems of `body` as the answer (`status`) of `operation`; empty when it validates. */
export function contractProblems(operation: string, status: number, body: unknown): string[] {
  const responses = fixture.operations[operation];
  if (responses === undefined) return [`${operation} is not an operation of the fixture`];
  const schema = responses[String(status)] ?? responses.default;
  if (schema === undefined) return [`${operation} has no schema for ${status}`];
  const validate = compiled(`${operation} ${status in responses ? status : 'default'}`, schema);
  if (validate(body)) return [];
  return (validate.errors ?? []).map(
    (error) => `${operation} ${status} ${error.instancePath} ${error.message}`,
  );
}

/** Problems of a component (e.g. `event`, `subscription`) as Stripe's schema defines it. */
export function componentProblems(name: string, value: unknown): string[] {
  if (fixture.components.schemas[name] === undefined)
    return [`components.schemas.${name} is not in the fixture`];
  const validate = compiled(`component ${name}`, { $ref: `#/components/schemas/${name}` });
  if (validate(value)) return [];
  return (validate.errors ?? []).map((error) => `${name} ${error.instancePath} ${error.message}`);
}
