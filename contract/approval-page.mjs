// An approver at jit's approval pages in a real browser: npm `playwright-core`
// (pinned in package-lock.json) driving Debian's chromium (/usr/bin/chromium,
// never a downloaded browser), headless, with a phone's viewport.
//
// Usage: node approval-page.mjs SCENARIO.json
// SCENARIO: {"base": URL, "open": URL, "deny": ID, "comment": TEXT,
//            "reason": TEXT, "screenshots": DIR,
//            "signIn": {"token": T} | {"idp": {"username": U, "password": P}}}
// Opens OPEN (a request's page, as a Slack button or a mail links it)
// signed out, signs in (with the token form, or through the identity
// provider's login page), approves with the comment;
// opens /requests/DENY, presses Deny with no comment, then with the reason;
// opens /requests. Prints one JSON object of what each page showed.

import fs from 'node:fs';
import { chromium } from 'playwright-core';

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // This machine's network is closed: no background traffic to Google.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const seen = {};
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const look = async (name) => {
    seen[name] = {
      url: page.url(),
      text: await page.locator('body').innerText(),
      buttons: await page.locator('button').allInnerTexts(),
      // Wider than the phone's screen means sideways scrolling.
      scrollWidth: await page.evaluate(() => document.documentElement.scrollWidth),
      clientWidth: await page.evaluate(() => document.documentElement.clientWidth),
    };
    if (scenario.screenshots) await page.screenshot({ path: `${scenario.screenshots}/${name}.png`, fullPage: true });
  };

  await page.goto(scenario.open);
  await look('signedOut');
  if (scenario.signIn.token) {
    await page.fill('#token', scenario.signIn.token);
    await page.click('text=Sign in with a token');
  } else {
    await page.click('text=Sign in with your identity provider');
    await page.fill('input[name=username]', scenario.signIn.idp.username);
    await page.fill('input[name=password]', scenario.signIn.idp.password);
    await page.click('button');
  }
  await page.waitForURL(scenario.open);
  await look('signedIn');
  seen.cookies = (await context.cookies()).map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));

  await page.fill('textarea[name=text]', scenario.comment);
  await page.click('button.approve');
  await page.waitForURL('**/requests/*?said=approved');
  await look('approved');

  await page.goto(`${scenario.base}/requests/${scenario.deny}`);
  await page.click('button.deny');
  await look('denyWithoutReason');
  await page.fill('textarea[name=text]', scenario.reason);
  await page.click('button.deny');
  await page.waitForURL('**/requests/*?said=denied');
  await look('denied');

  await page.goto(`${scenario.base}/requests`);
  await look('list');
} catch (e) {
  seen.error = String(e);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(seen)}\n`);
