/**
 * The metric math the dashboard's definition uses (contracts/dashboard.ts `MathDef`), evaluated
 * over one period's figures: numbers, names, + - * /, parentheses, comparisons (> < >= <= == !=,
 * true = 1) and IF(condition, then, else). CloudWatch evaluates the same text over whole series;
 * the local page needs only the latest period. A division by zero has no value, as in CloudWatch.
 */

type Token =
  | { kind: 'number'; value: number }
  | { kind: 'name'; value: string }
  | { kind: 'op'; value: string };

const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(>=|<=|==|!=|[-+*/(),<>]))/y;

function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expression.length) {
    if (/^\s*$/.test(expression.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(expression);
    if (!match) throw new Error(`metric math: cannot read "${expression.slice(at)}" in "${expression}"`);
    if (match[1] !== undefined) tokens.push({ kind: 'number', value: Number(match[1]) });
    else if (match[2] !== undefined) tokens.push({ kind: 'name', value: match[2] });
    else tokens.push({ kind: 'op', value: match[3] as string });
  }
  return tokens;
}

type Value = number | undefined;

const COMPARISONS: Record<string, (a: number, b: number) => boolean> = {
  '>': (a, b) => a > b,
  '<': (a, b) => a < b,
  '>=': (a, b) => a >= b,
  '<=': (a, b) => a <= b,
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
};

const both = (a: Value, b: Value, f: (a: number, b: number) => Value): Value =>
  a === undefined || b === undefined ? undefined : f(a, b);

/** A recursive-descent reading of the expression, evaluated as it is read. */
class Evaluation {
  #at = 0;
  constructor(
    readonly tokens: Token[],
    readonly variables: Readonly<Record<string, Value>>,
    readonly expression: string,
  ) {}

  run(): Value {
    const value = this.#comparison();
    if (this.#at < this.tokens.length) this.#fail('unexpected text after the expression');
    return value;
  }

  #peek(): Token | undefined {
    return this.tokens[this.#at];
  }

  #takeOp(...ops: string[]): string | undefined {
    const token = this.#peek();
    if (token?.kind === 'op' && ops.includes(token.value)) {
      this.#at += 1;
      return token.value;
    }
    return undefined;
  }

  #expect(op: string): void {
    if (!this.#takeOp(op)) this.#fail(`expected "${op}"`);
  }

  #fail(why: string): never {
    throw new Error(`metric math: ${why} in "${this.expression}"`);
  }

  #comparison(): Value {
    const left = this.#additive();
    const op = this.#takeOp(...Object.keys(COMPARISONS));
    if (!op) return left;
    const compare = COMPARISONS[op] as (a: number, b: number) => boolean;
    return both(left, this.#additive(), (a, b) => (compare(a, b) ? 1 : 0));
  }

  #additive(): Value {
    let value = this.#term();
    for (let op = this.#takeOp('+', '-'); op; op = this.#takeOp('+', '-')) {
      const right = this.#term();
      value = both(value, right, op === '+' ? (a, b) => a + b : (a, b) => a - b);
    }
    return value;
  }

  #term(): Value {
    let value = this.#unary();
    for (let op = this.#takeOp('*', '/'); op; op = this.#takeOp('*', '/')) {
      const right = this.#unary();
      value = both(value, right, op === '*' ? (a, b) => a * b : (a, b) => (b === 0 ? undefined : a / b));
    }
    return value;
  }

  #unary(): Value {
    if (this.#takeOp('-')) {
      const value = this.#unary();
      return value === undefined ? undefined : -value;
    }
    return this.#primary();
  }

  #primary(): Value {
    const token = this.#peek();
    if (!token) this.#fail('the expression ends early');
    this.#at += 1;
    if (token.kind === 'number') return token.value;
    if (token.kind === 'op') {
      if (token.value !== '(') this.#fail(`unexpected "${token.value}"`);
      const value = this.#comparison();
      this.#expect(')');
      return value;
    }
    if (token.value.toUpperCase() === 'IF' && this.#takeOp('(')) {
      const condition = this.#comparison();
      this.#expect(',');
      const then = this.#comparison();
      this.#expect(',');
      const otherwise = this.#comparison();
      this.#expect(')');
      return condition === undefined ? undefined : condition !== 0 ? then : otherwise;
    }
    if (!(token.value in this.variables)) this.#fail(`unknown name "${token.value}"`);
    return this.variables[token.value];
  }
}

/**
 * The expression's value for one period. A metric without data in the period counts as 0 when
 * another has some (what FILL(m, 0) would say: nothing happened); without any data, no value.
 */
export function evaluateMath(expression: string, variables: Readonly<Record<string, Value>>): Value {
  const values = Object.values(variables);
  if (values.every((value) => value === undefined)) return undefined;
  const filled = Object.fromEntries(Object.entries(variables).map(([name, value]) => [name, value ?? 0]));
  return new Evaluation(tokenize(expression), filled, expression).run();
}
