import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { type OperationsDefinition, operationsDefinition, widgetsOf } from '../../contracts/dashboard';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { DEFAULT_TRANSPORT, type Transport } from '../../contracts/transport';
import { localAdmin, signUpAndSignIn, type TestUser, userApi } from '../support/local-stack';
import { DESKTOP, launchChromium, screenshot } from './browser';

/**
 * The ops page of `npm start`, in Chromium, as the SaaS owner's admin sees it: every widget of
 * the operations dashboard's shared definition (contracts/dashboard.ts, what the CDK dashboard is
 * rendered from) is on it, the alarms as states, and the figures move while wrk drives traffic at
 * key-api and the example API with several keys. Nobody else gets the figures: no token 401, a
 * signed-in owner who is no admin 403.
 */

const endpoints = inject('endpoints');
const POLL = { timeout: 45_000, interval: 500 };
const execFileAsync = promisify(execFile);

// The e2e stack is `npm start` with this process's environment (test/e2e/global-setup.ts).
const definition: OperationsDefinition = operationsDefinition({
  stage: 'local',
  transport: (process.env[ENV.transport] as Transport | undefined) ?? DEFAULT_TRANSPORT,
  ownerApiService: SERVICE_NAMES.exampleApi,
  ownerApiTargetGroup: true,
  billing: true,
});
const widgets = widgetsOf(definition);

/**
 * The widgets local traffic moves: key checks and their latency, the key cache, publishing, the
 * consumer's batches, events and lag, the load balancer's answers. The others chart what a healthy
 * run never produces (errors, throttles, dead letters, billing drift) or what runs on its own
 * schedule (billing pushes).
 */
const MOVED_BY_LOAD = [
  'key-checks',
  'key-api-latency',
  'key-cache',
  'usage-publishing',
  'consumer-batches',
  'events',
  'usage-lag',
  'load-balancer',
];

let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC' });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close();
});

const snapshot = (token?: string) =>
  fetch(`${endpoints.ops}/api/snapshot`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

async function signInOnPage(email: string, password: string): Promise<void> {
  await page.goto(endpoints.ops);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Each widget's figures as the page shows them, by widget id. */
const figuresOnPage = (): Promise<Record<string, string>> =>
  page.evaluate(() =>
    Object.fromEntries(
      Array.from(document.querySelectorAll<HTMLElement>('[data-widget]'), (widget) => [
        widget.dataset.widget ?? '',
        Array.from(widget.querySelectorAll('td.value'), (cell) => cell.textContent).join(' '),
      ]),
    ),
  );

/** The number the page shows for a series of a widget (by its label); 0 for "no data". */
async function shownValue(widgetId: string, label: string): Promise<number> {
  const row = page.locator(`[data-widget="${widgetId}"] tr`, {
    has: page.locator('td.label', { hasText: new RegExp(`^${label}$`) }),
  });
  const text = (await row.locator('td.value').textContent()) ?? '';
  return text === '–' ? 0 : Number(text);
}

/** A wrk run: `requests` answered, of which `non2xx` were not 2xx. */
interface WrkRun {
  readonly requests: number;
  readonly non2xx: number;
}

/** wrk against `url` for `seconds`, each request with the next of `keys` (a Lua request hook). */
async function wrk(
  url: string,
  method: 'GET' | 'POST',
  keys: readonly string[],
  seconds: number,
): Promise<WrkRun> {
  const dir = await mkdtemp(join(tmpdir(), 'tollgate-wrk-'));
  try {
    const script = join(dir, 'keys.lua');
    await writeFile(
      script,
      [
        `local keys = {${keys.map((key) => JSON.stringify(key)).join(', ')}}`,
        'local i = 0',
        'request = function()',
        '  i = i + 1',
        `  return wrk.format("${method}", nil, { ["x-api-key"] = keys[(i % #keys) + 1] }, nil)`,
        'end',
      ].join('\n'),
    );
    const { stdout } = await execFileAsync('wrk', ['-t1', '-c4', `-d${seconds}s`, '-s', script, url]);
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    if (!Number.isFinite(requests)) throw new Error(`wrk printed no request count:\n${stdout}`);
    return { requests, non2xx };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function keysOf(owner: TestUser, count: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const issued = await userApi(owner.idToken, 'POST', '/keys', { name: `load ${i}` });
    expect(issued.status).toBe(201);
    keys.push((issued.body as { key: string }).key);
  }
  return keys;
}

describe('the ops page', () => {
  it('answers no token and a bad token with 401, a signed-in owner who is no admin with 403', async () => {
    const none = await snapshot();
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { code: 'unauthorized' } });
    const forged = await snapshot('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.');
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ error: { code: 'unauthorized' } });

    const owner = await signUpAndSignIn('ops-owner');
    const refused = await snapshot(owner.idToken);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: 'forbidden', message: expect.any(String) } });

    // In the page, the same owner is told so and shown no figures.
    await signInOnPage(owner.email, owner.password);
    await expect.poll(() => page.getByRole('alert').textContent(), POLL).toContain("Only the owner's admins");
    expect(await page.locator('[data-widget]').count()).toBe(0);
  });

  it("shows every widget of the shared definition to the admin, alarms as states, and the figures move under wrk's load", async () => {
    const admin = await localAdmin();
    await signInOnPage(admin.email, admin.password);
    await expect.poll(() => page.locator('[data-widget]').count(), POLL).toBe(widgets.length);
    for (const widget of widgets) {
      const onPage = page.locator(`[data-widget="${widget.id}"]`);
      const title = widget.type === 'graph' ? widget.title : (/^#\s*(.+)$/m.exec(widget.markdown)?.[1] ?? '');
      expect(await onPage.locator('h1, h2').first().textContent(), widget.id).toBe(title);
      if (widget.type === 'graph') {
        expect(await onPage.locator('tr').count(), widget.id).toBe(widget.left.length + widget.right.length);
      }
    }
    for (const alarm of Object.values(definition.alarms)) {
      // A healthy stack: every alarm OK.
      expect(await page.locator(`[data-alarm="${alarm.name}"]`).getAttribute('data-state'), alarm.name).toBe(
        'OK',
      );
    }

    const owner = await signUpAndSignIn('ops-load');
    const keys = await keysOf(owner, 4);
    await expect.poll(() => page.locator('[data-widget]').count(), POLL).toBe(widgets.length);
    const acceptedBefore = await shownValue('key-checks', 'accepted');
    const before = await figuresOnPage();

    const [keyApiRun, exampleRun] = await Promise.all([
      wrk(endpoints.keyApi, 'POST', keys, 6),
      wrk(`${endpoints.exampleApi}/v1/currencies`, 'GET', keys, 6),
    ]);
    expect(keyApiRun.requests).toBeGreaterThan(0);
    expect(exampleRun.requests).toBeGreaterThan(0);

    // Every key check key-api accepted is on the page (its 2xx answers), within a poll or two.
    await expect
      .poll(() => shownValue('key-checks', 'accepted'), POLL)
      .toBeGreaterThanOrEqual(acceptedBefore + keyApiRun.requests - keyApiRun.non2xx);
    // And every widget local traffic drives has moved, the consumer's once metering has counted.
    await expect
      .poll(async () => {
        const after = await figuresOnPage();
        return MOVED_BY_LOAD.filter((id) => after[id] === before[id]);
      }, POLL)
      .toEqual([]);
    expect(await shownValue('events', 'counted')).toBeGreaterThan(0);
    await screenshot(page, 'ops-page');
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
