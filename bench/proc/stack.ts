import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePorts } from '../../infra/local/ports';
import { startLocalStack } from '../../infra/local/stack';
import { serveParent } from '../lib/ipc';
import type { StackInfo } from '../lib/types';

/**
 * Child process: the whole local stack (DynamoDB Local, SQS, Kinesis, Cognito, user-api, the
 * stack's own pollers) in a fresh temp data dir on free ports, quiet. It stands in for "AWS": the
 * parts under test run in processes of their own and reach it over loopback.
 */
serveParent(async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-bench-'));
  const stack = await startLocalStack({ dataDir, ports: await findFreePorts(), quiet: true }).catch(
    async (error: unknown) => {
      await rm(dataDir, { recursive: true, force: true });
      throw error;
    },
  );
  const ready: StackInfo = {
    endpoints: stack.endpoints,
    env: { ...stack.env },
    awsEnv: { ...stack.awsEnv },
    dataDir,
  };
  return {
    ready,
    handlers: {},
    cleanUp: async () => {
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
