import * as z from 'zod/mini';

/**
 * What the page needs to know about the deployment it talks to, fetched from `/config.json` at
 * start-up and never built in: the local stack generates it from its running endpoints, and on AWS
 * it is written from the stack's outputs next to the page. One schema, used by both sides.
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
});

export type WebConfig = z.infer<typeof webConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Loads and checks `/config.json`; a ConfigError says what is wrong in words a person can act on. */
export async function loadConfig(url = '/config.json'): Promise<WebConfig> {
  let response: Response;
  try {
    response = await fetch(url, { cache: 'no-store' });
  } catch (error) {
    throw new ConfigError(`Could not fetch ${url}: is the server running?`, { cause: error });
  }
  if (!response.ok) {
    throw new ConfigError(
      `${url} answered ${response.status}. Locally it comes from the running stack (npm start).`,
    );
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch (error) {
    throw new ConfigError(`${url} is not JSON`, { cause: error });
  }
  const parsed = webConfigSchema.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new ConfigError(`${url} is not a valid Tollgate config (${problems.join('; ')})`);
  }
  return parsed.data;
}
