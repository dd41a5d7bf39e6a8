import type { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { tableName, tables } from '../../contracts/resources';
import { REFUSAL_SUMMARY_ATTRIBUTES } from '../../infra/cdk/constructs/data-tables';
import { REFUSAL_REASONS, RefusalRecorder } from '../../services/usage/refusals';
import { logicalIdOf, permissionsOf, type Synthesized, synthesize } from './synth';

// The gates (key-api, the owner's API) write summaries of what they refused into the usage table,
// which also holds the counters that bill: IAM lets them name only a refusal item's attributes.

const STAGE = 'test';

/** An IAM StringLike pattern as a regular expression (`*` any run, `?` one character). */
const likePattern = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
const allowed = (name: string) => REFUSAL_SUMMARY_ATTRIBUTES.some((p) => likePattern(p).test(name));

/** The attribute names one RefusalRecorder update sends (keys, expiry, counts), through a client that only records. */
async function recorderAttributes(): Promise<string[]> {
  const sent: UpdateCommand[] = [];
  const client = { send: async (command: UpdateCommand) => sent.push(command) };
  const recorder = new RefusalRecorder({ client: client as never, table: 'usage' });
  const hourStart = Date.parse('2026-12-07T00:00:00Z');
  await recorder.record(
    REFUSAL_REASONS.flatMap((reason) =>
      [0, 9, 23].map((hour) => ({
        accountId: 'a',
        keyId: 'k',
        hourStart: hourStart + hour * 3_600_000,
        reason,
        count: 1,
      })),
    ),
  );
  return sent.flatMap((command) => [
    ...Object.keys(command.input.Key ?? {}),
    ...Object.values(command.input.ExpressionAttributeNames ?? {}),
  ]);
}

describe('refusal summaries: what a gate may write to the usage table', () => {
  let synth: Synthesized;
  beforeAll(() => {
    synth = synthesize({ stage: STAGE, transport: 'sqs' });
  });
  afterAll(() => synth?.cleanUp());

  it("the recorder writes only attributes the gates' policy allows; counters' attributes are not among them", async () => {
    const names = await recorderAttributes();
    expect(names.length).toBeGreaterThan(REFUSAL_REASONS.length * 3);
    for (const name of names) expect(allowed(name), name).toBe(true);
    for (const counter of [
      'requests',
      'units',
      'h09',
      'route#GET /v1/rates/:base',
      'd07',
      'seq#shardId-000000000000',
    ])
      expect(allowed(counter), counter).toBe(false);
  });

  it.each([SERVICE_NAMES.keyApi, SERVICE_NAMES.exampleApi])(
    '%s: UpdateItem of the usage table only with those attributes and nothing returned; no other write to it',
    (service) => {
      const functionId = logicalIdOf(synth.template, 'AWS::Lambda::Function', {
        FunctionName: `tollgate-${STAGE}-${service}`,
      });
      const usage = tables.find((t) => t.id === 'usage');
      if (!usage) throw new Error('no usage table');
      const usageArn = JSON.stringify({
        'Fn::GetAtt': [
          logicalIdOf(synth.template, 'AWS::DynamoDB::Table', { TableName: tableName(STAGE, usage) }),
          'Arn',
        ],
      });
      const writes = permissionsOf(synth.template, functionId).filter(
        (p) => p.resource === usageArn && /Put|Update|Delete|BatchWrite/.test(p.action),
      );
      expect(writes).toEqual([
        {
          action: 'dynamodb:UpdateItem',
          resource: usageArn,
          condition: {
            'ForAllValues:StringLike': { 'dynamodb:Attributes': [...REFUSAL_SUMMARY_ATTRIBUTES] },
            StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
          },
        },
      ]);
    },
  );
});
