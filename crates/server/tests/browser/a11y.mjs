// Checks the console's pages with axe-core in Debian's Chromium through playwright-core, in
// the light and the dark colour scheme on a desktop screen and on a phone's: the login page
// signed out and after a wrong password, then each page of CERTMINT_PAGES as the admin.
// Prints one JSON line: for each page and view, the HTTP status, the h1, how many rules
// passed and the violations
// (rule, impact, nodes). Run by tests/api/console_browser.rs, which judges the violations.
//
//   CERTMINT_URL  CERTMINT_PASSWORD  CERTMINT_PLAYWRIGHT  CERTMINT_CHROMIUM  CERTMINT_AXE
//   CERTMINT_PAGES   JSON: [{"path": "/cas", "shot": "cas", "submit": "Issue", "status": 422},
//                    …]; `shot` names the screenshots (with CERTMINT_SCREENSHOTS), `submit` a
//                    button to press first, to check the page that answers with `status` (a
//                    form sent empty shows its errors, an action its outcome)
//   [CERTMINT_SCREENSHOTS]

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('CERTMINT_URL');
const axeSource = fs.readFileSync(env('CERTMINT_AXE'), 'utf8');
const pages = JSON.parse(env('CERTMINT_PAGES'));
const shots = process.env.CERTMINT_SCREENSHOTS;
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
const seen = { problems: [], audits: [] };
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  // A step that waits this long has failed; the whole run takes seconds.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') seen.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request: ${r.url()} ${r.failure()?.errorText}`));

  /// A refusal the step asked for is logged by the browser as a failed load: exactly one.
  const refusal = (status, what) => {
    if (status < 400) return;
    const matching = seen.problems.filter((p) => p.includes(`status of ${status}`));
    expect(matching.length === 1, `${what}: ${matching.length} answers ${status}: ${seen.problems}`);
    seen.problems = seen.problems.filter((p) => !p.includes(`status of ${status}`));
  };

  // Each page in both schemes on a desktop screen, and on a phone's (where wide tables
  // scroll), light.
  const views = [
    { scheme: 'light', width: 1280 },
    { scheme: 'dark', width: 1280 },
    { scheme: 'light', width: 390 },
  ];

  /// axe on the page as it is, in each view; screenshots of the desktop ones when `shot`
  /// names them.
  const audit = async (name, status, shot) => {
    // The CSP allows no inline script; DevTools' evaluation is not the page's and passes it.
    await page.evaluate(axeSource);
    for (const { scheme, width } of views) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize({ width, height: 800 });
      const result = await page.evaluate(() =>
        window.axe.run(document, { resultTypes: ['violations'] }).then((r) => ({
          passes: r.passes.length,
          // Whether the contrast rule looked at the page at all, in this scheme's colours.
          contrast: [...r.passes, ...r.violations, ...r.incomplete].some((x) => x.id === 'color-contrast'),
          background: getComputedStyle(document.body).backgroundColor,
          violations: r.violations.map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1).join(' ').trim()}`),
          })),
        })));
      const h1 = await page.locator('h1').allTextContents();
      seen.audits.push({ page: name, scheme, width, status, h1: h1.map((t) => t.trim()), ...result });
      if (shots && shot && width === 1280) {
        await page.screenshot({ path: path.join(shots, `${shot}-${scheme}.png`), fullPage: true });
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });
  };

  // Signed out: the login page, and the same after a wrong password (a 401).
  let response = await page.goto(`${base}/login`);
  await audit('/login', response.status(), null);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  let logged = page.waitForEvent('console', (m) => m.text().includes('status of 401'));
  [response] = await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  await logged;
  refusal(response.status(), 'the wrong password');
  await page.getByRole('alert').waitFor();
  await audit('/login (wrong password)', response.status(), null);
  await page.getByLabel('Password').fill(env('CERTMINT_PASSWORD'));
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign in' }).click()]);
  expect(new URL(page.url()).pathname === '/', `signing in went to ${page.url()}`);

  for (const entry of pages) {
    response = await page.goto(`${base}${entry.path}`);
    if (entry.submit) {
      const refused = entry.status >= 400;
      logged = refused && page.waitForEvent('console', (m) => m.text().includes(`status of ${entry.status}`));
      [response] = await Promise.all([
        page.waitForNavigation(),
        page.getByRole('button', { name: entry.submit, exact: true }).click(),
      ]);
      if (refused) {
        await logged;
        refusal(response.status(), `${entry.path}, ${entry.submit}`);
      }
    }
    await audit(entry.submit ? `${entry.path}, ${entry.submit}` : entry.path, response.status(), entry.shot);
  }
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
