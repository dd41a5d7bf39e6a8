/**
 * The layering of the code, checked by `npm run layering` (part of `npm test`):
 *
 *   contracts  ←  services  ←  examples  ←  infra (cdk, local, ops), web  ←  bench, test
 *
 * and inside services/, by what each folder owns:
 *
 *   platform (AWS clients, DynamoDB error classes, config, clock, metrics)
 *     ←  accounts (the accounts, keys and plans tables)  ·  usage (the usage table)
 *     ←  gate (the library key-api and owners' functions are built on)
 *        ·  billing (the billing table, Stripe, the usage export and reconciliation)
 *     ←  the deployables: key-api, user-api, metering, auth-triggers, billing-jobs
 *
 * Every arrow points down: contracts import nothing of ours, services never reach up into infra,
 * web, bench or tests, a table is read and written only through the folder that owns it, and a
 * deployable never imports another one. Type-only imports count like any other (they are still a
 * dependency the type checker follows) except where a rule says otherwise. Each rule's comment says why.
 */

/** The folders a deployable is composed from, besides its own. */
const BUILDING_BLOCKS = [
  '^services/platform/',
  '^services/accounts/',
  '^services/usage/',
  '^services/gate/',
  '^services/billing/',
];

/** The deployables: one Lambda function (or the owner's own, for the gate's adapters) each. */
const DEPLOYABLES = '^services/(key-api|user-api|metering|auth-triggers|billing-jobs)/';

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
      name: 'platform-is-plumbing',
      severity: 'error',
      comment:
        'services/platform/ is plumbing every service uses (clients, error classes, config, clock, ' +
        'metrics): it knows no table, no record and no deployable, so it imports nothing else of services/.',
      from: { path: '^services/platform/' },
      to: { path: '^services/', pathNot: '^services/platform/' },
    },
    {
      name: 'accounts-owns-its-tables',
      severity: 'error',
      comment:
        'services/accounts/ owns the accounts, keys and plans tables (records, status rules, stores): ' +
        'it builds on platform/ only, so who may write a key is decided in this one folder.',
      from: { path: '^services/accounts/' },
      to: { path: '^services/', pathNot: ['^services/accounts/', '^services/platform/'] },
    },
    {
      name: 'usage-owns-its-table',
      severity: 'error',
      comment:
        'services/usage/ owns the usage table (counter layout, period items, alert outbox, its reads and ' +
        'writes): it builds on platform/ only; metering, the gate and the APIs read and write usage through it.',
      from: { path: '^services/usage/' },
      to: { path: '^services/', pathNot: ['^services/usage/', '^services/platform/'] },
    },
    {
      name: 'gate-is-a-library',
      severity: 'error',
      comment:
        "services/gate/ is what key-api and owners' functions are built on: it uses platform/, accounts/ " +
        '(keys, plans) and usage/ (quotas), never a deployable (key-api builds on it, not the reverse).',
      from: { path: '^services/gate/' },
      to: {
        path: '^services/',
        pathNot: ['^services/gate/', '^services/platform/', '^services/accounts/', '^services/usage/'],
      },
    },
    {
      name: 'billing-is-a-library',
      severity: 'error',
      comment:
        'services/billing/ owns the billing table and the provider adapters; it sets plans and standing ' +
        'through accounts/ and reads counters through usage/, and is used by user-api and billing-jobs, ' +
        'never the reverse. It has nothing to do with the gate.',
      from: { path: '^services/billing/' },
      to: {
        path: '^services/',
        pathNot: ['^services/billing/', '^services/platform/', '^services/accounts/', '^services/usage/'],
      },
    },
    {
      name: 'deployables-never-import-each-other',
      severity: 'error',
      comment:
        'A deployable is composed from its own folder and the building blocks (platform, accounts, ' +
        'usage, gate); it never imports another deployable, so each one can change and deploy alone.',
      from: { path: '^services/([^/]+)/', pathNot: BUILDING_BLOCKS },
      to: { path: '^services/', pathNot: ['^services/$1/', ...BUILDING_BLOCKS] },
    },
    {
      name: 'tables-only-through-their-owner',
      severity: 'error',
      comment:
        'Only the table owners (accounts/, usage/, billing/) and platform/ send DynamoDB commands: the gate and the ' +
        'deployables hold a document client (a type) to hand to a store, never a command of their own.',
      from: { path: ['^services/gate/', DEPLOYABLES] },
      to: {
        path: '^node_modules/@aws-sdk/(lib-dynamodb|client-dynamodb)/',
        dependencyTypesNot: ['type-only'],
      },
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
        'with the AWS client options and metrics sink of services/platform/{aws-clients,metrics}.ts. ' +
        'Besides those it imports contracts/ and the page server (web/server/), nothing else of ours.',
      from: { path: '^infra/local/' },
      to: {
        dependencyTypes: ['local'],
        pathNot: [
          '^infra/local/',
          '^contracts/',
          '^services/(?!platform/|accounts/|usage/|billing/)[^/]+/(compose|config)[.]ts$',
          '^services/platform/(aws-clients|metrics)[.]ts$',
          // The stand-in's key reaches the handlers in-process (never through the environment), and
          // its meter and price are made with the same SDK client the handlers use.
          '^services/billing/(secrets|stripe-client)[.]ts$',
          // The ops page (infra/local/ops/) lets in the admins user-api lets in, by the same verifier.
          '^services/user-api/token-verifier[.]ts$',
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
