/**
 * Which files decide a reliability scenario's figures, and their fingerprint. A scenario names its
 * test files and the product entry modules it exercises (rows.ts `decidedBy`); what decides it is
 * their local-import closure (imports as esbuild resolves them, as tsx and vitest do: a few seconds
 * for every scenario at once), plus the folders of the harness it runs on and the files every run
 * depends on.
 *
 * The harness (a `decidedBy` entry ending in `/`: infra/local/, test/setup/) counts whole, with
 * what it imports from other harness folders and contracts/, but not the deployables it composes:
 * infra/local/stack.ts imports every deployable's compose.ts, and following it would make every
 * scenario depend on everything again. A scenario that calls the local stack's key-api names
 * services/key-api/compose.ts itself.
 *
 * This file and the rest of test/reliability/report/ are not in any closure: they render figures,
 * they do not decide them, and a report change must not call every row stale.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { build, type Plugin } from 'esbuild';

/** Every scenario depends on these: the exact dependencies, the compiler settings and vitest's. */
export const ALWAYS_DECIDING = ['package-lock.json', 'tsconfig.json', 'vitest.config.ts'] as const;

/** Renders figures, decides none: never part of a closure (see the file comment). */
export const NOT_DECIDING = ['test/reliability/report/', 'test/reliability/figures.json'] as const;

/** What a harness folder's files are followed into (contracts/ imports nothing of ours). */
const HARNESS_MAY_FOLLOW = ['contracts/'];

const MODULE = /\.(?:[cm]?[jt]s|tsx|jsx)$/;

/** An import that does not resolve, as a node of the graph: `<importer> imports unresolved <specifier>`. */
const UNRESOLVED = ' imports unresolved ';

/** What decides one scenario: its fingerprint and, for the messages, each file's own hash. */
export interface SourceSet {
  /** sha256 over the sorted paths and contents of `files`: equal fingerprints, same code measured. */
  fingerprint: string;
  /** Path (from the repository root) → the first 12 hex digits of the sha256 of its contents. */
  files: Record<string, string>;
}

export interface DecidedScenario {
  name: string;
  /** Files (their imports followed) and harness folders (ending in `/`), from the repository root. */
  decidedBy: readonly string[];
}

const isFolder = (entry: string) => entry.endsWith('/');
const posix = (path: string) => path.split(sep).join('/');
const under = (path: string, folders: readonly string[]) => folders.some((f) => path.startsWith(f));

/** Tracked files and new ones not ignored under `folder` (so an un-added file counts already). */
function filesUnder(root: string, folder: string): string[] {
  const listed = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', folder],
    { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return [...new Set(listed.split('\0').filter(Boolean))].filter((path) => {
    const full = join(root, path);
    return existsSync(full) && statSync(full).isFile() && !under(path, NOT_DECIDING);
  });
}

/**
 * The local import graph of `entries` and what they import, file → the files it imports, as
 * esbuild resolves them (type-only imports are erased, so they do not count). Every import is made
 * external once resolved, so a file is parsed alone and never linked: a tree in the middle of a
 * move still has a graph (an import that does not resolve is a node of its own, hashed by name).
 * Imports into the report are left out: it renders figures, decides none.
 */
async function importGraph(root: string, entries: readonly string[]): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  let edges = new Map<string, Set<string>>();
  const recorder: Plugin = {
    name: 'tollgate-import-graph',
    setup(build) {
      build.onResolve({ filter: /^[./]/ }, async (args) => {
        if (args.pluginData === 'resolving' || args.kind === 'entry-point') return undefined;
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'resolving',
        });
        const from = posix(relative(root, args.importer));
        const add = (target: string) => edges.set(from, (edges.get(from) ?? new Set()).add(target));
        if (resolved.errors.length > 0) {
          // Someone is in the middle of an edit (or a test would not run): the fingerprint says so.
          add(`${from}${UNRESOLVED}${args.path}`);
          return { path: args.path, external: true };
        }
        if (resolved.external || !isAbsolute(resolved.path)) return resolved;
        const target = posix(relative(root, resolved.path));
        if (!under(target, NOT_DECIDING)) add(target);
        return { path: resolved.path, external: true };
      });
    },
  };
  for (let frontier = [...entries]; frontier.length > 0; ) {
    edges = new Map();
    try {
      await build({
        absWorkingDir: root,
        entryPoints: frontier,
        bundle: true,
        write: false,
        outdir: join(root, '.fingerprint-out'),
        platform: 'node',
        packages: 'external',
        format: 'esm',
        logLevel: 'silent',
        plugins: [recorder],
      });
    } catch (error) {
      const errors = (error as { errors?: { text: string; location?: { file: string } | null }[] }).errors;
      const listed = errors?.map((e) => `${e.location?.file ?? '?'}: ${e.text}`).join('\n- ');
      throw new Error(`cannot fingerprint the reliability scenarios:\n- ${listed ?? String(error)}`);
    }
    for (const path of frontier) graph.set(path, [...(edges.get(path) ?? [])].sort());
    const next = new Set([...graph.values()].flat().filter((path) => !graph.has(path)));
    for (const path of next) if (!MODULE.test(path)) graph.set(path, []);
    frontier = [...next].filter((path) => MODULE.test(path));
  }
  return graph;
}

/**
 * What `entries` import, transitively; from a file of one of the scenario's `harness` folders only
 * into those folders and contracts/ (the deployables the harness composes are the scenario's to name).
 */
function closure(
  graph: Map<string, string[]>,
  entries: readonly string[],
  harness: readonly string[],
): Set<string> {
  const seen = new Set<string>();
  const stack = [...entries];
  for (let path = stack.pop(); path !== undefined; path = stack.pop()) {
    if (seen.has(path)) continue;
    seen.add(path);
    const imports = graph.get(path) ?? [];
    stack.push(
      ...(under(path, harness)
        ? imports.filter((target) => under(target, harness) || under(target, HARNESS_MAY_FOLLOW))
        : imports),
    );
  }
  return seen;
}

/**
 * The source set of every scenario, over the tree at `root` as it is on disk (uncommitted changes
 * count). One esbuild pass for all of them. Throws when a scenario names a file that does not exist
 * (moved? fix its `decidedBy` in rows.ts) or an entry esbuild cannot parse.
 */
export async function scenarioSources(
  scenarios: readonly DecidedScenario[],
  root = process.cwd(),
): Promise<Map<string, SourceSet>> {
  const folders = [...new Set(scenarios.flatMap((s) => s.decidedBy.filter(isFolder)))];
  const missing = scenarios.flatMap((s) =>
    s.decidedBy
      .filter((entry) => !isFolder(entry) && !existsSync(join(root, entry)))
      .map((entry) => `${s.name}: ${entry}`),
  );
  if (missing.length > 0) {
    throw new Error(
      `test/reliability/report/rows.ts names files that do not exist (moved? fix decidedBy):\n- ${missing.join('\n- ')}`,
    );
  }
  const folderFiles = new Map(folders.map((folder) => [folder, filesUnder(root, folder)]));
  const direct = (s: DecidedScenario) => [
    ...ALWAYS_DECIDING,
    ...s.decidedBy.flatMap((entry) => (isFolder(entry) ? (folderFiles.get(entry) ?? []) : [entry])),
  ];
  const entries = [...new Set(scenarios.flatMap(direct))].filter((path) => MODULE.test(path));
  const graph = entries.length > 0 ? await importGraph(root, entries) : new Map<string, string[]>();
  const hashes = new Map<string, string>();
  const hashOf = (path: string) => {
    let hash = hashes.get(path);
    if (hash === undefined) {
      const contents = path.includes(UNRESOLVED) ? path : readFileSync(join(root, path));
      hash = createHash('sha256').update(contents).digest('hex');
      hashes.set(path, hash);
    }
    return hash;
  };
  const sources = new Map<string, SourceSet>();
  for (const scenario of scenarios) {
    const own = direct(scenario);
    const harnessOf = scenario.decidedBy.filter(isFolder);
    const reached = closure(
      graph,
      own.filter((path) => MODULE.test(path)),
      harnessOf,
    );
    const paths = [...new Set([...own, ...reached])].sort();
    const fingerprint = createHash('sha256');
    const files: Record<string, string> = {};
    for (const path of paths) {
      const hash = hashOf(path);
      fingerprint.update(`${path}\0${hash}\n`);
      files[path] = hash.slice(0, 12);
    }
    sources.set(scenario.name, { fingerprint: `sha256:${fingerprint.digest('hex')}`, files });
  }
  return sources;
}

/** The files of `now` that are new or differ from `then`, and those `then` had and `now` lacks. */
export function changedFiles(then: Record<string, string>, now: Record<string, string>): string[] {
  const changed = Object.keys(now)
    .filter((path) => then[path] !== now[path])
    .map((path) => (path in then ? path : `${path} (new)`));
  const gone = Object.keys(then)
    .filter((path) => !(path in now))
    .map((path) => `${path} (no longer imported)`);
  return [...changed, ...gone].sort();
}

/** HEAD and the files that differ from it or are untracked (git), for a scenario's provenance. */
export function treeState(root = process.cwd()): { commit: string; uncommitted: Set<string> } {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const commit = git('rev-parse', 'HEAD').trim();
  const changed = git('diff', '--name-only', '-z', 'HEAD');
  const untracked = git('ls-files', '-z', '--others', '--exclude-standard');
  return { commit, uncommitted: new Set(`${changed}\0${untracked}`.split('\0').filter(Boolean)) };
}
