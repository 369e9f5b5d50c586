// Drives Debian's Chromium through the dashboard with playwright-core (tools/), as a
// person would: sign in with GitHub (the fake), open a repository, pause its queue, see
// the change. Also checks the pages by keyboard and their landmarks and labels, and takes
// screenshots (desktop and phone). Prints one JSON line; exits non-zero on any failure.
//
//   NODE_PATH=tools/node_modules node tests/e2e/browser/dashboard.cjs URL REPO SHOTS_DIR
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const [url, repo, shots] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function audit(page) {
  // Landmarks, one h1, every control named, every chart described.
  return page.evaluate(() => {
    const problems = [];
    if (document.querySelectorAll('main').length !== 1) problems.push('not one <main>');
    if (!document.querySelector('header[role=banner], header')) problems.push('no header');
    if (document.querySelectorAll('h1').length !== 1) problems.push('not one <h1>');
    if (!document.documentElement.lang) problems.push('no lang');
    for (const el of document.querySelectorAll('button, a[href], input:not([type=hidden])')) {
      const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
      if (!name) problems.push(`unnamed ${el.tagName}`);
    }
    for (const svg of document.querySelectorAll('svg.chart')) {
      if (svg.getAttribute('role') !== 'img' || !svg.getAttribute('aria-labelledby')) {
        problems.push('chart without role/label');
      }
    }
    return problems;
  });
}

(async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const seen = {};
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(url + '/');
    // Keyboard: the first Tab reaches the skip link, Enter moves to the content.
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement.textContent.trim());
    check(focused === 'Skip to content', `first Tab focused ${JSON.stringify(focused)}`);
    await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
    await page.waitForURL(url + '/');
    await page.getByRole('heading', { level: 1, name: 'Repositories' }).waitFor();
    seen.signedInAs = (await page.locator('.who strong').textContent()).trim();
    seen.repositories = await page.locator('table.repos tbody tr').count();
    check((await audit(page)).length === 0, `index: ${await audit(page)}`);
    await page.screenshot({ path: path.join(shots, 'dashboard-repositories.png'), fullPage: true });

    await page.getByRole('link', { name: repo }).click();
    await page.getByRole('heading', { level: 1, name: repo }).waitFor();
    seen.queued = await page.locator('table.queue tbody tr').count();
    check(seen.queued > 0, 'no queued pull request shown');
    check(await page.locator('svg.chart').count() === 2, 'the two charts are missing');
    const problems = await audit(page);
    check(problems.length === 0, `repository: ${problems}`);
    await page.screenshot({ path: path.join(shots, 'dashboard-repository.png'), fullPage: true });

    // Pause by keyboard: focus the button and press Enter.
    await page.getByRole('button', { name: 'Pause merging' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Resume merging' }).waitFor();
    seen.stateAfterPause = (await page.locator('#queue-state').textContent()).trim();
    check(seen.stateAfterPause.startsWith('Paused'), `state: ${seen.stateAfterPause}`);

    // A phone: the same session, a narrow screen; no horizontal scrolling.
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 },
      storageState: await context.storageState(),
      isMobile: true,
      hasTouch: true,
    });
    const small = await phone.newPage();
    await small.goto(url + '/repos/' + repo);
    await small.getByRole('heading', { level: 1, name: repo }).waitFor();
    seen.phoneOverflow = await small.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(seen.phoneOverflow <= 0, `the phone page scrolls sideways by ${seen.phoneOverflow}px`);
    await small.screenshot({ path: path.join(shots, 'dashboard-phone.png'), fullPage: false });
    console.log(JSON.stringify({ ok: true, ...seen }));
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.log(JSON.stringify({ ok: false, error: String(error && error.stack || error) }));
  process.exit(1);
});
