// The console's whole path in Debian's Chromium through playwright-core, as an operator
// takes it: signing in, creating an intermediate CA under the root, issuing a certificate
// from a template with it, downloading the PKCS#12 and the CA's files, a viewer who sees no
// Revoke button and whose forged revocation is refused, revoking with keyCompromise, the
// revoked list, the audit log's record, signing out. Run by tests/api/console_browser.rs,
// which opens the files with openssl and asks the OCSP responder between the two phases.
// Prints one JSON line of what it saw; exits non-zero on the first surprise.
//
//   CERTMINT_URL  CERTMINT_PASSWORD  CERTMINT_PLAYWRIGHT  CERTMINT_CHROMIUM
//   CERTMINT_VIEWER        the viewer's username (same password as the admin)
//   CERTMINT_FILES         the directory the downloads and the viewer's session go to
//   CERTMINT_PHASE         `flow`, or `expired` for the second run, after the server's clock
//                          moved past the viewer's session: it must ask for a login again
//   CERTMINT_CERTIFICATE   (phase `expired`) the certificate page to come back to

import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('CERTMINT_URL');
const password = env('CERTMINT_PASSWORD');
const files = env('CERTMINT_FILES');
const phase = env('CERTMINT_PHASE');
const require = createRequire(import.meta.url);
const { chromium } = require(env('CERTMINT_PLAYWRIGHT'));

const expect = (ok, what) => {
  if (!ok) throw new Error(what);
};
const pathname = (page) => new URL(page.url()).pathname;
/// The text of the first `<dd>` after a `<dt>` reading `label`, within `section` (`#id`).
const field = (page, section, label) =>
  page.locator(section).evaluate((root, label) => {
    const dt = [...root.querySelectorAll('dt')].find((d) => d.textContent.trim() === label);
    return dt?.nextElementSibling?.textContent?.trim() ?? null;
  }, label);
const viewerState = path.join(files, 'viewer-state.json');

const browser = await chromium.launch({
  executablePath: env('CERTMINT_CHROMIUM'),
  headless: true,
  // The test server's certificate is issued by its own fresh CA.
  args: ['--ignore-certificate-errors', '--no-sandbox'],
});
const seen = { problems: [] };

/// A context whose page reports what the CSP blocked, what failed to load and what threw.
const open = async (options = {}) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, ...options });
  // A step that waits this long has failed; the whole run takes seconds.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') seen.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request: ${r.url()} ${r.failure()?.errorText}`));
  return { context, page };
};

/// Takes out of the problems the failed loads a step expected, exactly `count` of them.
const expected = (status, count, what) => {
  const matching = seen.problems.filter((p) => p.includes(`status of ${status}`));
  expect(matching.length === count, `${what}: ${matching.length} answers ${status}, not ${count}: ${seen.problems}`);
  seen.problems = seen.problems.filter((p) => !p.includes(`status of ${status}`));
};

const signIn = async (page, username) => {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
};

/// Clicks (through `click`) and saves the file the answer carries as `name` in the files
/// directory; the name the server gave it.
const download = async (page, click, name) => {
  // The browser ends the page's load of an answer it saves as a file: expected, once.
  const aborted = page.waitForEvent('requestfailed', (r) => r.failure()?.errorText === 'net::ERR_ABORTED');
  const [file] = await Promise.all([page.waitForEvent('download'), click()]);
  expect(!(await file.failure()), `the download of ${name} failed: ${await file.failure()}`);
  await file.saveAs(path.join(files, name));
  const request = await aborted;
  expect(request.url() === file.url(), `${request.url()} aborted, not the download ${file.url()}`);
  const at = seen.problems.indexOf(`request: ${file.url()} net::ERR_ABORTED`);
  expect(at >= 0, `no aborted load for the download of ${name}: ${seen.problems}`);
  seen.problems.splice(at, 1);
  return file.suggestedFilename();
};

try {
  if (phase === 'flow') {
    const { context, page } = await open();

    // Signed out, the console asks for a login and comes back.
    await page.goto(`${base}/cas/new`);
    expect(pathname(page) === '/login', `signed out, /cas/new went to ${page.url()}`);
    await signIn(page, 'admin');
    await page.getByRole('heading', { level: 1, name: 'Create a CA' }).waitFor();
    seen.after_login = pathname(page);

    // An intermediate CA under the root.
    await page.getByLabel('Intermediate, signed by:', { exact: true }).check();
    await page.getByLabel('Parent CA', { exact: true }).selectOption({ label: 'certmint Root CA' });
    await page.getByLabel('Common name', { exact: true }).fill('Browser Test Intermediate CA');
    await page.getByLabel('Organization', { exact: true }).fill('certmint tests');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { level: 1, name: 'Browser Test Intermediate CA' }).waitFor();
    seen.ca_path = pathname(page);
    seen.ca_type = (await page.locator('.heading .badge').textContent())?.trim();
    seen.ca_issuer = await field(page, 'section[aria-labelledby="fields"]', 'Issuer');
    seen.ca_points_to_ocsp = await field(page, 'section[aria-labelledby="pointers"]', 'OCSP');
    seen.ca_answers_ocsp = await field(page, 'section[aria-labelledby="ocsp"]', 'Answers for this CA');
    seen.ca_file = await download(page, () => page.getByRole('link', { name: 'PEM', exact: true }).click(), 'ca.pem');
    seen.chain_file = await download(page, () => page.getByRole('link', { name: 'chain (PEM)' }).click(), 'chain.pem');
    // The tree shows it below its parent.
    await page.getByRole('link', { name: 'Certificate authorities' }).first().click();
    await page.getByRole('heading', { level: 1, name: 'Certificate authorities' }).waitFor();
    seen.tree = await page.locator('.tree li').evaluateAll((items) =>
      items.map((li) => `${li.className}: ${li.querySelector('a')?.textContent?.trim()}`));

    // A certificate from the TLS Server template, issued by the new CA.
    await page.goto(`${base}/certificates/new`);
    await page.getByLabel('Template', { exact: true }).selectOption({ label: 'TLS Server' });
    await page.getByLabel('Issuing CA', { exact: true }).selectOption({ label: 'Browser Test Intermediate CA' });
    await page.getByLabel('Common name', { exact: true }).fill('shop.browser.test');
    await page.getByLabel(/^Subject alternative names/).fill('shop.browser.test\nwww.shop.browser.test\n192.0.2.7');
    await page.getByRole('button', { name: 'Issue' }).click();
    await page.getByRole('heading', { level: 1, name: 'shop.browser.test' }).waitFor();
    seen.certificate_path = pathname(page);
    const certificate = seen.certificate_path;
    seen.status_issued = (await page.locator('#status').textContent())?.trim();
    seen.sans = await page.locator('.fields .plain li').allTextContents();
    seen.certificate_issuer = await field(page, 'section[aria-labelledby="fields"]', 'Issuer');
    seen.certificate_eku = await field(page, 'section[aria-labelledby="fields"]', 'Extended key usage');
    seen.admin_revoke_buttons = await page.getByRole('button', { name: 'Revoke' }).count();

    // The PKCS#12 with its key, through the export form.
    await page.getByLabel('Format', { exact: true }).selectOption({ label: 'PKCS#12 with key' });
    await page.getByLabel('PKCS#12 password', { exact: true }).fill('browser-export-pass');
    seen.p12_file = await download(page, () => page.getByRole('button', { name: 'Download' }).click(), 'certificate.p12');
    expect(pathname(page) === certificate, `after the download the page is ${page.url()}`);

    // A viewer reads the certificate, has no Revoke button, and a revocation forged with the
    // viewer's own valid token is refused, while a POST the role may make with that same token
    // passes.
    {
      const viewer = await open();
      await viewer.page.goto(`${base}${certificate}`);
      await signIn(viewer.page, env('CERTMINT_VIEWER'));
      await viewer.page.getByRole('heading', { level: 1, name: 'shop.browser.test' }).waitFor();
      seen.viewer_path = pathname(viewer.page);
      seen.viewer_role = (await viewer.page.locator('.role').textContent())?.trim();
      seen.viewer_download_buttons = await viewer.page.getByRole('button', { name: 'Download' }).count();
      seen.viewer_revoke_buttons = await viewer.page.getByRole('button', { name: 'Revoke' }).count();
      seen.viewer_renew_buttons = await viewer.page.getByRole('button', { name: 'Renew' }).count();
      seen.viewer_pkcs12 = await viewer.page.locator('#format option[value="pkcs12"]').count();
      const token = await viewer.page.locator('input[name="csrf_token"]').first().inputValue();
      expect(token.length > 0, 'no CSRF token on the viewer page');
      const logged = viewer.page.waitForEvent('console', (m) => m.text().includes('status of 403'));
      seen.forged = await viewer.page.evaluate(async ({ url, token }) => {
        const post = async (to, fields) => {
          const response = await fetch(to, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
          return { status: response.status, type: response.headers.get('content-type'), body: await response.text() };
        };
        return {
          revoke: await post(`${url}/revoke`, { csrf_token: token, reason: 'keyCompromise' }),
          export: await post(`${url}/export`, { csrf_token: token, format: 'pem' }),
        };
      }, { url: certificate, token });
      await logged;
      expected(403, 1, 'the forged revocation');
      await viewer.page.reload();
      seen.viewer_status_after_forgery = (await viewer.page.locator('#status').textContent())?.trim();
      await viewer.context.storageState({ path: viewerState });
      await viewer.context.close();
    }

    // Revoked with keyCompromise through the form.
    await page.reload();
    seen.status_before_revoke = (await page.locator('#status').textContent())?.trim();
    await page.getByLabel('Reason', { exact: true }).selectOption('keyCompromise');
    await page.getByLabel('Comment', { exact: true }).fill('key left on a shared drive');
    await page.getByRole('button', { name: 'Revoke' }).click();
    await page.locator('#status', { hasText: 'revoked' }).waitFor();
    seen.after_revoke = pathname(page);
    seen.revoked_warning = (await page.locator('.warning').textContent())?.trim();
    seen.revoke_buttons_after = await page.getByRole('button', { name: 'Revoke' }).count();

    // The list, filtered to revoked ones through htmx, shows it.
    await page.goto(`${base}/certificates`);
    await page.getByLabel('Status', { exact: true }).selectOption('revoked');
    await page.waitForURL((url) => url.searchParams.get('status') === 'revoked');
    await page.locator('#results .muted', { hasText: /^\s*1 certificate\s*$/ }).waitFor();
    // Each row: the certificate's name (its link) and its status badge.
    seen.revoked_list = await page.locator('#results tbody tr').evaluateAll((rows) =>
      rows.map((r) => [r.querySelector('a[href^="/certificates/"]'), r.querySelector('.badge')]
        .map((cell) => cell?.textContent.trim() ?? '').join(' | ')));
    await page.goto(`${base}/certificates?status=active`);
    seen.active_list = await page.locator('#results tbody tr a[href^="/certificates/"]').allTextContents();

    // The audit log shows the revocation: the action filter through htmx, then the row.
    await page.goto(`${base}/audit`);
    await page.getByLabel('Action', { exact: true }).selectOption('certificate_revoked');
    await page.waitForURL((url) => url.searchParams.get('action') === 'certificate_revoked');
    await page.locator('#results .muted', { hasText: /^\s*1 record\s*$/ }).waitFor();
    seen.audit_rows = await page.locator('#results tbody tr').evaluateAll((rows) =>
      rows.map((r) => [...r.querySelectorAll('td')].slice(2).map((td) => td.textContent.trim())));

    // Signing out ends the session: the console asks for a login again.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
    seen.after_logout = pathname(page);
    await page.goto(`${base}/`);
    seen.after_logout_root = pathname(page);
    await context.close();
  } else if (phase === 'expired') {
    // The viewer's session saved in the first run has expired on the server's clock.
    const certificate = env('CERTMINT_CERTIFICATE');
    const { context, page } = await open({ storageState: viewerState });
    await page.goto(`${base}${certificate}`);
    seen.expired_path = pathname(page);
    seen.expired_next = new URL(page.url()).searchParams.get('next');
    await signIn(page, env('CERTMINT_VIEWER'));
    await page.getByRole('heading', { level: 1, name: 'shop.browser.test' }).waitFor();
    seen.signed_in_again = pathname(page);
    seen.status = (await page.locator('#status').textContent())?.trim();
    await context.close();
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
