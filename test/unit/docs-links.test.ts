import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { slug } from '../../infra/ops/api-reference';

// Every relative link of the README and docs/ names a file of the repository, and every `#anchor`
// a heading of the page it points to (as GitHub renders headings), so a move or a renamed section
// cannot leave a dead link behind. Links to other sites are not fetched (no network here).

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Markdown without its fenced code blocks. */
function unfenced(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

/** The text whose links a reader can follow: code blocks and code spans removed. */
function prose(markdown: string): string {
  return unfenced(markdown).replace(/`[^`\n]*`/g, '');
}

/** The anchors GitHub gives a page's headings: duplicates get -1, -2, … */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  // A heading's code spans are part of its anchor (`npm start` → npm-start).
  for (const match of unfenced(markdown).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = slug(match[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

const anchorsOf = new Map<string, Set<string>>();
function anchorsOfFile(path: string): Set<string> {
  let found = anchorsOf.get(path);
  if (!found) {
    found = anchors(readFileSync(path, 'utf8'));
    anchorsOf.set(path, found);
  }
  return found;
}

function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)].map((m) => m[1] ?? '');
}

describe('links in the README and docs/', () => {
  it('finds the pages and their links', () => {
    expect(PAGES).toEqual(expect.arrayContaining(['README.md', 'docs/api.md', 'docs/metering.md']));
    expect(links(readFileSync(join(ROOT, 'README.md'), 'utf8')).length).toBeGreaterThan(10);
  });

  for (const page of PAGES) {
    it(`${page}: every relative link resolves, anchors included`, () => {
      const text = readFileSync(join(ROOT, page), 'utf8');
      const dead: string[] = [];
      for (const link of links(text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // https:, mailto:
        const [path = '', anchor] = link.split('#');
        const target = path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), path);
        if (!target.startsWith(ROOT) || !existsSync(target)) {
          dead.push(`${link} (no file ${relative(ROOT, target)})`);
          continue;
        }
        if (anchor === undefined || statSync(target).isDirectory()) continue;
        if (!target.endsWith('.md')) dead.push(`${link} (an anchor into a file that is not Markdown)`);
        else if (!anchorsOfFile(target).has(anchor)) dead.push(`${link} (no such heading)`);
      }
      expect(dead, `dead links in ${page}`).toEqual([]);
    });
  }

  it('reads headings and links as GitHub does', () => {
    const page =
      '# A\n## Plans: rate limits\n## A\n## The local stack: `npm start`\n```\n## not a heading [x](nowhere.md)\n```\n[y](`z`)';
    expect([...anchors(page)]).toEqual(['a', 'plans-rate-limits', 'a-1', 'the-local-stack-npm-start']);
    expect(links(page)).toEqual([]);
    expect(links('see [api](docs/api.md#errors) and [site](https://example.com)')).toEqual([
      'docs/api.md#errors',
      'https://example.com',
    ]);
  });
});
