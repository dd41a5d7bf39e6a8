/**
 * The layering of the code, checked by `npm run layering` (part of `npm test`):
 *
 *   contracts  ←  services (config, compose, handler)  ←  examples  ←  infra (cdk, local), web  ←  bench, test
 *
 * Every arrow points down: contracts import nothing of ours, services never reach up into infra,
 * web, bench or tests, and a deployable uses another one only through services/shared/, the gate
 * library (services/gate/) or the metering read module. Type-only imports count like any other (they are still a dependency the
 * type checker follows) except where a rule says otherwise. Each rule's comment says why.
 */

/** A deployable's own folder, the code they share, the gate library, and metering's read module. */
const SERVICES_A_SERVICE_MAY_USE = [
  '^services/$1/',
  '^services/shared/',
  '^services/gate/',
  '^services/metering/usage-reader[.]ts$',
];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No cycles anywhere, type-only imports included: every module can be read bottom up.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to no file would also escape every other rule here.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'contracts-import-only-zod',
      severity: 'error',
      comment:
        'contracts/ is the bottom layer that every other one (the browser page included) imports: ' +
        'it imports its own files and zod, nothing else of ours and no Node.js built-in.',
      from: { path: '^contracts/' },
      to: { pathNot: ['^contracts/', '^node_modules/zod/'] },
    },
    {
      name: 'services-not-upward',
      severity: 'error',
      comment:
        'services/ is deployed as Lambda bundles: it never imports the layers built on top of it ' +
        '(infra, web, bench, tests, examples).',
      from: { path: '^services/' },
      to: { path: '^(infra|web|bench|test|examples)/' },
    },
    {
      name: 'shared-imports-no-deployable',
      severity: 'error',
      comment: 'services/shared/ is what the deployables share: it depends on none of them.',
      from: { path: '^services/shared/' },
      to: { path: '^services/', pathNot: '^services/shared/' },
    },
    {
      name: 'deployables-only-through-shared-and-usage-reader',
      severity: 'error',
      comment:
        "A deployable uses another's code only through services/shared/, services/gate/ and metering's read module " +
        '(services/metering/usage-reader.ts): key-api, user-api and auth-triggers never import ' +
        "metering's internals, and metering never imports key-api, user-api or auth-triggers.",
      from: { path: '^services/([^/]+)/', pathNot: '^services/shared/' },
      to: { path: '^services/', pathNot: SERVICES_A_SERVICE_MAY_USE },
    },
    {
      name: 'cdk-imports-only-contracts',
      severity: 'error',
      comment:
        'infra/cdk/ bundles the handlers by path (services/<name>/handler.ts) and never imports ' +
        'services code; of ours it imports only contracts/.',
      from: { path: '^infra/cdk/' },
      to: { dependencyTypes: ['local'], pathNot: ['^infra/cdk/', '^contracts/'] },
    },
    {
      name: 'gate-is-a-library',
      severity: 'error',
      comment:
        "services/gate/ is what key-api and owners' functions are built on: it uses only " +
        "services/shared/, metering's read module (quotas) and contracts/, never a deployable " +
        '(key-api builds on it, not the reverse).',
      from: { path: '^services/gate/' },
      to: {
        path: '^services/',
        pathNot: ['^services/gate/', '^services/shared/', '^services/metering/usage-reader[.]ts$'],
      },
    },
    {
      name: 'examples-use-the-gate-entry',
      severity: 'error',
      comment:
        "examples/ is an owner's code: of ours it imports the gate's entry (services/gate/index.ts) " +
        'and contracts/, as an owner importing the package would, and nothing above it.',
      from: { path: '^examples/' },
      to: {
        dependencyTypes: ['local'],
        pathNot: ['^examples/', '^contracts/', '^services/gate/index[.]ts$'],
      },
    },
    {
      name: 'local-stack-composes-through-compose-and-config',
      severity: 'error',
      comment:
        'infra/local/ builds each deployable as Lambda would: from its config.ts and compose.ts, ' +
        'with the AWS client options and metrics sink of services/shared/{aws-clients,metrics}.ts. ' +
        'Besides those it imports contracts/ and the page server (web/server/), nothing else of ours.',
      from: { path: '^infra/local/' },
      to: {
        dependencyTypes: ['local'],
        pathNot: [
          '^infra/local/',
          '^contracts/',
          '^services/(?!shared/)[^/]+/(compose|config)[.]ts$',
          '^services/shared/(aws-clients|metrics)[.]ts$',
          '^examples/[^/]+/compose[.]ts$',
          '^web/server/',
        ],
      },
    },
    {
      name: 'web-uses-services-only-for-types',
      severity: 'error',
      comment:
        "The page (web/src) and its server (web/server) take from services/ only the user API's " +
        'types (the AppType of services/user-api/app.ts, for hc<AppType>), as type-only imports.',
      from: { path: '^web/' },
      to: { path: '^services/', pathNot: '^services/user-api/app[.]ts$' },
    },
    {
      name: 'web-imports-services-type-only',
      severity: 'error',
      comment: 'A value import of services code would bundle server code into the page.',
      from: { path: '^web/' },
      to: { path: '^services/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'web-imports-only-contracts',
      severity: 'error',
      comment: 'Besides those types, web/ imports only contracts/ of ours.',
      from: { path: '^web/' },
      to: { dependencyTypes: ['local'], pathNot: ['^web/', '^contracts/', '^services/'] },
    },
    {
      name: 'bench-imports-services-local-stack-contracts',
      severity: 'error',
      comment: 'bench/ drives the real handlers and the local stack: services/, infra/local/ and contracts/.',
      from: { path: '^bench/' },
      to: {
        dependencyTypes: ['local'],
        pathNot: ['^bench/', '^services/', '^infra/local/', '^contracts/'],
      },
    },
    {
      name: 'only-tests-import-tests',
      severity: 'error',
      comment: 'Nothing imports test/ except the tests themselves (test/support/ is theirs).',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    // Type-only imports are dependencies too (the rules above say where they are the only kind allowed).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      // web/src imports .vue files, and some modules import with an explicit .ts extension.
      extensions: ['.ts', '.vue', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
