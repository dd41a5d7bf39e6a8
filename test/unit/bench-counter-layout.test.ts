import { describe, expect, it } from 'vitest';
import { dynamoItemSize } from '../../bench/layout/item-size';
import { previousLayoutInput, withoutHourAdds } from '../../bench/layout/previous-layout';
import { counterIncrements } from '../../services/usage/counter-updates';

/** The layout bench's previous layout (hour ADDs removed at the client) and its item sizer. */
describe('the previous counter layout', () => {
  const at = (iso: string) => Date.parse(iso);

  it('drops every hour ADD of a counter update, found by name, and the placeholders only they used', () => {
    const split = counterIncrements([
      { ts: at('2026-12-07T03:10:00Z') },
      { ts: at('2026-12-07T03:20:00Z') },
      { ts: at('2026-12-07T14:00:00Z'), route: '/v1/things', method: 'GET' },
    ]);
    const update = {
      UpdateExpression: `ADD requests :r, units :u${split.adds} SET updatedAt = :now, #wm = :last`,
      ConditionExpression: 'attribute_not_exists(#wm) OR #wm < :first',
      ExpressionAttributeNames: { '#wm': 'seq#shard-0', ...split.names },
      ExpressionAttributeValues: {
        ...split.values,
        ':r': 3,
        ':u': 3,
        ':now': 'x',
        ':last': 'b',
        ':first': 'a',
      },
    };
    const out = withoutHourAdds(update);
    expect(out.UpdateExpression).toBe(
      'ADD requests :r, units :u, #rt0 :rt0, #rt1 :rt1 SET updatedAt = :now, #wm = :last',
    );
    expect(Object.values(out.ExpressionAttributeNames ?? {}).sort()).toEqual([
      'route#* *',
      'route#GET /v1/things',
      'seq#shard-0',
    ]);
    expect(Object.keys(out.ExpressionAttributeValues ?? {}).sort()).toEqual(
      [':first', ':last', ':now', ':r', ':rt0', ':rt1', ':u'].sort(),
    );
  });

  it('goes by the name a placeholder stands for, not its spelling, and leaves other writes alone', () => {
    const update = {
      UpdateExpression: 'SET a = :a ADD #q :one, #hour23 :two, h07 :three',
      ExpressionAttributeNames: { '#q': 'h05', '#hour23': 'hours' },
      ExpressionAttributeValues: { ':a': 1, ':one': 1, ':two': 2, ':three': 3 },
    };
    expect(withoutHourAdds(update)).toEqual({
      UpdateExpression: 'SET a = :a ADD #hour23 :two',
      ExpressionAttributeNames: { '#hour23': 'hours' },
      ExpressionAttributeValues: { ':a': 1, ':two': 2 },
    });
    const noHours = { UpdateExpression: 'ADD d07 :n', ExpressionAttributeValues: { ':n': 1 } };
    expect(withoutHourAdds(noHours)).toBe(noHours);
    // A clause left empty goes, and so does a map of placeholders left empty.
    expect(
      withoutHourAdds({
        UpdateExpression: 'ADD #h :h',
        ExpressionAttributeNames: { '#h': 'h00' },
        ExpressionAttributeValues: { ':h': 1 },
      }),
    ).toEqual({ UpdateExpression: '' });
    const transaction = previousLayoutInput('TransactWriteItems', {
      TransactItems: [
        { Put: { Item: { pk: 'EVENT#1' } } },
        {
          Update: {
            UpdateExpression: 'ADD requests :r, #x :x',
            ExpressionAttributeNames: { '#x': 'h12' },
            ExpressionAttributeValues: { ':r': 1, ':x': 1 },
          },
        },
      ],
    });
    expect(transaction.TransactItems).toEqual([
      { Put: { Item: { pk: 'EVENT#1' } } },
      { Update: { UpdateExpression: 'ADD requests :r', ExpressionAttributeValues: { ':r': 1 } } },
    ]);
  });
});

describe('item size', () => {
  it('counts names and values as the DynamoDB developer guide does', () => {
    // 'pk' 2 + 'ACCOUNT#a' 9; 'h05' 3 + 12 → 2 digits → 2; 'n' 1 + 0.0012300 → 123 → 3; 'ok' 2 + 1.
    expect(
      dynamoItemSize({ pk: { S: 'ACCOUNT#a' }, h05: { N: '12' }, n: { N: '0.0012300' }, ok: { BOOL: true } }),
    ).toBe(11 + 5 + 4 + 3);
    // A map: 3 bytes, and 1 more per element besides its name and value.
    expect(dynamoItemSize({ m: { M: { a: { S: 'xy' } } } })).toBe(1 + 3 + 1 + 1 + 2);
    expect(dynamoItemSize({ s: { SS: ['ab', 'c'] } })).toBe(1 + 3);
  });
});
