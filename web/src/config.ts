import { type WebConfig, webConfigSchema } from '../../contracts/web-config';

export type { WebConfig } from '../../contracts/web-config';

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
