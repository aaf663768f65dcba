// Passkeys in Debian's Chromium with its virtual authenticator (DevTools protocol, WebAuthn
// domain: CTAP2, internal transport, resident keys, user verification): sign in with the
// password, add a passkey on the account page, sign out, sign in with the passkey from the
// login page. Prints one JSON line of what it saw; exits non-zero on the first surprise. Run by
// tests/api/console_browser.rs, which starts the server on http://localhost (browsers refuse
// passkeys for IP addresses) and reads the line.
//
//   CERTMINT_URL  CERTMINT_PASSWORD  CERTMINT_PLAYWRIGHT  CERTMINT_CHROMIUM

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
  args: ['--no-sandbox'],
});
const seen = { problems: [] };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') seen.problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request: ${r.url()} ${r.failure()?.errorText}`));

  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(env('CERTMINT_PASSWORD'));
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();

  await page.goto(`${base}/account`);
  await page.locator('#passkey_name').fill('Virtual authenticator');
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await page.locator('#passkeys').getByText('Virtual authenticator').waitFor();
  seen.listed = await page.locator('#passkeys tbody td:first-child').allTextContents();
  const stored = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  seen.resident = stored.credentials.map((c) => c.isResidentCredential);

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.getByRole('heading', { level: 2, name: 'Sign in' }).waitFor();
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  seen.after_passkey = new URL(page.url()).pathname;
  seen.session = await page.evaluate(async () => {
    const response = await fetch('/api/v2/auth/verify', { headers: { Accept: 'application/json' } });
    return (await response.json()).data;
  });
  const used = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  seen.sign_counts = used.credentials.map((c) => c.signCount);
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
