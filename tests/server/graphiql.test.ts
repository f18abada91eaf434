// GraphiQL works offline: a real browser (Debian's Chromium through playwright-core) opens GET /graphql,
// runs a registry query and sees the answer. No request leaves loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(chromiumPath) || process.env.CI ? false : `no Chromium at ${chromiumPath} (apt-get install chromium; .ci/run does)`;

let server: TestServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  server = await startTestServer({ models: [] });
  await server.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: writeFixtureBundle(tempDir(), { name: 'browsable' }) });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test('GraphiQL loads from the server alone and runs a registry query', { skip, timeout: 90_000 }, async () => {
  const page = await browser.newPage();
  const foreign: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!['127.0.0.1', 'localhost'].includes(url.hostname) && !['data:', 'blob:'].includes(url.protocol)) foreign.push(request.url());
  });
  await page.goto(server.url);
  const editor = page.locator('.graphiql-query-editor').first();
  await editor.waitFor({ timeout: 30_000 });
  // Replace the example with our own query through the editor, as a user would type it.
  await editor.click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type('{ model(name: "browsable") { name versions { heads { name } } } }');
  // GraphiQL takes in an edit after a short delay; until then it would still send the default tab's operation
  // name (MultiTask). The tab's title follows the edit, so wait for it.
  await page.getByRole('tab', { name: '<untitled>' }).waitFor({ timeout: 30_000 });
  await page.locator('.graphiql-execute-button').click();
  await page.locator('.graphiql-response').getByText('"sentiment"').waitFor({ timeout: 30_000 });
  const response = await page.locator('.graphiql-response').innerText();
  assert.match(response, /"browsable"/);
  assert.deepEqual(foreign, [], 'GraphiQL must not fetch anything from outside the server');
});
