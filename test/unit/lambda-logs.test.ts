import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, it, vi } from 'vitest';

/**
 * infra/cdk runs every function with Lambda's JSON log format and an application log level, and
 * sets no POWERTOOLS_LOG_LEVEL. That works because of what these tests pin down: Lambda hands the
 * level to the function as AWS_LAMBDA_LOG_LEVEL and Powertools Logger adopts it, and Powertools'
 * lines are the JSON objects, with `level` and `timestamp`, that Lambda's level filter reads.
 */
describe('Powertools Logger under Lambda JSON logs', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  /** This test logger's lines on stdout and stderr (Powertools writes WARN and above to stderr). */
  function capture(): string[] {
    const lines: string[] = [];
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream);
      vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
        const text = chunk.toString();
        if (!text.includes('"service":"lambda-logs-test"')) {
          return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
        }
        lines.push(...text.split('\n').filter((line) => line.trim() !== ''));
        return true;
      });
    }
    return lines;
  }

  it('follows the level Lambda sets, over POWERTOOLS_LOG_LEVEL', () => {
    vi.stubEnv('POWERTOOLS_DEV', '');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'DEBUG');
    vi.stubEnv('AWS_LAMBDA_LOG_LEVEL', 'WARN');
    const lines = capture();
    const logger = new Logger({ serviceName: 'lambda-logs-test' });
    logger.debug('not wanted');
    logger.info('not wanted either');
    logger.warn('key check unavailable', { reason: 'test' });

    const written = lines.map((line) => JSON.parse(line));
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({
      level: 'WARN',
      message: 'key check unavailable',
      service: 'lambda-logs-test',
      reason: 'test',
    });
    expect(Number.isNaN(Date.parse(written[0].timestamp))).toBe(false);
  });

  it('logs INFO when Lambda says INFO (the default of infra/cdk)', () => {
    vi.stubEnv('POWERTOOLS_DEV', '');
    vi.stubEnv('AWS_LAMBDA_LOG_LEVEL', 'INFO');
    const lines = capture();
    const logger = new Logger({ serviceName: 'lambda-logs-test' });
    logger.debug('not wanted');
    logger.info('provisioned');
    expect(lines.map((line) => JSON.parse(line).message)).toEqual(['provisioned']);
  });
});
