/**
 * Extracts, from Stripe's published OpenAPI document (stripe/openapi, `openapi/spec3.json`), the
 * response schemas of the operations the local Stripe stand-in serves, with every component they
 * reference, into the fixture the stand-in's fidelity test validates its answers against.
 *
 *   npx tsx infra/local/stripe/extract-openapi.ts --spec <spec3.json> \
 *     [--git-dir <stripe/openapi git dir> --commit <sha>] [--out test/fixtures/stripe-openapi.json]
 *
 * With --git-dir and --commit the script refuses a spec that is not, byte for byte (as Stripe
 * formats it), the blob that commit holds at openapi/spec3.json: a tree names its blobs by hash even
 * where a shallow or partial copy lacks the blob itself. docs/stripe-stand-in.md says where to get it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVED_OPERATIONS, WEBHOOK_OBJECT_SCHEMAS } from './operations';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SPEC_PATH = 'openapi/spec3.json';
const DEFAULT_OUT = 'test/fixtures/stripe-openapi.json';
const REF_PREFIX = '#/components/schemas/';
/** Documentation-only keys: they do not constrain an answer and would triple the fixture's size. */
const DROPPED_KEYS = new Set([
  'description',
  'title',
  'x-expandableFields',
  'x-resourceId',
  'x-stripeBypassValidation',
]);

/** Git's name for a blob: the SHA-1 of `blob <size>\0<content>`. */
export function gitBlobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

/** The blob ids this spec may have in git: as read, and as Stripe formats it (2-space JSON, no newline). */
function candidateBlobIds(raw: Buffer, spec: Json): string[] {
  return [gitBlobId(raw), gitBlobId(Buffer.from(JSON.stringify(spec, null, 2)))];
}

function expectedBlobId(gitDir: string, commit: string): string {
  const result = spawnSync('git', ['--git-dir', gitDir, 'rev-parse', `${commit}:${SPEC_PATH}`], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`git rev-parse ${commit}:${SPEC_PATH} failed: ${result.stderr}`);
  return result.stdout.trim();
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A copy of a schema without documentation keys, and with the `$ref` branches of expandable fields
 * (those carrying `x-expansionResources`) removed: the stand-in never expands, so such a field must
 * be the id string; an expanded object would fail validation, which is stricter, never looser.
 * Every `$ref` kept is reported to `onRef`.
 */
function slim(node: Json, onRef: (name: string) => void, isPropertyMap = false): Json {
  if (Array.isArray(node)) return node.map((item) => slim(item, onRef));
  if (!isObject(node)) return node;
  const ref = node.$ref;
  if (typeof ref === 'string') {
    onRef(ref.slice(REF_PREFIX.length));
    return { $ref: ref };
  }
  const out: JsonObject = {};
  const expandable = !isPropertyMap && node['x-expansionResources'] !== undefined;
  for (const [key, value] of Object.entries(node)) {
    // Under `properties` the keys are field names (a customer has a `description`), not annotations.
    if (!isPropertyMap && (DROPPED_KEYS.has(key) || key === 'x-expansionResources')) continue;
    if (expandable && key === 'anyOf' && Array.isArray(value)) {
      out.anyOf = value
        .filter((branch) => !(isObject(branch) && '$ref' in branch))
        .map((b) => slim(b, onRef));
      continue;
    }
    out[key] = slim(value, onRef, !isPropertyMap && key === 'properties');
  }
  return out;
}

interface Extracted {
  readonly operations: JsonObject;
  readonly schemas: JsonObject;
}

/** The served operations' response schemas (200 and the error `default`) and their closure. */
export function extract(spec: JsonObject): Extracted {
  const all = (spec.components as JsonObject).schemas as JsonObject;
  const schemas: JsonObject = {};
  const pending: string[] = [];
  const onRef = (name: string) => {
    if (!(name in schemas) && !pending.includes(name)) pending.push(name);
  };
  const operations: JsonObject = {};
  for (const { method, path } of SERVED_OPERATIONS) {
    const responses = ((spec.paths as JsonObject)[path] as JsonObject | undefined)?.[method];
    if (!isObject(responses)) throw new Error(`${method.toUpperCase()} ${path} is not in the spec`);
    const byStatus: JsonObject = {};
    for (const [status, response] of Object.entries(responses.responses as JsonObject)) {
      const content = ((response as JsonObject).content as JsonObject)['application/json'] as JsonObject;
      byStatus[status] = slim(content.schema as Json, onRef);
    }
    operations[`${method.toUpperCase()} ${path}`] = byStatus;
  }
  for (const name of WEBHOOK_OBJECT_SCHEMAS) onRef(name);
  for (let name = pending.shift(); name !== undefined; name = pending.shift()) {
    const schema = all[name];
    if (schema === undefined) throw new Error(`components.schemas.${name} is not in the spec`);
    schemas[name] = null; // claimed before walking, so a cycle does not queue it again
    schemas[name] = slim(schema, onRef);
  }
  return {
    operations,
    schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
  };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      spec: { type: 'string' },
      'git-dir': { type: 'string' },
      commit: { type: 'string' },
      out: { type: 'string', default: DEFAULT_OUT },
    },
  });
  if (values.spec === undefined) throw new Error('--spec <path to spec3.json> is required');
  const raw = readFileSync(values.spec);
  const spec = JSON.parse(raw.toString('utf8')) as JsonObject;
  const blobIds = candidateBlobIds(raw, spec);
  let verified = false;
  if (values['git-dir'] !== undefined && values.commit !== undefined) {
    const expected = expectedBlobId(values['git-dir'], values.commit);
    if (!blobIds.includes(expected)) {
      throw new Error(
        `the spec is not ${values.commit}:${SPEC_PATH} (blob ${expected}; this one is ${blobIds.join(' or ')})`,
      );
    }
    verified = true;
  }
  const { operations, schemas } = extract(spec);
  const info = spec.info as JsonObject;
  const fixture = {
    source: {
      repository: 'stripe/openapi',
      path: SPEC_PATH,
      commit: values.commit ?? null,
      blob: verified ? expectedBlobId(values['git-dir'] as string, values.commit as string) : blobIds[1],
      verifiedAgainstCommit: verified,
      apiVersion: info.version,
    },
    operations,
    components: { schemas },
  };
  const out = resolve(values.out);
  writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
  // The repository's formatter owns JSON layout; the fixture is committed in its style.
  spawnSync('npx', ['biome', 'format', '--write', out], { stdio: 'inherit' });
  process.stdout.write(
    `${Object.keys(operations).length} operations, ${Object.keys(schemas).length} schemas → ${out}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
