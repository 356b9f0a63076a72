// Drives paved's operator page in Debian's Chromium, as an operator would.
// browser_test.go starts paved between the simulators and runs this with:
//   PAVED_URL, OPERATOR_TOKEN, OPERATOR_NAME   where and as whom to sign in
//   RUNNING_RUN, QUEUED_RUN, OTHER_RUN         a running run, a run queued behind it
//                                              on its stack, and a run of another tenant
//   LOG_LINE                                   the line the Go test posts once this
//                                              prints READY_FOR_LOG
//   SCREENSHOT, SCREENSHOT_RUNS                where to save the screenshots (the run
//                                              page with its live log; the runs list)
//   CHROMIUM                                   the browser (default /usr/bin/chromium)
// It exits non-zero, saying why, at the first thing that is not as it should be.
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set`);
  }
  return v;
};
const base = env('PAVED_URL');
const token = env('OPERATOR_TOKEN');
const operator = env('OPERATOR_NAME');
const running = env('RUNNING_RUN');
const queued = env('QUEUED_RUN');
const other = env('OTHER_RUN');
const logLine = env('LOG_LINE');

// The CI machine is a busy 2-core box: wait long for things, but wait for
// things, never for time.
const timeout = 60_000;

function check(ok, what) {
  if (!ok) {
    throw new Error(what);
  }
}

const step = (what) => console.log(`step: ${what}`);

const rowIds = (page) => page.locator('#runs tbody tr[data-run]').evaluateAll((rows) => rows.map((r) => r.dataset.run));

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(timeout);
    page.setDefaultNavigationTimeout(timeout);
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') {
        console.log(`console error: ${msg.text()}`);
      }
    });

    step('a page without a session sends the browser to sign in');
    await page.goto(`${base}/ui/runs/${running}`);
    check(new URL(page.url()).pathname === '/ui/login', `landed on ${page.url()}, want the sign-in page`);
    check(!(await page.content()).includes(running), 'the sign-in page shows a run');

    step('a wrong token gets 401 and no data');
    await page.fill('#token', 'not-the-token');
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/ui/login'),
      page.click('button[type=submit]'),
    ]);
    check(refused.status() === 401, `wrong token answered ${refused.status()}, want 401`);
    await page.locator('.problem').waitFor();
    check((await page.locator('.problem').innerText()).includes('not valid'), 'no "not valid" message');
    const refusedHTML = await page.content();
    check(!refusedHTML.includes(running) && !refusedHTML.includes(queued) && (await page.locator('#runs').count()) === 0,
      'the 401 page shows runs');

    step('the right token signs in');
    await page.fill('#token', token);
    await Promise.all([page.waitForURL(`${base}/ui/`), page.click('button[type=submit]')]);
    await page.locator('header .name', { hasText: operator }).waitFor();
    const all = await rowIds(page);
    for (const id of [running, queued, other]) {
      check(all.includes(id), `run ${id} is not listed: ${all}`);
    }

    step('filters keep only matching runs');
    await page.fill('input[name=tenant]', 'acme');
    await page.fill('input[name=action]', 'add-s3-bucket');
    await Promise.all([page.waitForURL(/tenant=acme/), page.click('form.filters button[type=submit]')]);
    const filtered = await rowIds(page);
    check(filtered.includes(running) && filtered.includes(queued), `filtered rows ${filtered} lack the acme runs`);
    check(!filtered.includes(other), `filtered rows ${filtered} hold the other tenant's run`);
    const cells = await page.locator('#runs tbody tr[data-run]').evaluateAll((rows) =>
      rows.map((r) => [r.cells[1].innerText.trim(), r.cells[2].innerText.trim()]));
    check(cells.every(([action, tenant]) => action === 'add-s3-bucket' && tenant === 'acme'), `rows that do not match: ${JSON.stringify(cells)}`);
    await page.selectOption('select[name=state]', 'queued');
    await Promise.all([page.waitForURL(/state=queued/), page.click('form.filters button[type=submit]')]);
    const queuedOnly = await rowIds(page);
    check(queuedOnly.length === 1 && queuedOnly[0] === queued, `state=queued rows: ${queuedOnly}`);
    await page.click('a.clear');
    await page.waitForURL(`${base}/ui/`);

    step('the queue shows the stack line: the running run first, the queued one behind it');
    await page.click('nav a[href="/ui/queue"]');
    const line = await page.locator('section.stack[data-stack="acme-dev-checkout"] tr[data-run]').evaluateAll((rows) => rows.map((r) => r.dataset.run));
    check(line[0] === running && line[1] === queued, `acme-dev-checkout line: ${line}`);

    step('the running run: header, timeline, pipeline link, and a live log');
    await page.goto(`${base}/ui/runs/${running}`);
    await page.locator('#state .badge', { hasText: 'running' }).waitFor();
    check((await page.locator('#timeline li').count()) >= 2, 'the timeline has fewer than two events');
    const href = await page.locator('#pipeline a').getAttribute('href');
    check(/^https?:\/\//.test(href || ''), `pipeline link ${href}`);
    await page.locator('#log[data-live="open"]').waitFor();
    console.log('READY_FOR_LOG'); // the Go test posts LOG_LINE through the pipeline callback now
    await page.locator('#log .line .text').filter({ hasText: logLine }).waitFor();
    const texts = await page.locator('#log .line .text').allInnerTexts();
    check(texts.includes(logLine), `the live line is not in the log exactly: ${texts}`);
    if (process.env.SCREENSHOT) {
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    }

    step('cancel the queued run with its button');
    await page.goto(`${base}/ui/runs/${queued}`);
    await page.locator('#state .badge', { hasText: 'queued' }).waitFor();
    await Promise.all([page.waitForURL(`${base}/ui/runs/${queued}`), page.click('#cancel')]);
    await page.locator('#state .badge', { hasText: 'canceled' }).waitFor();
    await page.locator('#timeline li', { hasText: `canceled by operator:${operator}` }).waitFor();
    check((await page.locator('#cancel').count()) === 0, 'a canceled run still offers Cancel');

    step('the runs list shows the cancel');
    await page.goto(`${base}/ui/`);
    await page.locator(`#runs tr[data-run="${queued}"] .badge`, { hasText: 'canceled' }).waitFor();
    if (process.env.SCREENSHOT_RUNS) {
      await page.setViewportSize({ width: 1360, height: 520 }); // as tall as the table, no empty page below
      await page.screenshot({ path: process.env.SCREENSHOT_RUNS, fullPage: true });
    }
    await context.close();
  } finally {
    await browser.close();
  }
  console.log('OPERATOR_PAGE_OK');
}

main().catch((err) => {
  console.error(`operator page check failed: ${err.stack || err}`);
  process.exit(1);
});
