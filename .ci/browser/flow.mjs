// Drives headless Chromium through a cross-site single-page app and prints one JSON report
// (step name -> what happened) for the Rust test that started the service to judge.
// Environment: SERVICE (the service's base URL), PAGE (an allowed origin serving page.html),
// FOREIGN (an origin not allowed, serving the same page), CHROMIUM (the executable).
import { chromium } from 'playwright-core';

const { SERVICE, PAGE, FOREIGN } = process.env;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const report = {};
// A hung step must not hide what the steps before it saw.
const watchdog = setTimeout(() => {
  process.stdout.write(JSON.stringify({ ...report, timed_out: true }) + '\n');
  process.exit(1);
}, 90_000);

const browser = await chromium.launch({ executablePath, headless: true, timeout: 60_000 });
try {
  const context = await browser.newContext();
  context.setDefaultTimeout(30_000);
  // The cookie's path is /api/auth: ask for the cookies a refresh would carry.
  const refreshCookie = async () => (await context.cookies(SERVICE + '/api/auth/refresh'))
    .find((cookie) => cookie.name === 'refresh_token') ?? null;

  const spa = await context.newPage();
  await spa.goto(PAGE + '/');
  const call = (name, ...args) => spa.evaluate(
    ([name, args]) => window.spa[name](...args), [name, args]);

  report.signup = await call('signup', SERVICE, 'alice');
  report.cookie = await refreshCookie();
  const access = report.signup.body?.access_token;
  report.me = await call('me', SERVICE, access);
  report.refresh = await call('refresh', SERVICE);
  report.me_after_refresh = await call('me', SERVICE, report.refresh.body?.access_token);
  report.logout = await call('logout', SERVICE);
  report.cookie_after_logout = await refreshCookie();
  report.refresh_after_logout = await call('refresh', SERVICE);

  // A second user signs in on the SPA; then a hostile page in the same browser tries to use
  // (spend or end) that session through the cookie the browser holds.
  report.bob = await call('signup', SERVICE, 'bob');
  const foreign = await context.newPage();
  // What went over the wire, from the browser's network log: the answer's status and the
  // headers the browser really sent (the cookie and Origin are added below the page's reach).
  const wire = new Map();
  const cdp = await context.newCDPSession(foreign);
  await cdp.send('Network.enable');
  const entry = (id) => wire.get(id) ?? wire.set(id, {}).get(id);
  cdp.on('Network.requestWillBeSentExtraInfo', (event) => { entry(event.requestId).headers = event.headers; });
  cdp.on('Network.responseReceived', (event) => {
    Object.assign(entry(event.requestId), { url: event.response.url, status: event.response.status });
  });
  await foreign.goto(FOREIGN + '/');
  report.foreign_cors_refresh = await foreign.evaluate(
    (service) => window.hostile.corsRefresh(service), SERVICE);
  for (const [step, path] of [
    ['foreign_no_cors_refresh', '/api/auth/refresh'],
    ['foreign_no_cors_logout', '/api/auth/logout'],
  ]) {
    wire.clear();
    await foreign.evaluate(([service, path]) => window.hostile.noCors(service, path), [SERVICE, path]);
    let seen;
    for (let tries = 0; tries < 100 && !(seen?.status && seen?.headers); tries += 1) {
      seen = [...wire.values()].find((request) => request.url === SERVICE + path);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const header = (name) => Object.entries(seen?.headers ?? {})
      .find(([key]) => key.toLowerCase() === name)?.[1] ?? null;
    report[step] = {
      status: seen?.status ?? null,
      origin: header('origin'),
      cookie_sent: (header('cookie') ?? '').includes('refresh_token='),
    };
  }
  report.refresh_after_foreign = await call('refresh', SERVICE);
} finally {
  await browser.close();
}
clearTimeout(watchdog);
process.stdout.write(JSON.stringify(report) + '\n');
