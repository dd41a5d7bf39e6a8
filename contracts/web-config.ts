import * as z from 'zod/mini';

/**
 * What the page needs to know about the deployment it talks to, fetched from `/config.json` at
 * start-up and never built in: the local stack generates it from its running endpoints, and on AWS
 * it is written from the stack's outputs next to the page. One schema, used by both sides.
 * (zod/mini: it ships in the page's bundle.)
 */
export const webConfigSchema = z.object({
  region: z.string().check(z.minLength(1)),
  cognito: z.object({
    userPoolId: z.string().check(z.minLength(1)),
    clientId: z.string().check(z.minLength(1)),
    /** Set only for a local Cognito (cognito-local); on AWS the SDK derives it from the region. */
    endpoint: z.optional(z.url()),
    /** The pool's password policy, so the sign-up form can say what is missing before Cognito does. */
    passwordPolicy: z.optional(
      z.object({
        minimumLength: z.number(),
        requireLowercase: z.boolean(),
        requireUppercase: z.boolean(),
        requireNumbers: z.boolean(),
        requireSymbols: z.boolean(),
      }),
    ),
  }),
  /** Base URL of the user API (keys, usage). */
  userApi: z.url(),
  /** URL of the key API that API clients call with their key (the "try your key" box). */
  keyApi: z.url(),
  /** The configured windows the page tells its users about (contracts/config.ts), never built in. */
  windows: z.object({
    /**
     * The gate's fresh window (TOLLGATE_KEY_CACHE_FRESH_MS): how long a gate answers from what it
     * last read of a key and of its account's status and plan, so a revocation, a suspension or
     * resumption and a plan assigned or replaced are enforced within it.
     */
    keyCacheFreshMs: z.int().check(z.positive()),
    /** How long a rolled key keeps working when the roll names no grace (TOLLGATE_ROLL_GRACE_MS). */
    rollGraceMs: z.int().check(z.nonnegative()),
  }),
});

export type WebConfig = z.infer<typeof webConfigSchema>;

/**
 * The page's Content-Security-Policy, except the origins it calls (`connect-src`), which depend on
 * the deployment: the local site (web/server/local-site.ts) and CloudFront's response headers
 * policy (infra/cdk) both render it with {@link webContentSecurityPolicy}, so the two are equal by
 * construction. No inline or remote scripts; Amplify UI sets a few inline styles.
 */
export const WEB_CSP_DIRECTIVES: ReadonlyArray<readonly [directive: string, sources: readonly string[]]> = [
  ['default-src', ["'self'"]],
  ['connect-src', ["'self'"]],
  ['style-src', ["'self'", "'unsafe-inline'"]],
  ['img-src', ["'self'", 'data:']],
  ['script-src', ["'self'"]],
  ['object-src', ["'none'"]],
  ['frame-ancestors', ["'none'"]],
  ['base-uri', ["'self'"]],
];

/**
 * The Content-Security-Policy header value, with `connectOrigins` (the user API's, the key API's,
 * Cognito's) added to `connect-src`, duplicates dropped, in the order given.
 */
export function webContentSecurityPolicy(connectOrigins: readonly string[]): string {
  return WEB_CSP_DIRECTIVES.map(([directive, sources]) => {
    const all = directive === 'connect-src' ? [...new Set([...sources, ...connectOrigins])] : sources;
    return `${directive} ${all.join(' ')}`;
  }).join('; ');
}
