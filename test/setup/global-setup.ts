import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { findFreePorts } from '../../infra/local/ports';
import { type Endpoints, startLocalStack } from '../../infra/local/stack';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The shared local stack's endpoints (what `<dataDir>/endpoints.json` holds). */
    endpoints: Endpoints;
    /** The variables the stack's handlers run with (table names, queue URLs, issuer, ...). */
    env: Record<string, string>;
    /** The shared stack's data dir, e.g. for reading captured verification codes. */
    dataDir: string;
  }
}

/**
 * One local stack for the whole integration run, in a fresh data dir on free ports, so a run
 * neither sees leftovers of the previous one nor collides with a developer's `npm start`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Runs in vitest's main process, which test.env does not reach; see vitest.config.ts.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-integ-'));
  try {
    const stack = await startLocalStack({ dataDir, ports: await findFreePorts(), quiet: true });
    project.provide('endpoints', stack.endpoints);
    project.provide('env', { ...stack.env });
    project.provide('dataDir', dataDir);
    return async () => {
      await stack.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
}
