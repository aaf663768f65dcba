// Drives the console in Debian's Chromium through playwright-core: signed out to the login
// page, a wrong password, signing in, the dashboard with htmx loaded under the CSP, the dark
// theme, signing out. Prints one JSON line of what it saw; exits non-zero on the first
// surprise. Run by tests/api/console.rs, which starts the server and reads the line.
//
//   CERTMINT_URL  CERTMINT_PASSWORD  CERTMINT_PLAYWRIGHT  CERTMINT_CHROMIUM  [CERTMINT_SCREENSHOTS]

import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('CERTMINT_URL');
const require = createRequire(import.meta.url);
const { chromium } = require(env('CERTMINT_PLAYWRIGHT'));

const expect = (ok, what) => {
  if (!ok) throw new Error(what);
};

const browser = await chromium.launch({
  executablePath: env('CERTMINT_CHROMIUM'),
  headless: true,
  // The test server's certificate is issued by its own fresh CA.
  args: ['--ignore-certificate-errors', '--no-sandbox'],
});
const seen = { problems: [] };
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  // A script or style the CSP blocked, a failed load, an exception: all are failures.
  page.on('console', (m) => {
    if (m.type() === 'error') seen.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request: ${r.url()} ${r.failure()?.errorText}`));

  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname === '/login', `signed out, / went to ${page.url()}`);
  seen.next = new URL(page.url()).searchParams.get('next');
  const shots = process.env.CERTMINT_SCREENSHOTS;
  const shoot = async (name) => {
    if (!shots) return;
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: path.join(shots, `${name}-${scheme}.png`), fullPage: true });
    }
    await page.emulateMedia({ colorScheme: 'light' });
  };
  await shoot('login');

  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState();
  seen.wrong_password = (await page.getByRole('alert').textContent())?.trim();
  // That answer is a 401, which the browser logs as a failed load: expected, once.
  const refused = seen.problems.filter((p) => p.includes('status of 401'));
  expect(refused.length === 1, `the wrong password gave ${refused.length} 401s`);
  seen.problems = seen.problems.filter((p) => !p.includes('status of 401'));

  await page.getByLabel('Password').fill(env('CERTMINT_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  seen.after_login = new URL(page.url()).pathname;
  seen.htmx = await page.evaluate(() => typeof window.htmx === 'object' && typeof window.htmx.version === 'string' ? window.htmx.version : null);
  seen.totals = await page.locator('.totals dt').allTextContents();

  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  seen.light = await background();
  await page.emulateMedia({ colorScheme: 'dark' });
  seen.dark = await background();

  // The keyboard reaches the skip link first, and it leads to the main content.
  await page.keyboard.press('Tab');
  seen.first_tab = await page.evaluate(() => document.activeElement?.textContent?.trim());

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
  seen.after_logout = new URL(page.url()).pathname;
  await page.goto(`${base}/`);
  seen.after_logout_root = new URL(page.url()).pathname;
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
