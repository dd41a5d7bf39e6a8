import { z } from 'zod';
import { ConfigError } from './errors';

/**
 * Parses a service's environment once, at cold start. A bad or missing variable stops the
 * service with one message naming every problem, instead of failing on the first request.
 */
export function loadConfig<S extends z.ZodType>(
  service: string,
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`${service}: invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}

const milliseconds = (fallback: number) => z.coerce.number().int().nonnegative().default(fallback);

/** Variables every service that touches key data reads. */
export const keyDataEnv = z.object({
  TOLLGATE_ACCOUNTS_TABLE: z.string().min(3),
  TOLLGATE_KEYS_TABLE: z.string().min(3),
  TOLLGATE_KEY_PREFIX: z
    .string()
    .regex(/^[a-z][a-z0-9]{1,15}$/, 'lowercase letters and digits, 2-16 characters')
    .default('tg'),
});

export const env = { milliseconds };
