import { readFile } from 'node:fs/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endpoints,
  exampleApi,
  signInAdmin,
  signUpAndSignIn,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { DESKTOP, launchChromium, PHONE, screenshot } from './browser';

/**
 * The usage page as an account owner uses it, in Debian's Chromium against `npm start`'s stack:
 * usage on two keys split by key, largest first; hours instead of days; the account's time zone
 * changed and kept; a CSV download holding what the page shows; and a phone's width.
 */

const POLL = { timeout: 20_000, interval: 250 };

let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
let owner: TestUser;
const secrets: Record<'alpha' | 'beta', string> = { alpha: '', beta: '' };
const keyIds: Record<'alpha' | 'beta', string> = { alpha: '', beta: '' };

async function callKeyApi(key: string): Promise<number> {
  const response = await fetch(endpoints().keyApi, { method: 'POST', headers: { 'x-api-key': key } });
  await response.body?.cancel();
  return response.status;
}

async function createKey(name: 'alpha' | 'beta'): Promise<void> {
  const created = await userApi(owner.idToken, 'POST', '/keys', { name });
  expect(created.status).toBe(201);
  const body = created.body as { id: string; key: string };
  keyIds[name] = body.id;
  secrets[name] = body.key;
}

const granularityRadio = (name: 'Hour' | 'Day' | 'Month') =>
  page.getByTestId('usage-granularity').getByRole('radio', { name, exact: true });

/** The main chart's cells as the page draws them (the refusals' chart is another card). */
async function chartCells(): Promise<Array<{ start: string; count: number }>> {
  return page.locator('.chart-card [data-testid="usage-chart"] .bar').evaluateAll((bars) =>
    bars.map((bar) => ({
      start: bar.getAttribute('data-start') ?? '',
      count: Number(bar.getAttribute('data-count')),
    })),
  );
}

/** The per-key table's rows, top to bottom: key id and count. */
async function keyRows(): Promise<Array<{ keyId: string; count: string }>> {
  return page.locator('tr.key-usage-row').evaluateAll((rows) =>
    rows.map((row) => ({
      keyId: row.getAttribute('data-key-id') ?? '',
      count: row.querySelector('[data-testid="key-usage-count"]')?.textContent?.trim() ?? '',
    })),
  );
}

/** Whether the page is wider than the window (scrolls sideways), and which axis labels overlap. */
async function layoutProblems(): Promise<{ overflow: number; overlaps: string[] }> {
  return page.evaluate(() => {
    const overflow = document.documentElement.scrollWidth - document.documentElement.clientWidth;
    const overlaps: string[] = [];
    const charts = Array.from(
      document.querySelectorAll('[data-testid="usage-chart"], [data-testid="refusals-chart"]'),
    );
    for (const chart of charts) {
      const boxes = Array.from(chart.querySelectorAll('.x-label')).map((label) => ({
        text: label.textContent?.trim() ?? '',
        box: label.getBoundingClientRect(),
      }));
      const chartBox = chart.getBoundingClientRect();
      for (let i = 0; i < boxes.length; i++) {
        const a = boxes[i];
        if (!a) continue;
        if (a.box.left < chartBox.left - 0.5 || a.box.right > chartBox.right + 0.5)
          overlaps.push(`${a.text} outside`);
        const b = boxes[i + 1];
        if (b && a.box.right > b.box.left) overlaps.push(`${a.text} / ${b.text}`);
      }
    }
    return { overflow, overlaps };
  });
}

beforeAll(async () => {
  owner = await signUpAndSignIn('usage-page');
  // GET /me provisions the account, as the page's first visit would.
  expect((await userApi(owner.idToken, 'GET', '/me')).status).toBe(200);
  await createKey('alpha');
  await createKey('beta');
  for (let i = 0; i < 3; i++) expect(await callKeyApi(secrets.alpha)).toBe(200);
  for (let i = 0; i < 2; i++) expect(await callKeyApi(secrets.beta)).toBe(200);

  browser = await launchChromium();
  context = await browser.newContext({
    viewport: DESKTOP,
    locale: 'en-GB',
    timezoneId: 'UTC',
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close();
});

describe('the usage page', () => {
  it('splits the usage by key, largest first, with the right totals', async () => {
    await page.goto(`${endpoints().web}/#/usage`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(owner.email);
    await page.getByLabel('Password', { exact: true }).fill(owner.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Usage' }).waitFor();

    await expect.poll(() => page.getByTestId('usage-total').textContent(), POLL).toBe('5');
    await expect.poll(keyRows, POLL).toEqual([
      { keyId: keyIds.alpha, count: '3' },
      { keyId: keyIds.beta, count: '2' },
    ]);
    // The key that was never used is not a row; the footer is the window's total.
    expect(await page.getByTestId('key-usage-total').textContent()).toBe('5');
    const table = page.getByRole('table', { name: /Requests by key/ });
    expect(await table.locator('tbody tr').first().textContent()).toContain('alpha');
    // The account's zone, by default the deployment's: UTC on this stack.
    expect(await page.getByLabel('Time zone').inputValue()).toBe('UTC');

    // Coloured by key, today's bar is stacked from the same two numbers.
    await page.getByTestId('usage-split').getByRole('radio', { name: 'Key', exact: true }).check();
    const today = new Date().toISOString().slice(0, 10);
    const bar = page.locator(`.chart-card .bar[data-date="${today}"]`);
    await expect
      .poll(() => bar.locator(`[data-series="${keyIds.alpha}"]`).getAttribute('data-count'), POLL)
      .toBe('3');
    expect(await bar.locator(`[data-series="${keyIds.beta}"]`).getAttribute('data-count')).toBe('2');
    await screenshot(page, 'usage-keys-desktop');
  });

  it('switches to hours: one cell per hour of the last two days, adding up to the same total', async () => {
    await granularityRadio('Hour').check();
    await expect
      .poll(
        () => page.locator('.chart-card [data-testid="usage-chart"]').getAttribute('data-granularity'),
        POLL,
      )
      .toBe('hour');
    await expect.poll(async () => (await chartCells()).length, POLL).toBe(48);
    const cells = await chartCells();
    // Consecutive whole hours in UTC, zeros included, ending with today's last hour.
    for (const [i, cell] of cells.entries()) {
      expect(cell.start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:00:00Z$/);
      if (i > 0) expect(Date.parse(cell.start) - Date.parse(cells[i - 1]?.start ?? '')).toBe(3_600_000);
    }
    expect(cells.at(-1)?.start).toBe(`${new Date().toISOString().slice(0, 10)}T23:00:00Z`);
    expect(cells.reduce((sum, c) => sum + c.count, 0)).toBe(5);
    // The requests were made a moment ago: in this hour or, across its turn, the one before.
    const thisHour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    for (const cell of cells.filter((c) => c.count > 0)) {
      expect(thisHour - Date.parse(cell.start)).toBeLessThanOrEqual(3_600_000);
    }
    expect(await page.getByText('Routes are counted per UTC day').count()).toBe(1);
  });

  it('changes the time zone, says it is saved, and keeps it after a reload', async () => {
    await page.getByLabel('Time zone').selectOption('Asia/Tokyo');
    await expect
      .poll(() => page.getByTestId('usage-zone-note').textContent(), POLL)
      .toContain('UTC+09:00 · saved for your account');
    // The cells are Tokyo's hours now, and still hold the five requests.
    await expect.poll(async () => (await chartCells())[0]?.start ?? '', POLL).toMatch(/T00:00:00\+09:00$/);
    expect((await chartCells()).reduce((sum, c) => sum + c.count, 0)).toBe(5);
    const me = await userApi(owner.idToken, 'GET', '/me');
    expect((me.body as { timeZone?: string }).timeZone).toBe('Asia/Tokyo');

    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Usage' }).waitFor();
    await expect.poll(() => page.getByLabel('Time zone').inputValue(), POLL).toBe('Asia/Tokyo');
    await expect.poll(() => page.getByTestId('usage-total').textContent(), POLL).toBe('5');
    expect(await page.locator('.stat-note').nth(1).textContent()).toContain('Asia/Tokyo');
  });

  it('downloads the CSV of what the chart and the key table show', async () => {
    // Per hour again (a reload starts on days), in Tokyo.
    await granularityRadio('Hour').check();
    await expect.poll(async () => (await chartCells()).length, POLL).toBe(48);
    await expect.poll(async () => (await keyRows()).length, POLL).toBe(2);
    const shownCells = await chartCells();
    const shownKeys = await keyRows();

    const downloaded = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download CSV' }).click();
    const download = await downloaded;
    const todayInTokyo = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Tokyo' }).format(new Date());
    const yesterday = new Date(Date.parse(`${todayInTokyo}T00:00:00Z`) - 86_400_000)
      .toISOString()
      .slice(0, 10);
    expect(download.suggestedFilename()).toBe(`usage-${yesterday}-${todayInTokyo}.csv`);
    const csv = await readFile(await download.path(), 'utf8');

    const [header, ...lines] = csv.trim().split(/\r?\n/);
    const columns = (header ?? '').split(',');
    expect(columns.slice(0, 4)).toEqual(['keyId', 'name', 'start', 'count']);
    const rows = lines.map((line) => {
      const fields = line.split(',');
      return { keyId: fields[0] ?? '', start: fields[2] ?? '', count: Number(fields[3]) };
    });
    // Every key of the account, every cell of the window: the chart's cells, the table's totals.
    const byStart = new Map<string, number>();
    const byKey = new Map<string, number>();
    for (const row of rows) {
      byStart.set(row.start, (byStart.get(row.start) ?? 0) + row.count);
      byKey.set(row.keyId, (byKey.get(row.keyId) ?? 0) + row.count);
    }
    expect([...byStart.keys()]).toEqual(shownCells.map((c) => c.start));
    expect(shownCells.map((c) => byStart.get(c.start))).toEqual(shownCells.map((c) => c.count));
    for (const shown of shownKeys) expect(String(byKey.get(shown.keyId))).toBe(shown.count);
    expect(byKey.get(keyIds.alpha)).toBe(3);
    expect(byKey.get(keyIds.beta)).toBe(2);
    expect([...byKey.values()].reduce((sum, n) => sum + n, 0)).toBe(5);
  });

  it('fits a 390 px phone: no sideways scrolling, no axis label on another', async () => {
    await page.setViewportSize(PHONE);
    for (const granularity of ['Hour', 'Day', 'Month'] as const) {
      await granularityRadio(granularity).check();
      await expect
        .poll(
          () => page.locator('.chart-card [data-testid="usage-chart"]').getAttribute('data-granularity'),
          POLL,
        )
        .toBe(granularity.toLowerCase());
      await expect.poll(() => page.getByTestId('usage-total').textContent(), POLL).toBe('5');
      expect(await layoutProblems()).toEqual({ overflow: 0, overlaps: [] });
      expect(await page.locator('.chart-card .x-label').count()).toBeGreaterThan(1);
    }
    // The densest window the page offers: 31 days of hours.
    await granularityRadio('Hour').check();
    await page.getByLabel('Range').selectOption({ label: 'Last 31 days' });
    await expect.poll(async () => (await chartCells()).length, POLL).toBe(31 * 24);
    expect(await layoutProblems()).toEqual({ overflow: 0, overlaps: [] });
    await screenshot(page, 'usage-hours-390');
    await page.setViewportSize(DESKTOP);
  });

  it('shows the refusals after a 429, apart from billed usage and marked not billed', async () => {
    // The SaaS owner's admin puts the account on a plan of 2 requests a minute per key.
    const admin = await signInAdmin();
    const planId = `usage-page-${Date.now()}`;
    const plan = { name: 'Two a minute', rateLimit: { requests: 2, perSeconds: 60, scope: 'key' } };
    expect((await userApi(admin.idToken, 'PUT', `/admin/plans/${planId}`, plan)).status).toBe(201);
    const accountId = ((await userApi(owner.idToken, 'GET', '/me')).body as { userId: string }).userId;
    const assigned = await userApi(admin.idToken, 'PUT', `/admin/accounts/${accountId}/plan`, { planId });
    expect(assigned.status).toBe(200);

    // The owner's API answers as before until the gate holds the key to the new plan (its key
    // cache's fresh window); then the third request of the minute is refused.
    let accepted = 0;
    let refused = 0;
    await expect
      .poll(
        async () => {
          const { status } = await exampleApi('/v1/rates/EUR', { key: secrets.alpha });
          if (status === 200) accepted++;
          if (status === 429) refused++;
          return status;
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe(429);
    for (let i = 0; i < 2; i++) {
      expect((await exampleApi('/v1/rates/EUR', { key: secrets.alpha })).status).toBe(429);
      refused++;
    }

    const card = page.getByTestId('refusals-card');
    const rateLimited = card.locator('[data-reason="rate_limited"] [data-testid="refusal-count"]');
    await expect.poll(() => rateLimited.textContent(), POLL).toBe(String(refused));
    expect(await card.getByTestId('refusals-not-billed').textContent()).toBe('not billed');
    expect(
      await card.locator('[data-reason="quota_exceeded"] [data-testid="refusal-count"]').textContent(),
    ).toBe('0');
    // Billed usage is the accepted requests only; the refused ones are the key's, in their own column.
    await expect.poll(() => page.getByTestId('usage-total').textContent(), POLL).toBe(String(5 + accepted));
    const alphaRow = page.locator(`tr.key-usage-row[data-key-id="${keyIds.alpha}"]`);
    expect(await alphaRow.getByTestId('key-usage-count').textContent()).toBe(String(3 + accepted));
    expect(await alphaRow.getByTestId('key-usage-refused').textContent()).toBe(String(refused));
    const refusedCells = await page
      .locator('[data-testid="refusals-chart"] .bar')
      .evaluateAll((bars) => bars.map((bar) => Number(bar.getAttribute('data-count'))));
    expect(refusedCells.reduce((sum, n) => sum + n, 0)).toBe(refused);

    // The CSV carries them in columns of their own, beside the billed count.
    const downloaded = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download CSV' }).click();
    const [header, ...lines] = (await readFile(await (await downloaded).path(), 'utf8'))
      .trim()
      .split(/\r?\n/);
    expect(header).toBe('keyId,name,start,count,rate_limited,quota_exceeded,account_suspended');
    const column = (name: string) => (header ?? '').split(',').indexOf(name);
    const sum = (name: string) =>
      lines.reduce((total, line) => total + Number(line.split(',')[column(name)]), 0);
    expect(sum('rate_limited')).toBe(refused);
    expect(sum('count')).toBe(5 + accepted);
    await screenshot(page, 'usage-refusals-desktop');
  });

  it('threw no errors in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
