import type { z } from 'zod';
import { ConfigError } from './errors';

/**
 * Parses a deployable's environment once, at cold start, with its schema from contracts/config.ts.
 * A bad or missing variable stops the service with one message naming every problem, instead of
 * failing on the first request.
 */
export function loadConfig<S extends z.ZodType>(
  service: string,
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`${service}: invalid configuration: ${problems.join('; ')}`);
  }
  return parsed.data;
}
