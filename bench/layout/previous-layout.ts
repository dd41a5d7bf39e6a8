import { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * The counter layout before issue 24 (no hourly counts), recreated from today's code at the
 * DynamoDB client: every counter write loses its `h00`…`h23` ADDs, nothing else changes. What the
 * layout bench (bench/layout.ts) measures hours against, in the same run and on the same code path,
 * so the difference it reports is the hour attributes' and nothing else's.
 *
 * Hour attributes are found by the NAME an ExpressionAttributeNames entry stands for, never by how
 * its placeholder is spelt (`#hr0` today): a later change may name placeholders differently.
 */
export const HOUR_ATTRIBUTE = /^h([01]\d|2[0-3])$/;

/** The parts of an update a rewrite touches (UpdateItem's input, or a transaction's Update). */
export interface UpdateParts {
  UpdateExpression?: string;
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

/** Clause keywords at a token's start: not inside a placeholder (`#add`, `:set`) or a longer name. */
const CLAUSE = /(?<![\w#:.])(SET|REMOVE|ADD|DELETE)(?![\w])/gi;

function clauses(expression: string): Array<{ keyword: string; body: string }> {
  const found = [...expression.matchAll(CLAUSE)];
  return found.map((match, i) => ({
    keyword: (match[1] as string).toUpperCase(),
    body: expression.slice((match.index ?? 0) + match[0].length, found[i + 1]?.index ?? expression.length),
  }));
}

/** Placeholders (`#x`, `:y`) an expression still uses. */
const placeholders = (text: string) => new Set(text.match(/[#:][A-Za-z0-9_]+/g) ?? []);

/**
 * `update` without its hour ADDs: each `path value` pair of the ADD clause whose path is an hour
 * attribute (through its placeholder, or written out) is dropped, then every name and value
 * placeholder no expression uses any more. Answers `update` itself when it adds no hour.
 */
export function withoutHourAdds<U extends UpdateParts>(update: U): U {
  const expression = update.UpdateExpression;
  if (!expression) return update;
  const names = update.ExpressionAttributeNames ?? {};
  const isHour = (path: string) => HOUR_ATTRIBUTE.test(path.startsWith('#') ? (names[path] ?? '') : path);
  let dropped = 0;
  const rewritten = clauses(expression)
    .map(({ keyword, body }) => {
      if (keyword !== 'ADD') return `${keyword} ${body.trim()}`;
      const kept = body
        .split(',')
        .map((pair) => pair.trim())
        .filter((pair) => {
          const hour = isHour(pair.split(/\s+/)[0] ?? '');
          if (hour) dropped++;
          return !hour;
        });
      return kept.length > 0 ? `ADD ${kept.join(', ')}` : '';
    })
    .filter((clause) => clause !== '')
    .join(' ');
  if (dropped === 0) return update;
  const used = placeholders(`${rewritten} ${update.ConditionExpression ?? ''}`);
  const keep = <V>(map: Record<string, V> | undefined) =>
    map
      ? Object.fromEntries(Object.entries(map).filter(([placeholder]) => used.has(placeholder)))
      : undefined;
  const out: U = { ...update, UpdateExpression: rewritten };
  const keptNames = keep(update.ExpressionAttributeNames);
  const keptValues = keep(update.ExpressionAttributeValues);
  // DynamoDB refuses an empty map of placeholders: leave it out instead.
  if (keptNames && Object.keys(keptNames).length > 0) out.ExpressionAttributeNames = keptNames;
  else delete out.ExpressionAttributeNames;
  if (keptValues && Object.keys(keptValues).length > 0) out.ExpressionAttributeValues = keptValues;
  else delete out.ExpressionAttributeValues;
  return out;
}

/** A DynamoDB request's input with every counter update rewritten (UpdateItem, TransactWriteItems). */
export function previousLayoutInput(op: string, input: Record<string, unknown>): Record<string, unknown> {
  if (op === 'UpdateItem') return withoutHourAdds(input as UpdateParts) as Record<string, unknown>;
  if (op !== 'TransactWriteItems') return input;
  const items = (input.TransactItems as Array<Record<string, unknown>> | undefined) ?? [];
  return {
    ...input,
    TransactItems: items.map((item) =>
      item.Update ? { ...item, Update: withoutHourAdds(item.Update as UpdateParts) } : item,
    ),
  };
}

type Next = (args: { input: Record<string, unknown> }) => Promise<unknown>;
type Context = { clientName?: string; commandName?: string };

const previousLayoutMiddleware =
  (next: Next, context: Context) => async (args: { input: Record<string, unknown> }) => {
    if (context.clientName !== 'DynamoDBClient') return next(args);
    const op = (context.commandName ?? '').replace(/Command$/, '');
    return next({ ...args, input: previousLayoutInput(op, args.input ?? {}) });
  };

interface PatchableClient {
  middlewareStack: { add(middleware: unknown, options: { step: string; name: string }): void };
}

let installed = false;

/**
 * Installs the rewrite on every DynamoDB client of this process, as sdk-counter.ts installs its
 * counter (the handlers under test build their clients out of reach): `send` of the SDK's shared
 * client base class adds the middleware to each stack on its first request. Idempotent; for the
 * layout bench's metering processes only (bench/proc/metering.ts, BENCH_COUNTER_LAYOUT=previous).
 */
export function installPreviousCounterLayout(): void {
  if (installed) return;
  installed = true;
  const base = Object.getPrototypeOf(DynamoDBClient.prototype) as { send: (...args: unknown[]) => unknown };
  const send = base.send;
  // A document client shares its stack with the client it wraps: one middleware per stack.
  const patched = new WeakSet<object>();
  base.send = function (this: PatchableClient, ...args: unknown[]) {
    const stack = this.middlewareStack;
    if (!patched.has(stack)) {
      patched.add(stack);
      stack.add(previousLayoutMiddleware, { step: 'initialize', name: 'benchPreviousCounterLayout' });
    }
    return send.apply(this, args);
  };
}
