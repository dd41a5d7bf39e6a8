/**
 * `npm run soak`: the full soak (SOAK_SECONDS, default 60) against a local stack of its own, in a
 * fresh data dir on free ports, then prints the figures RELIABILITY.md reports.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findFreePorts } from '../../infra/local/ports';
import { startLocalStack } from '../../infra/local/stack';
import { recordFigures } from '../support/figures';
import { runSoak, soakProblems } from '../support/soak-run';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const seconds = Number(process.env.SOAK_SECONDS ?? 60);
const dataDir = await mkdtemp(join(tmpdir(), 'tollgate-soak-'));
const log = (line: string) => process.stdout.write(`${line}\n`);
let failed = false;
try {
  log(`soak: starting a local stack in ${dataDir}`);
  const stack = await startLocalStack({ dataDir, ports: await findFreePorts(), quiet: true });
  try {
    const report = await runSoak({ endpoints: stack.endpoints, env: stack.env, seconds, log });
    await recordFigures(`soak-${seconds}s`, { ...report });
    const problems = soakProblems(report);
    log(JSON.stringify(report, null, 2));
    if (problems.length > 0) {
      failed = true;
      log(`soak FAILED: ${problems.join('; ')}`);
    } else {
      log(
        `soak OK: ${report.requestsSent} sent, ${report.accepted} accepted, ${report.counted} counted, ` +
          `${report.deadLetteredDistinct} dead-lettered (${JSON.stringify(report.deadLettered)})`,
      );
    }
  } finally {
    await stack.stop();
  }
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
