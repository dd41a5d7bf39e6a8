import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  API_MD,
  BLOCK_END,
  BLOCK_START,
  constraintText,
  type OpenApiDocument,
  renderApiMarkdown,
  renderReference,
  replaceBlock,
  slug,
  typeText,
  userApiDocument,
} from '../../infra/ops/api-reference';

// docs/api.md's user API reference is generated (`npm run docs:api`, infra/ops/api-reference.ts) from
// the OpenAPI document the user API serves. In process (app.request), no network.

describe('docs/api.md', () => {
  it("is what the user API's OpenAPI document renders, byte for byte (no hand edits in the block)", async () => {
    const committed = readFileSync(API_MD, 'utf8');
    expect(
      committed === (await renderApiMarkdown(committed)),
      'docs/api.md differs from what the user API’s OpenAPI document renders: run `npm run docs:api` and commit it ' +
        '(edit the routes’ schemas, or the text outside the generated block, never the block)',
    ).toBe(true);
  });

  it('documents every operation the API serves, with each status it declares', async () => {
    const document = await userApiDocument();
    const reference = renderReference(document);
    const operations = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ method, path, operation })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(14);
    for (const { method, path, operation } of operations) {
      const section = reference.split(`#### ${method.toUpperCase()} ${path}\n`)[1]?.split('\n#### ')[0];
      expect(section, `${method} ${path}`).toBeDefined();
      for (const status of Object.keys(operation.responses))
        expect(section, `${method} ${path} ${status}`).toMatch(new RegExp(`^\\| ${status} \\|`, 'm'));
    }
  });

  it('links every schema it names to a section of its own', async () => {
    const reference = renderReference(await userApiDocument());
    const anchors = new Set([...reference.matchAll(/^#+ (.+)$/gm)].map((m) => slug(m[1] ?? '')));
    const links = [...reference.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
    expect(links.length).toBeGreaterThan(30);
    expect(links.filter((link) => !anchors.has(link ?? ''))).toEqual([]);
  });
});

describe('the renderer', () => {
  const document: OpenApiDocument = {
    openapi: '3.1.0',
    info: { title: 'T', version: '1' },
    paths: {
      '/things/{id}': {
        put: {
          tags: ['Things'],
          summary: 'Replace a thing',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: 8 } }],
          requestBody: {
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } },
          },
          responses: {
            '200': { description: 'The thing', content: { 'application/json': { schema: {} } } },
            '409': { description: 'Taken (`conflict`)' },
          },
        },
      },
    },
    components: {
      schemas: {
        Thing: {
          type: 'object',
          properties: {
            size: { type: 'integer', exclusiveMinimum: 0, maximum: 10, description: 'How big' },
            tags: {
              type: 'array',
              items: { type: 'object', properties: { label: { type: ['string', 'null'] } } },
            },
          },
          required: ['size'],
        },
      },
    },
  };

  it('renders operations, parameters, bodies, responses and nested fields from the document', () => {
    const reference = renderReference(document);
    expect(reference).toContain('#### PUT /things/{id}');
    expect(reference).toContain('| `id` | path | string | yes | 0–8 characters |');
    expect(reference).toContain('Body (`application/json`): [Thing](#thing-schema)');
    expect(reference).toContain('| 409 | — | Taken (`conflict`) |');
    expect(reference).toContain('| `size` | integer | yes | How big (> 0, ≤ 10) |');
    expect(reference).toContain('| `tags[].label` | string \\| null |  |  |');
  });

  it('follows the document: a new operation or a changed field changes the render', () => {
    const before = renderReference(document);
    const changed = structuredClone(document);
    const thing = changed.components?.schemas?.Thing?.properties;
    if (thing) thing.size = { type: 'integer', maximum: 20 };
    changed.paths['/things'] = {
      get: { summary: 'List things', responses: { '200': { description: 'ok' } } },
    };
    const after = renderReference(changed);
    expect(after).not.toBe(before);
    expect(after).toContain('| `size` | integer | yes | ≤ 20 |');
    expect(after).toContain('| [`GET /things`](#get-things) | List things |');
  });

  it('says types and bounds in a few words', () => {
    expect(
      typeText({ anyOf: [{ $ref: '#/components/schemas/A' }, { type: 'string', format: 'date' }] }),
    ).toBe('[A](#a-schema) | string (date)');
    expect(typeText({ enum: ['day', 'month'] })).toBe('`day` | `month`');
    expect(typeText({ type: 'object', additionalProperties: { type: 'number' } })).toBe(
      'map of string to number',
    );
    expect(constraintText({ minimum: 1, maximum: 100, default: 50 })).toBe('≥ 1, ≤ 100, default `50`');
  });

  it('keeps the text around the block and refuses a file without one', () => {
    const page = `# Intro\n${BLOCK_START}\nold\n${BLOCK_END}\n## After\n`;
    expect(replaceBlock(page, 'new\n')).toBe(`# Intro\n${BLOCK_START}\nnew\n${BLOCK_END}\n## After\n`);
    expect(() => replaceBlock('# no block\n', 'new\n')).toThrow(/must hold/);
  });

  it('slugs headings as GitHub does', () => {
    expect(slug('POST /keys/{id}/roll')).toBe('post-keysidroll');
    expect(slug('Account (schema)')).toBe('account-schema');
    expect(slug('Plans: rate limits, quotas, suspension')).toBe('plans-rate-limits-quotas-suspension');
  });
});
