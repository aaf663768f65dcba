// Opens /api/docs in Debian's Chromium through playwright-core, signed out: Swagger UI must
// load under the page's CSP, fetch the OpenAPI document and render its operations. It renders
// the sections near the viewport only, so the page is opened at the certificates tag (a deep
// link to an operation would log a deprecation error: operation ids hold `_`). Prints one
// JSON line of what it saw; exits non-zero on the first surprise. Run by
// tests/api/console_browser.rs.
//
//   CERTMINT_URL  CERTMINT_PLAYWRIGHT  CERTMINT_CHROMIUM

import { createRequire } from 'node:module';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('CERTMINT_URL');
const require = createRequire(import.meta.url);
const { chromium } = require(env('CERTMINT_PLAYWRIGHT'));

const browser = await chromium.launch({
  executablePath: env('CERTMINT_CHROMIUM'),
  headless: true,
  // The test server's certificate is issued by its own fresh CA.
  args: ['--ignore-certificate-errors', '--no-sandbox'],
});
const seen = { problems: [], fetched: [] };
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  // A script or style the CSP blocked, a failed load, an exception: all are failures.
  page.on('console', (m) => {
    if (m.type() === 'error') seen.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) seen.problems.push(`response: ${r.status()} ${r.url()}`);
    seen.fetched.push(new URL(r.url()).pathname);
  });

  await page.goto(`${base}/api/docs#/certificates`);
  const list = page.locator('.opblock-get', {
    has: page.locator('.opblock-summary-path[data-path="/api/v2/certificates"]'),
  });
  await list.first().waitFor({ timeout: 30000 });
  seen.title = (await page.locator('.info .title').first().textContent())?.trim();
  seen.summary = (await list.first().locator('.opblock-summary-description').textContent())?.trim();
  // Swagger UI renders a tag's operations a few at a time: wait for the tenth before reading
  // them (the test then asks for ten or more), so that a slow render is not read half done.
  await page
    .locator('.opblock-summary-path[data-path^="/api/v2/certificates"]')
    .nth(9)
    .waitFor({ timeout: 30000 })
    .catch(() => {});
  seen.certificate_paths = await page.locator('.opblock-summary-path').allTextContents();
  seen.certificate_paths = seen.certificate_paths.filter((p) => p.startsWith('/api/v2/certificates'));
  // Opening the operation shows its parameters, rendered from the document.
  await list.first().locator('.opblock-summary').first().click();
  await list.first().locator('.parameters').first().waitFor({ timeout: 10000 });
  seen.parameters = await list.first().locator('.parameters .parameter__name').allTextContents();
  seen.parameters = seen.parameters.map((p) => p.replace(/\s+/g, ' ').trim());
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
