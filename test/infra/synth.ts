import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { expect } from 'vitest';
import { ENV } from '../../contracts/config';
import { addComplianceChecks } from '../../infra/cdk/compliance';
import { readDeploymentContext, stackPropsFromContext } from '../../infra/cdk/config';
import { TollgateStack } from '../../infra/cdk/tollgate-stack';

/** cdk.json's context (the feature flags), so tests synthesize what `npm run synth` does. */
const cdkJsonContext: Record<string, unknown> = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
).context;

export interface Violation {
  readonly ruleName: string;
  readonly severity: string;
  readonly constructs: readonly string[];
}

export interface Synthesized {
  readonly stack: TollgateStack;
  readonly template: Template;
  /** cdk-nag findings nobody acknowledged (synthesis fails when there are any). */
  readonly violations: readonly Violation[];
  /** Every acknowledgment in the stack: construct path, rule id and reason. */
  readonly acknowledgments: ReadonlyArray<{ path: string; rule: string; reason: string }>;
  readonly cleanUp: () => void;
}

/**
 * Synthesizes the stack as `cdk synth -c key=value …` would, with real esbuild bundling and the
 * cdk-nag checks. Slow (seconds): call it once per configuration, in a beforeAll.
 */
export function synthesize(
  context: Record<string, string>,
  options: { webAssets?: boolean } = {},
): Synthesized {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-cdk-'));
  const outdir = join(dir, 'cdk.out');
  let webAssetsPath: string | undefined;
  if (options.webAssets) {
    // web/dist is a build output, absent from a fresh clone: deploy a stand-in page.
    webAssetsPath = join(dir, 'web-dist');
    mkdirSync(webAssetsPath);
    writeFileSync(join(webAssetsPath, 'index.html'), '<!doctype html><title>Tollgate</title>\n');
  }
  // No AWS variables leak in from the machine running the tests.
  const env = { [ENV.transport]: undefined, CDK_DEFAULT_REGION: undefined, AWS_REGION: undefined };
  const app = new App({ outdir, context: { ...cdkJsonContext, ...context } });
  const deployment = readDeploymentContext(app.node, env);
  const stack = new TollgateStack(
    app,
    `Tollgate-${deployment.stage}`,
    stackPropsFromContext(deployment, webAssetsPath),
  );
  addComplianceChecks(app);

  let violations: Violation[] = [];
  try {
    app.synth();
  } catch (error) {
    violations = readViolations(outdir);
    if (violations.length === 0) throw error;
  }

  const acknowledgments = stack.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([rule, reason]) => ({
          path: construct.node.path,
          rule,
          reason,
        })),
      ),
  );

  return {
    stack,
    // Only when synthesis passed: otherwise the violations say why.
    template: violations.length === 0 ? Template.fromStack(stack) : Template.fromJSON({}),
    violations,
    acknowledgments,
    cleanUp: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function readViolations(outdir: string): Violation[] {
  const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{
      violations: Array<{
        ruleName: string;
        severity: string;
        violatingConstructs: Array<{ constructPath: string }>;
      }>;
    }>;
  };
  return report.pluginReports.flatMap((plugin) =>
    plugin.violations.map((v) => ({
      ruleName: v.ruleName,
      severity: v.severity,
      constructs: v.violatingConstructs.map((c) => c.constructPath),
    })),
  );
}

// --- template helpers ------------------------------------------------------------------------

export type Resources = Record<
  string,
  { Type: string; Properties?: Record<string, unknown> } & Record<string, unknown>
>;

export function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

/** Logical id of the one resource of `type` whose properties contain `properties`. */
export function logicalIdOf(template: Template, type: string, properties: Record<string, unknown>): string {
  const ids = Object.keys(template.findResources(type, { Properties: properties }));
  if (ids.length !== 1)
    throw new Error(`expected one ${type} with ${JSON.stringify(properties)}, found ${ids.length}`);
  return ids[0] as string;
}

export interface Permission {
  readonly action: string;
  /** The resource as JSON (logical ids appear in it), e.g. `{"Fn::GetAtt":["Tablesusage…","Arn"]}`. */
  readonly resource: string;
  readonly condition?: unknown;
}

/** Every (action, resource) a function's role is allowed, from its inline and attached policies. */
export function permissionsOf(template: Template, functionLogicalId: string): Permission[] {
  const fn = template.toJSON().Resources[functionLogicalId];
  const roleId = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const role = template.toJSON().Resources[roleId];
  const documents: Array<{ Statement: unknown[] }> = [
    ...((role.Properties.Policies ?? []) as Array<{ PolicyDocument: { Statement: unknown[] } }>).map(
      (p) => p.PolicyDocument,
    ),
    ...Object.values(resourcesOf(template, 'AWS::IAM::Policy'))
      .filter((policy) => JSON.stringify(policy.Properties?.Roles).includes(`"${roleId}"`))
      .map((policy) => policy.Properties?.PolicyDocument as { Statement: unknown[] }),
  ];
  expect(role.Properties.ManagedPolicyArns ?? []).toEqual([]);
  const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
  return documents.flatMap((doc) =>
    (
      doc.Statement as Array<{
        Effect: string;
        Action: string | string[];
        Resource: unknown;
        Condition?: unknown;
      }>
    )
      .filter((s) => s.Effect === 'Allow')
      .flatMap((s) =>
        list(s.Action).flatMap((action) =>
          list(s.Resource).map((resource) => ({
            action,
            resource: JSON.stringify(resource),
            ...(s.Condition ? { condition: s.Condition } : {}),
          })),
        ),
      ),
  );
}
