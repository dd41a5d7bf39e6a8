import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { serve } from '@hono/node-server';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_KEY_CACHE_WINDOWS, DEFAULT_ROLL_GRACE_MS, ENV } from '../../contracts/config';
import { billingSchema, planBodySchema, planIdSchema, quotaSchema } from '../../contracts/plans';
import { tableName, tables } from '../../contracts/resources';
import { ADMIN_FILE, type LocalAdmin } from '../../infra/local/bootstrap';
import { latestCode } from '../../infra/local/mailbox';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { duration } from '../../web/src/format';
import { LOCAL_CREDENTIALS } from '../support/aws';
import { signUpAndSignIn } from '../support/local-stack';
import { DESKTOP, launchChromium, PHONE, screenshot } from './browser';

/**
 * An account owner's whole visit, in Debian's Chromium against the local stack that `npm start`
 * runs: sign up, confirm with the emailed code, reveal and create keys, use them, watch the usage
 * chart count them, roll and revoke, sign out and in, and lose the session. Then the SaaS owner's
 * admin, signed in beside them, creates a plan, puts the owner on it, suspends and resumes them,
 * and the owner's plan card follows: the plan's name, the quota used and left, and when it resets.
 */

const endpoints = inject('endpoints');
const dataDir = inject('dataDir');
const email = `owner-${Date.now()}@example.com`;
const password = 'Correct-Horse-42';
const POLL = { timeout: 20_000, interval: 250 };

/**
 * The key cache's fresh window the e2e stack's key-api runs with: global-setup starts `npm start`
 * with this process's environment, so the same variable (or the shipped default) decides it. A
 * revoked key must be refused within it (README: "A revoked key stops working within 10 s").
 */
const FRESH_MS = Number(process.env[ENV.keyCacheFreshMs] ?? DEFAULT_KEY_CACHE_WINDOWS.freshMs);
/** The roll grace the e2e stack's user-api gives a roll that names none, decided the same way. */
const ROLL_GRACE_MS = Number(process.env[ENV.rollGraceMs] ?? DEFAULT_ROLL_GRACE_MS);
/** What the page adds to the fresh window: one try-box poll (1 s), its round trip and a render. */
const REFUSAL_SEEN_SLACK_MS = 2_500;

let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  browser = await launchChromium();
  context = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC' });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close();
});

/** The row of the key with this name and status (a rolled key and its successor share a name). */
const keyRow = (name: string, status = 'active'): Locator =>
  page
    .getByTestId('key-list')
    .locator(`.key-row[data-status="${status}"]`, { has: page.locator('.key-name', { hasText: name }) });

async function sendWithTryBox(): Promise<{ status: number; summary: string }> {
  const answered = page.waitForResponse(
    (response) => response.url().startsWith(endpoints.keyApi) && response.request().method() === 'POST',
  );
  await page.getByRole('button', { name: 'Send request' }).click();
  const response = await answered;
  const answer = page.getByTestId('try-answer');
  await expect.poll(() => answer.getAttribute('data-status'), POLL).toBe(String(response.status()));
  return {
    status: response.status(),
    summary: (await answer.locator('.answer-summary').textContent()) ?? '',
  };
}

async function callKeyApi(key: string): Promise<number> {
  const response = await fetch(endpoints.keyApi, { method: 'POST', headers: { 'x-api-key': key } });
  await response.body?.cancel();
  return response.status;
}

/** Calls the example owner API (examples/rates-api, behind the gate) with `key`, as a customer's server would. */
async function callExampleApi(
  key: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<number> {
  const response = await fetch(`${endpoints.exampleApi}${path}`, {
    method,
    headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.body?.cancel();
  return response.status;
}

/** The route table's row for one route template (and method, unless any method will do). */
const routeRow = (route: string, method?: string): Locator =>
  page
    .getByTestId('route-table')
    .locator(`tr.route-row[data-route="${route}"]${method ? `[data-method="${method}"]` : ''}`);

async function openPage(name: 'Keys' | 'Usage'): Promise<void> {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name }).click();
  await page.getByRole('heading', { level: 1, name: name === 'Keys' ? 'API keys' : 'Usage' }).waitFor();
}

describe('the account owner web page', () => {
  let firstKey = '';
  let ciKey = '';

  it('serves the page and its generated config', async () => {
    const config = (await (await fetch(`${endpoints.web}/config.json`)).json()) as Record<string, unknown>;
    expect(config).toMatchObject({
      userApi: endpoints.userApi,
      keyApi: endpoints.keyApi,
      cognito: { endpoint: endpoints.cognito.endpoint, userPoolId: endpoints.cognito.userPoolId },
      // The windows the page states are the stack's own (contracts/web-config.ts), not built in.
      windows: { keyCacheFreshMs: FRESH_MS, rollGraceMs: ROLL_GRACE_MS },
    });
  });

  it('signs up, confirms with the emailed code and lands on the keys page', async () => {
    await page.goto(endpoints.web);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await screenshot(page, 'sign-in-desktop');
    await page.getByRole('tab', { name: 'Create Account' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByLabel('Confirm Password').fill(password);
    await page.getByRole('button', { name: 'Create Account' }).click();

    await page.getByLabel('Confirmation Code').waitFor();
    let code: string | undefined;
    await expect
      .poll(async () => {
        code = await latestCode(dataDir, email);
        return code;
      }, POLL)
      .toMatch(/^\d{6}$/);
    await page.getByLabel('Confirmation Code').fill(code ?? '');
    await page.getByRole('button', { name: 'Confirm' }).click();

    // Confirmed and signed in on its own; the account's first key waits to be revealed.
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await expect.poll(() => page.locator('.account-email').textContent(), POLL).toBe(email);
    const first = page.getByTestId('key-list').locator('.key-row').first();
    await expect.poll(() => first.getAttribute('data-status'), POLL).toBe('pending');
  });

  it('reveals the first key once and tries it against the key API', async () => {
    await page.getByRole('button', { name: 'Reveal key' }).click();
    const panel = page.getByTestId('secret-panel');
    await panel.waitFor();
    expect(await panel.textContent()).toContain('shown only once');
    firstKey = await page.getByTestId('secret-value').inputValue();
    expect(firstKey).toMatch(/^tg_[0-9A-Za-z]{28}$/);

    // "Try this key" fills the try box with it; three requests, three acceptances.
    await panel.getByRole('button', { name: 'Try this key' }).click();
    expect(await page.getByLabel('API key', { exact: true }).inputValue()).toBe(firstKey);
    for (let i = 0; i < 3; i++) {
      const answer = await sendWithTryBox();
      expect(answer.status).toBe(200);
      expect(answer.summary).toContain('Accepted');
    }

    // The list follows on its own: active now, and the three requests counted.
    const row = page.getByTestId('key-list').locator('.key-row').first();
    await expect.poll(() => row.getAttribute('data-status'), POLL).toBe('active');
    await expect.poll(() => row.getByTestId('key-count').textContent(), POLL).toBe('3');
    expect(await row.textContent()).not.toContain('Never');
  });

  it('creates a named key, shows its secret once, and counts requests made with it elsewhere', async () => {
    await page.getByLabel('Name (optional)').fill('ci-server');
    await page.getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => page.locator('#secret-title').textContent(), POLL).toContain('ci-server');
    ciKey = await page.getByTestId('secret-value').inputValue();
    expect(ciKey).toMatch(/^tg_/);
    expect(ciKey).not.toBe(firstKey);

    expect(await callKeyApi(ciKey)).toBe(200);
    expect(await callKeyApi(ciKey)).toBe(200);
    await expect.poll(() => keyRow('ci-server').getByTestId('key-count').textContent(), POLL).toBe('2');

    await screenshot(page, 'keys-desktop');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'keys-390');
    await page.setViewportSize(DESKTOP);

    // Once hidden, the secret is nowhere on the page; the list shows only its start.
    await page.getByRole('button', { name: /I've stored it/ }).click();
    await page.getByTestId('secret-panel').waitFor({ state: 'detached' });
    await page.getByLabel('API key', { exact: true }).fill('');
    const text = (await page.locator('body').innerText()) + (await page.content());
    expect(text).not.toContain(ciKey);
    expect(text).not.toContain(firstKey);
    expect(await keyRow('ci-server').locator('.key-start').textContent()).toBe(`${ciKey.slice(0, 7)}…`);
  });

  it('charts the daily usage with its total and freshness, for all keys and for one, refreshing by itself', async () => {
    await openPage('Usage');
    const total = page.getByTestId('usage-total');
    await expect.poll(() => total.textContent(), POLL).toBe('5');
    const today = new Date().toISOString().slice(0, 10);
    const bars = page.getByTestId('usage-chart').locator('.bar');
    expect(await bars.count()).toBe(30);
    expect(await page.locator(`.bar[data-date="${today}"]`).getAttribute('data-count')).toBe('5');
    expect(await page.getByTestId('usage-as-of').textContent()).toMatch(/As of .*updates every 5 s/);

    // No reload, no click: a new request shows up on the next refresh.
    expect(await callKeyApi(firstKey)).toBe(200);
    await expect.poll(() => total.textContent(), POLL).toBe('6');
    expect(await page.getByTestId('usage-today').textContent()).toBe('6');

    await page.locator(`.bar[data-date="${today}"]`).hover();
    await page.locator('.tooltip').waitFor();
    await screenshot(page, 'usage-desktop');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'usage-390');
    await page.setViewportSize(DESKTOP);

    await page.getByLabel('Show').selectOption({ label: `ci-server (${ciKey.slice(0, 7)}…)` });
    await expect.poll(() => total.textContent(), POLL).toBe('2');
    expect(await page.locator('.stat-note').first().textContent()).toContain('ci-server');
    await page.getByLabel('Show').selectOption({ label: 'All keys' });
    await expect.poll(() => total.textContent(), POLL).toBe('6');
  });

  it("splits the usage by route of the owner's API, leaving out what it does not bill", async () => {
    // Still on the usage page, all keys: so far only key-api's own checks, which have no route.
    const total = page.getByTestId('usage-total');
    await expect.poll(() => routeRow('*').getByTestId('route-count').textContent(), POLL).toBe('6');
    expect(await page.getByTestId('route-table').locator('tbody tr').count()).toBe(1);

    for (let i = 0; i < 3; i++) expect(await callExampleApi(ciKey, 'GET', '/v1/rates/EUR')).toBe(200);
    for (let i = 0; i < 2; i++) {
      expect(await callExampleApi(ciKey, 'POST', '/v1/convert', { from: 'USD', to: 'EUR', amount: 10 })).toBe(
        200,
      );
    }
    // Answered, never billed: it must not show up anywhere.
    expect(await callExampleApi(ciKey, 'GET', '/v1/status')).toBe(200);

    // No reload: the next refreshes count them, under their route templates, largest first.
    await expect.poll(() => total.textContent(), POLL).toBe('11');
    const table = page.getByRole('table', { name: /Requests by route/ });
    await expect
      .poll(
        async () =>
          (await table.locator('tbody tr').allInnerTexts()).map((row) => row.replace(/\s+/g, ' ').trim()),
        POLL,
      )
      .toEqual([
        expect.stringMatching(/^POST Without a route .* 6 54\.5%$/),
        expect.stringMatching(/^GET \/v1\/rates\/:base 3 27\.3%$/),
        expect.stringMatching(/^POST \/v1\/convert 2 18\.2%$/),
      ]);
    expect(await routeRow('/v1/rates/:base', 'GET').getByTestId('route-count').textContent()).toBe('3');
    expect(await routeRow('/v1/convert', 'POST').getByTestId('route-count').textContent()).toBe('2');
    expect(await routeRow('/v1/status').count()).toBe(0);
    expect(await table.textContent()).not.toContain('/v1/status');
    expect(await page.getByTestId('route-total').textContent()).toBe('11');
    expect(await table.getByRole('rowheader', { name: /GET \/v1\/rates\/:base/ }).count()).toBe(1);

    // Today's bar is stacked from the same numbers.
    const today = new Date().toISOString().slice(0, 10);
    const bar = page.locator(`.bar[data-date="${today}"]`);
    expect(await bar.getAttribute('data-count')).toBe('11');
    expect(await bar.locator('[data-series="GET /v1/rates/:base"]').getAttribute('data-count')).toBe('3');
    expect(await bar.locator('[data-series="POST /v1/convert"]').getAttribute('data-count')).toBe('2');
    expect(await bar.locator('[data-series="none"]').getAttribute('data-count')).toBe('6');
    await bar.hover();
    expect(await page.locator('.tooltip').textContent()).toContain('GET /v1/rates/:base');
    await screenshot(page, 'usage-routes-desktop');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'usage-routes-390');
    await page.setViewportSize(DESKTOP);

    // The key filter splits one key's requests: the routes were all called with "ci-server".
    await page.getByLabel('Show').selectOption({ label: `ci-server (${ciKey.slice(0, 7)}…)` });
    await expect.poll(() => total.textContent(), POLL).toBe('7');
    await expect.poll(() => routeRow('*').getByTestId('route-count').textContent(), POLL).toBe('2');
    expect(await routeRow('/v1/rates/:base', 'GET').getByTestId('route-count').textContent()).toBe('3');
    // The first key only ever went to key-api: nothing but key checks.
    const firstOption = page.locator('#usage-key option', { hasText: `${firstKey.slice(0, 7)}…` });
    await page.getByLabel('Show').selectOption((await firstOption.getAttribute('value')) ?? '');
    await expect.poll(() => total.textContent(), POLL).toBe('4');
    await expect.poll(() => page.getByTestId('route-table').locator('tbody tr').count(), POLL).toBe(1);
    expect(await routeRow('*').getByTestId('route-count').textContent()).toBe('4');
    await page.getByLabel('Show').selectOption({ label: 'All keys' });
    await expect.poll(() => total.textContent(), POLL).toBe('11');
  });

  it('rolls a key and says until when the old one works; revokes a key after asking', async () => {
    await openPage('Keys');
    await keyRow('ci-server').getByRole('button', { name: 'Roll' }).click();
    const rollDialog = page.getByRole('dialog', { name: 'Roll “ci-server”?' });
    // The default grace is the user API's configured one.
    expect(
      await rollDialog
        .getByRole('radio')
        .first()
        .evaluate((radio) => radio.parentElement?.textContent),
    ).toContain(`${duration(ROLL_GRACE_MS)} (default)`);
    await rollDialog.getByLabel('1 hour').check();
    await rollDialog.getByRole('button', { name: 'Roll key' }).click();
    await rollDialog.waitFor({ state: 'hidden' });
    const note = page.getByTestId('roll-note');
    await note.waitFor();
    expect(await note.textContent()).toMatch(/keeps\s+working until .*\(in (60 minutes|1 hour)\)/);
    const rolledKey = await page.getByTestId('secret-value').inputValue();
    expect(rolledKey).not.toBe(ciKey);
    expect(await callKeyApi(ciKey)).toBe(200);
    expect(await callKeyApi(rolledKey)).toBe(200);
    await expect.poll(() => page.locator('.key-row[data-status="expiring"]').count(), POLL).toBe(1);
    expect(await page.locator('.key-row[data-status="expiring"]').textContent()).toContain('Works until');

    // Revoking asks first; cancelling keeps the key.
    const firstRow = page.locator('.key-row', { has: page.getByText(`${firstKey.slice(0, 7)}…`) });
    await firstRow.getByRole('button', { name: 'Revoke' }).click();
    const revokeDialog = page.getByRole('dialog', { name: /^Revoke/ });
    expect(await revokeDialog.textContent()).toContain("can't be undone");
    // The page promises the key cache's configured fresh window, the one the next assertions hold it to.
    expect(await revokeDialog.textContent()).toContain(`are refused within ${duration(FRESH_MS)}`);
    await revokeDialog.getByRole('button', { name: 'Cancel' }).click();
    await revokeDialog.waitFor({ state: 'hidden' });
    expect(await firstRow.getAttribute('data-status')).toBe('active');

    await firstRow.getByRole('button', { name: 'Revoke' }).click();
    const revokeAnswered = page.waitForResponse(
      (response) => response.request().method() === 'DELETE' && response.url().startsWith(endpoints.userApi),
    );
    await revokeDialog.getByRole('button', { name: 'Revoke key' }).click();
    expect((await revokeAnswered).status()).toBe(200);
    const revokedAt = Date.now();
    await expect
      .poll(() => page.getByTestId('keys-notice').textContent(), POLL)
      .toContain(`Requests with it are refused within ${duration(FRESH_MS)}.`);
    await expect
      .poll(() => page.locator('details.inactive .key-row[data-status="revoked"]').count(), POLL)
      .toBe(1);

    // Within the key cache's fresh window, the try box shows the refusal.
    await page.getByLabel('API key', { exact: true }).fill(firstKey);
    await expect
      .poll(async () => (await sendWithTryBox()).summary, {
        timeout: FRESH_MS + REFUSAL_SEEN_SLACK_MS,
        interval: 1_000,
      })
      .toContain('Refused: The API key has been revoked');
    expect(Date.now() - revokedAt).toBeLessThanOrEqual(FRESH_MS + REFUSAL_SEEN_SLACK_MS);
    expect(await page.getByTestId('try-answer').getAttribute('data-status')).toBe('401');

    await page.locator('details.inactive summary').click();
    await screenshot(page, 'keys-rolled-and-revoked-desktop');
  });

  it('signs out, and signs back in with the password', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await expect.poll(() => keyRow('ci-server').count(), POLL).toBe(1);
  });

  it('says so when the API cannot be reached, and recovers', async () => {
    const userApi = `${endpoints.userApi}/**`;
    await page.route(userApi, (route) => route.abort('connectionrefused'));
    await expect.poll(() => page.getByTestId('keys-error').textContent(), POLL).toContain('Could not reach');
    // What was loaded stays on screen meanwhile.
    expect(await keyRow('ci-server').count()).toBe(1);
    await page.unroute(userApi);
    await page.getByTestId('keys-error').waitFor({ state: 'detached', timeout: 20_000 });
  });

  it('goes back to the sign-in form, saying why, when the session is gone', async () => {
    // What an expired session that cannot be refreshed looks like to the page: no tokens.
    await page.evaluate(() => localStorage.clear());
    await page.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 20_000 });
    expect(await page.locator('.auth-header').textContent()).toContain('Your session has ended');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'session-ended-390');
    await page.setViewportSize(DESKTOP);
  });

  it('explains a missing or broken configuration instead of showing a blank page', async () => {
    const other = await context.newPage();
    await other.route('**/config.json', (route) => route.fulfill({ status: 500, body: 'boom' }));
    await other.goto(endpoints.web);
    const alert = other.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toContain("Tollgate can't start");
    expect(await alert.textContent()).toContain('/config.json answered 500');
    await other.close();
  });

  it('threw no errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});

describe("the SaaS owner's admin view, and the owner's plan", () => {
  const PLAN_ID = 'e2e-small';
  let adminContext: BrowserContext;
  let adminPage: Page;
  const adminErrors: string[] = [];

  beforeAll(async () => {
    // A browser of its own (its own storage): the admin and the owner are signed in side by side.
    adminContext = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC' });
    adminPage = await adminContext.newPage();
    adminPage.setDefaultTimeout(15_000);
    adminPage.on('pageerror', (error) => adminErrors.push(error.message));
  });

  afterAll(async () => {
    await adminContext?.close();
  });

  const planCard = () => page.getByTestId('plan-card');
  const accountRow = () => adminPage.locator(`tr.account-row[data-email="${email}"]`);

  async function signInAs(on: Page, who: { email: string; password: string }): Promise<void> {
    await on.getByRole('button', { name: 'Sign in' }).waitFor();
    await on.getByLabel('Email').fill(who.email);
    await on.getByLabel('Password', { exact: true }).fill(who.password);
    await on.getByRole('button', { name: 'Sign in' }).click();
    await on.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
  }

  it('shows the owner, on the default plan, its key cap as shipped and no other limit', async () => {
    // The visit above ended with the session gone: the owner signs in again.
    await signInAs(page, { email, password });
    // An owner is no admin: no admin tab.
    expect(
      await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').allInnerTexts(),
    ).toEqual(['Keys', 'Usage']);
    await openPage('Usage');
    await expect.poll(() => planCard().getByTestId('plan-name').textContent(), POLL).toBe('Default');
    // The shipped default plan (contracts/plans.ts SHIPPED_DEFAULT_PLAN): 25 live keys, nothing else.
    expect(await planCard().getByTestId('keys-used').textContent()).toMatch(/^\d+ of 25$/);
    expect(await planCard().locator('[data-limit="quota"] dd').textContent()).toContain('unlimited');
  });

  it('signs the local admin in, who gets the admin view with every account', async () => {
    const admin = JSON.parse(await readFile(join(dataDir, ADMIN_FILE), 'utf8')) as LocalAdmin;
    await adminPage.goto(endpoints.web);
    await signInAs(adminPage, admin);
    const adminTab = adminPage
      .getByRole('navigation', { name: 'Sections' })
      .getByRole('link', { name: 'Admin' });
    await adminTab.click();
    await adminPage.getByRole('heading', { level: 1, name: 'Admin' }).waitFor();
    await accountRow().waitFor();
    expect(await accountRow().getByTestId('account-status').textContent()).toContain('Active');
    expect(await accountRow().getByLabel(`Plan of ${email}`).inputValue()).toBe('default');
    // No quota on the default plan: this month's usage, counted.
    expect(await accountRow().getByTestId('account-usage').textContent()).toMatch(
      /\d+ this month · no quota/,
    );
  });

  it("searches the accounts by email, sorts them either way, and downloads the month's CSV", async () => {
    const rows = adminPage.locator('tr.account-row');
    const search = adminPage.getByTestId('accounts-search');
    await search.fill(email.toUpperCase());
    await expect
      .poll(() => rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-email'))), POLL)
      .toEqual([email]);
    await search.fill(`nobody-${Date.now()}@`);
    await adminPage.getByTestId('accounts-none').waitFor();
    await search.fill('');
    await accountRow().waitFor();
    await adminPage.getByTestId('accounts-sort').selectOption('-email');
    await expect
      .poll(async () => {
        const emails = await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-email') ?? ''));
        const descending = [...emails].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? 1 : -1));
        return emails.length > 1 && emails.join() === descending.join();
      }, POLL)
      .toBe(true);
    await adminPage.getByTestId('accounts-sort').selectOption('email');
    await accountRow().waitFor();

    // The month's top is shown, and its CSV downloads with the owner's every day of the month.
    await adminPage.getByRole('heading', { level: 2, name: 'Top this month' }).waitFor();
    const [download] = await Promise.all([
      adminPage.waitForEvent('download'),
      adminPage.getByTestId('download-accounts-csv').click(),
    ]);
    const csv = await readFile(await download.path(), 'utf8');
    const lines = csv.split('\r\n').filter((line) => line !== '');
    expect(lines[0]).toBe('accountId,email,date,requests');
    const days = new Date(
      Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth() + 1, 0),
    ).getUTCDate();
    expect(lines.filter((line) => line.split(',')[1] === email)).toHaveLength(days);
  });

  it("refuses a plan the API's schema refuses, with zod's message by each field, and sends nothing", async () => {
    const form = adminPage.locator('form.plan-form');
    const puts: string[] = [];
    const onRequest = (request: { method(): string; url(): string }) => {
      if (request.method() === 'PUT') puts.push(request.url());
    };
    adminPage.on('request', onRequest);
    await form.getByLabel('Plan id').fill('Bad Id!');
    await form.getByLabel('Name', { exact: true }).fill('  ');
    await form.getByLabel('Quota requests').fill('-3');
    await form.getByLabel('Rate limit requests').fill('5');
    await form.getByLabel('Rate limit seconds').fill('');
    await form.getByLabel('Max live keys').fill('1.5');
    await form.getByLabel('Stripe price id').fill('prod_NotAPrice');
    await form.getByRole('button', { name: 'Save plan' }).click();
    await adminPage.getByTestId('plan-form-error').waitFor();

    /** The message tied to a field (aria-describedby), once the field is marked invalid. */
    const messageOf = async (field: Locator) => {
      expect(await field.getAttribute('aria-invalid')).toBe('true');
      const id = await field.getAttribute('aria-describedby');
      return adminPage.locator(`[id="${id}"]`).textContent();
    };
    const zodSays = (result: { error?: { issues: Array<{ message: string }> } }) =>
      result.error?.issues[0]?.message;
    expect(await messageOf(form.getByLabel('Plan id'))).toBe(zodSays(planIdSchema.safeParse('Bad Id!')));
    expect(await messageOf(form.getByLabel('Name', { exact: true }))).toBe(
      zodSays(planBodySchema.shape.name.safeParse('  ')),
    );
    expect(await messageOf(form.getByLabel('Quota requests'))).toBe(
      zodSays(quotaSchema.shape.requests.safeParse(-3)),
    );
    expect(await messageOf(form.getByLabel('Rate limit seconds'))).toContain('leave both blank');
    expect(await messageOf(form.getByLabel('Max live keys'))).toBe(
      zodSays(planBodySchema.shape.maxKeys.safeParse(1.5)),
    );
    expect(await messageOf(form.getByLabel('Stripe price id'))).toBe(
      zodSays(billingSchema.shape.priceId.safeParse('prod_NotAPrice')),
    );
    await form.getByLabel('Stripe price id').fill('');
    // What is fine is not marked.
    expect(await form.getByLabel('Rate limit requests').getAttribute('aria-invalid')).toBeNull();
    adminPage.off('request', onRequest);
    expect(puts).toEqual([]);
  });

  it('creates a plan with the form: a quota of 20 a day, 100 requests per 10 s and at most 5 live keys', async () => {
    const form = adminPage.locator('form.plan-form');
    await form.getByLabel('Plan id').fill(PLAN_ID);
    await form.getByLabel('Name', { exact: true }).fill(PLAN_ID);
    await form.getByLabel('Quota requests').fill('20');
    await form.getByLabel('Quota period').selectOption('day');
    await form.getByLabel('Rate limit requests').fill('100');
    await form.getByLabel('Rate limit seconds').fill('10');
    await form.getByLabel('Max live keys').fill('5');
    await form.getByRole('button', { name: 'Save plan' }).click();
    await expect
      .poll(() => adminPage.getByTestId('admin-notice').textContent(), POLL)
      .toContain(`Created the plan “${PLAN_ID}”`);
    const listed = adminPage.getByTestId('plan-list').locator(`[data-plan-id="${PLAN_ID}"]`);
    await expect
      .poll(() => listed.textContent(), POLL)
      .toContain('20 requests per day · 100 per 10 s per account · 5 live keys');
  });

  it("assigns it to the owner's account, then suspends and resumes it after asking", async () => {
    const row = accountRow();
    await row.getByLabel(`Plan of ${email}`).selectOption(PLAN_ID);
    await row.getByRole('button', { name: 'Assign' }).click();
    await expect
      .poll(() => adminPage.getByTestId('admin-notice').textContent(), POLL)
      .toContain(
        `${email} is on “${PLAN_ID}” now. The gate holds its keys to it within ${duration(FRESH_MS)}.`,
      );
    await expect.poll(() => row.getByTestId('account-usage').textContent(), POLL).toMatch(/\d+ of 20 today/);

    // Suspending asks first; cancelling changes nothing.
    await row.getByRole('button', { name: 'Suspend' }).click();
    const suspendDialog = adminPage.getByRole('dialog', { name: `Suspend ${email}?` });
    expect(await suspendDialog.textContent()).toContain(
      `(403 account_suspended) within ${duration(FRESH_MS)}`,
    );
    await suspendDialog.getByRole('button', { name: 'Cancel' }).click();
    await suspendDialog.waitFor({ state: 'hidden' });
    expect(await row.getByTestId('account-status').textContent()).toContain('Active');

    await row.getByRole('button', { name: 'Suspend' }).click();
    await suspendDialog.getByRole('button', { name: 'Suspend account' }).click();
    await expect.poll(() => row.getByTestId('account-status').textContent(), POLL).toContain('Suspended');
    expect(await row.getAttribute('data-status')).toBe('suspended');
    // The owner's page says so on its next refresh, under the new plan.
    await expect.poll(() => planCard().getAttribute('data-status'), POLL).toBe('suspended');
    expect(await planCard().getByTestId('plan-suspended').textContent()).toContain('suspended');
    await screenshot(adminPage, 'admin-desktop');
    await adminPage.setViewportSize(PHONE);
    await screenshot(adminPage, 'admin-390');
    await adminPage.setViewportSize(DESKTOP);

    await row.getByRole('button', { name: 'Resume' }).click();
    const resumeDialog = adminPage.getByRole('dialog', { name: `Resume ${email}?` });
    await resumeDialog.getByRole('button', { name: 'Resume account' }).click();
    await expect.poll(() => row.getByTestId('account-status').textContent(), POLL).toContain('Active');
    expect(await adminPage.getByTestId('admin-notice').textContent()).toContain(`Resumed ${email}`);
    await expect.poll(() => planCard().getAttribute('data-status'), POLL).toBe('active');
  });

  it('shows the owner their plan: the quota used of 20 today, what is left and when it resets', async () => {
    const card = planCard();
    await expect.poll(() => card.getByTestId('plan-name').textContent(), POLL).toBe(PLAN_ID);
    expect(await card.getByTestId('quota-limit').textContent()).toBe('20');
    // The quota counts this UTC day, all keys: today's figure of the usage page, no more, no less.
    const used = Number(await card.getByTestId('quota-used').textContent());
    expect(used).toBeGreaterThan(0);
    expect(String(used)).toBe(await page.getByTestId('usage-today').textContent());
    expect(await card.getByTestId('quota-remaining').textContent()).toBe(String(20 - used));
    expect(await card.getByRole('progressbar').getAttribute('aria-valuenow')).toBe(String(used));
    const tomorrow = new Date(new Date().setUTCHours(24, 0, 0, 0));
    const resets = new Intl.DateTimeFormat('en-GB', {
      dateStyle: 'medium',
      timeStyle: 'short',
      timeZone: 'UTC',
    });
    expect(await card.getByTestId('quota-resets').textContent()).toContain(
      `Resets at ${resets.format(tomorrow)}`,
    );
    // Live keys: the rolled key and its predecessor in its grace; the revoked one does not count.
    expect(await card.getByTestId('keys-used').textContent()).toBe('2 of 5');
    expect(await card.getByTestId('rate-limit').textContent()).toBe('100 requests per 10 s');

    // A new key and two requests with it: the card follows, with no reload.
    await openPage('Keys');
    await page.getByLabel('Name (optional)').fill('quota-check');
    await page.getByRole('button', { name: 'Create key' }).click();
    await expect.poll(() => page.locator('#secret-title').textContent(), POLL).toContain('quota-check');
    const key = await page.getByTestId('secret-value').inputValue();
    expect(await callKeyApi(key)).toBe(200);
    expect(await callKeyApi(key)).toBe(200);
    await page.getByRole('button', { name: /I've stored it/ }).click();
    await openPage('Usage');
    await expect.poll(() => card.getByTestId('quota-used').textContent(), POLL).toBe(String(used + 2));
    expect(await card.getByTestId('quota-remaining').textContent()).toBe(String(18 - used));
    expect(await card.getByTestId('keys-used').textContent()).toBe('3 of 5');
    await screenshot(page, 'usage-plan-desktop');
    await page.setViewportSize(PHONE);
    await screenshot(page, 'usage-plan-390');
    await page.setViewportSize(DESKTOP);
  });

  it("shows the plans' prices to the admin, and the owner a billing card offering the priced plan", async () => {
    // `npm start` seeds `pro` with the stand-in's price; the plan made above has none.
    const plans = adminPage.getByTestId('plan-list');
    await expect
      .poll(() => plans.locator('[data-plan-id="pro"]').getByTestId('plan-price').textContent(), POLL)
      .toMatch(/Sold at Stripe price price_\w+/);
    expect(
      await plans.locator(`[data-plan-id="${PLAN_ID}"]`).getByTestId('plan-price').textContent(),
    ).toContain('Not for sale');

    const billing = page.getByTestId('billing-card');
    await billing.waitFor();
    // Never subscribed: nothing billed, however much is counted; no portal to open.
    await expect
      .poll(() => billing.getByTestId('billing-sync').textContent(), POLL)
      .toMatch(/Not on a paid plan: nothing is billed\. \d+ requests? counted this period\./);
    expect(await billing.getByTestId('billing-manage').count()).toBe(0);
    const offer = billing.getByTestId('billing-offers').locator('[data-plan-id="pro"]');
    expect(await offer.getByRole('button').textContent()).toContain('Upgrade to Pro');
    await screenshot(page, 'usage-billing-desktop');
  });

  it("upgrades through Stripe's Checkout: back on the page, the owner is on pro and can manage billing", async () => {
    const billing = page.getByTestId('billing-card');
    await billing.getByTestId('billing-upgrade-pro').click();
    // Stripe's hosted page (the stand-in's): its form submits the succeeding test card.
    await page.waitForURL((url) => url.href.startsWith(endpoints.stripe), { timeout: 15_000 });
    await page.getByRole('button', { name: 'Subscribe' }).click();
    await page.waitForURL(
      (url) => url.href.startsWith(endpoints.web) && url.search.includes('checkout=success'),
    );
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    await openPage('Usage');
    // The webhook's delivery puts the account on the price's plan; the page follows on its refresh.
    await expect.poll(() => planCard().getByTestId('plan-name').textContent(), POLL).toBe('Pro');
    await expect
      .poll(() => billing.getByTestId('billing-subscription').textContent(), POLL)
      .toMatch(/Subscription: active · renews /);
    expect(await billing.getByTestId('billing-manage').textContent()).toContain('Manage billing');
    // Subscribed: nothing more to buy here; changes go through the portal.
    expect(await billing.getByTestId('billing-offers').count()).toBe(0);
    // `npm start` exports every 5 s: within a few, Stripe has what was counted, and the card says so.
    await expect
      .poll(() => billing.getAttribute('data-in-sync'), { timeout: 30_000, interval: 500 })
      .toBe('true');
    expect(await billing.getByTestId('billing-sync').textContent()).toMatch(
      /Billed = metered: \d+ requests? this period, as of/,
    );
    await screenshot(page, 'usage-billing-subscribed-desktop');
  });

  it('threw no errors in either page', () => {
    expect(pageErrors).toEqual([]);
    expect(adminErrors).toEqual([]);
  });
});

describe('signing in again to mint a key, when the sign-in is too old', () => {
  /** The window of this describe's user-api: short, so a real sign-in gets old within seconds. */
  const MAX_AGE_MS = 10_000;
  let server: Server;
  let shortApi: string;
  let reauthContext: BrowserContext;
  let reauthPage: Page;
  const reauthErrors: string[] = [];

  beforeAll(async () => {
    // The stack's user-api keeps the default window (15 minutes), which the visits above rely on.
    // Beside it, the same compose function over the same tables and Cognito (as infra/local/stack.ts
    // composes it, stage `local`) with a 10 s window; this page's user-API requests go to it.
    const names = Object.fromEntries(tables.map((table) => [table.id, tableName('local', table)]));
    const issuer = `${endpoints.cognito.endpoint}/${endpoints.cognito.userPoolId}`;
    const app = composeUserApi(
      loadUserApiConfig({
        [ENV.accountsTable]: names.accounts,
        [ENV.keysTable]: names.keys,
        [ENV.usageTable]: names.usage,
        [ENV.plansTable]: names.plans,
        [ENV.jwtIssuer]: issuer,
        [ENV.jwksUri]: `${issuer}/.well-known/jwks.json`,
        [ENV.userPoolClientId]: endpoints.cognito.clientId,
        [ENV.allowedOrigins]: endpoints.web,
        [ENV.signInMaxAgeMs]: String(MAX_AGE_MS),
      }),
      {
        aws: {
          region: endpoints.region,
          credentials: LOCAL_CREDENTIALS,
          endpoints: { dynamodb: endpoints.dynamodb },
        },
        logger: new Logger({ serviceName: 'user-api-e2e', logLevel: 'SILENT' }),
      },
    );
    server = await new Promise<Server>((resolveServer) => {
      const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
        resolveServer(started as Server),
      ) as Server;
    });
    shortApi = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    reauthContext = await browser.newContext({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC' });
    // The page's CSP lets it reach only the configured user API, so its requests are forwarded.
    await reauthContext.route(`${endpoints.userApi}/**`, async (route) => {
      const url = route.request().url().replace(endpoints.userApi, shortApi);
      await route.fulfill({ response: await route.fetch({ url }) });
    });
    reauthPage = await reauthContext.newPage();
    reauthPage.setDefaultTimeout(15_000);
    reauthPage.on('pageerror', (error) => reauthErrors.push(error.message));
  });

  afterAll(async () => {
    await reauthContext?.close();
    await new Promise((closed) => server?.close(closed));
  });

  it('asks to sign in again, with the email filled in, then creates the key with the name typed before', async () => {
    const owner = await signUpAndSignIn('reauth');
    const listKeys = async () => {
      const response = await fetch(`${shortApi}/keys`, {
        headers: { authorization: `Bearer ${owner.idToken}` },
      });
      return ((await response.json()) as { keys: Array<{ name: string }> }).keys.map((key) => key.name);
    };
    await reauthPage.goto(endpoints.web);
    await reauthPage.getByRole('button', { name: 'Sign in' }).waitFor();
    await reauthPage.getByLabel('Email').fill(owner.email);
    await reauthPage.getByLabel('Password', { exact: true }).fill(owner.password);
    const signedInAt = Date.now();
    await reauthPage.getByRole('button', { name: 'Sign in' }).click();
    await reauthPage.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();

    // Later than the window allows (auth_time is whole seconds), the owner names a key and asks.
    await new Promise((wait) => setTimeout(wait, Math.max(0, signedInAt + MAX_AGE_MS + 2_000 - Date.now())));
    await reauthPage.getByLabel('Name (optional)').fill('after-a-while');
    await reauthPage.getByRole('button', { name: 'Create key' }).click();
    const dialog = reauthPage.getByRole('dialog', { name: 'Sign in again to continue' });
    await dialog.waitFor();
    expect(await dialog.getByTestId('reauth-message').textContent()).toContain('sign in again');
    // Refused, so nothing was minted, and the session goes on: no sign-in form yet.
    expect(await listKeys()).toEqual(['default']);
    expect(await reauthPage.getByLabel('Name (optional)').inputValue()).toBe('after-a-while');

    await dialog.getByRole('button', { name: 'Sign in again' }).click();
    await reauthPage.getByRole('button', { name: 'Sign in' }).waitFor();
    expect(await reauthPage.getByTestId('sign-in-notice').textContent()).toContain('create your key');
    // The email is filled in and the password has the focus.
    await expect.poll(() => reauthPage.getByLabel('Email').inputValue(), POLL).toBe(owner.email);
    await expect
      .poll(() => reauthPage.evaluate(() => document.activeElement?.getAttribute('name')), POLL)
      .toBe('password');
    await reauthPage.keyboard.type(owner.password);
    await reauthPage.keyboard.press('Enter');

    // Signed in again: the key is created, once, under the name typed before.
    await reauthPage.getByRole('heading', { level: 1, name: 'API keys' }).waitFor();
    await expect
      .poll(() => reauthPage.locator('#secret-title').textContent(), POLL)
      .toContain('after-a-while');
    expect(await reauthPage.getByTestId('secret-value').inputValue()).toMatch(/^tg_/);
    expect((await listKeys()).sort()).toEqual(['after-a-while', 'default']);
    expect(await reauthPage.getByLabel('Name (optional)').inputValue()).toBe('');
    await screenshot(reauthPage, 'reauthenticated-desktop');
    expect(reauthErrors).toEqual([]);
  });
});
