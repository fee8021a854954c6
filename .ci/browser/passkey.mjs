// Registers a passkey in headless Chromium's virtual authenticator (DevTools WebAuthn domain)
// on .ci/browser/passkey.html and logs in with it, passwordless and usernameless, against
// the running service; prints one JSON report (step name -> what happened) for the Rust test.
// Environment: SERVICE (the service's base URL), PAGE (the page's origin, allowed by the
// service's CORS and WebAuthn origins), CHROMIUM (the executable).
import { chromium } from 'playwright-core';

const { SERVICE, PAGE } = process.env;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';
const report = {};
const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ ...report, timed_out: true }) + '\n');
  process.exit(1);
}, 90_000);

const browser = await chromium.launch({ executablePath, headless: true, timeout: 60_000 });
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  // A platform authenticator that keeps discoverable credentials and verifies its user
  // (as a PIN or fingerprint would), answering without a person.
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal',
      hasResidentKey: true, hasUserVerification: true, isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await page.goto(PAGE + '/');
  const call = (name, ...args) => page.evaluate(
    ([name, args]) => window.passkeys[name](...args).catch((error) => ({ error: String(error) })),
    [name, args]);

  report.signup = await call('signup', SERVICE, 'alice', PASSWORD);
  report.register = await call('register', SERVICE, report.signup.body?.access_token, PASSWORD, 'Chromium');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  report.credentials = credentials.map((c) => ({
    resident: c.isResidentCredential, rpId: c.rpId, signCount: c.signCount,
    userHandle: c.userHandle ?? null,
  }));
  await context.clearCookies();
  report.passwordless = await call('passwordless', SERVICE);
  report.me = await call('me', SERVICE, report.passwordless.body?.access_token);
  report.passwordless_again = await call('passwordless', SERVICE);
  report.password_step = await call('login', SERVICE, 'alice', PASSWORD);
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  report.sign_count_after = after.credentials[0]?.signCount ?? null;
} finally {
  await browser.close();
}
clearTimeout(watchdog);
process.stdout.write(JSON.stringify(report) + '\n');
