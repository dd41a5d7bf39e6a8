import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findFreePorts } from '../../infra/local/ports';
import { type Endpoints, type LocalStack, startLocalStack } from '../../infra/local/stack';
import type { AwsOptions } from '../../services/platform/aws-clients';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared local stack's endpoints (what `<dataDir>/endpoints.json` holds). */
    endpoints: Endpoints;
    /**
     * The settings the stack composed its handlers with, by the names of contracts/config.ts
     * (table names, queue URLs, issuer, ...): what a test parses its own handler's config from.
     */
    env: Record<string, string>;
    /** Where the stack's engines are, for SDK clients (and composed handlers) in a test. */
    aws: AwsOptions;
    /** The shared stack's data dir, e.g. for reading captured verification codes. */
    dataDir: string;
  }
}

interface SharedStack {
  started: Promise<{ stack: LocalStack; dataDir: string }>;
  users: number;
}

// Several projects (integ, reliability) name this setup. Each stack composes its handlers from its
// own settings, so two could run side by side; they share one because starting a stack (DynamoDB
// Local's JVM, the emulators, bootstrap) costs about 20 s: started by the first project, stopped by
// the last. globalThis, because each project may load this module afresh.
const KEY = Symbol.for('tollgate.test.sharedStack');
const registry = globalThis as { [KEY]?: SharedStack };

async function start(): Promise<{ stack: LocalStack; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-integ-'));
  try {
    return { stack: await startLocalStack({ dataDir, ports: await findFreePorts(), quiet: true }), dataDir };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * One local stack for the whole test run, in a fresh data dir on free ports, so a run neither
 * sees leftovers of the previous one nor collides with a developer's `npm start`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Runs in vitest's main process, which test.env does not reach; see vitest.config.ts.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  registry[KEY] ??= { started: start(), users: 0 };
  const shared = registry[KEY];
  shared.users++;
  const { stack, dataDir } = await shared.started;
  project.provide('endpoints', stack.endpoints);
  project.provide('env', { ...stack.env });
  project.provide('aws', stack.aws);
  project.provide('dataDir', dataDir);
  return async () => {
    if (--shared.users > 0) return;
    delete registry[KEY];
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
