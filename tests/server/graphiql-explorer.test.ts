// GraphiQL for people browsing models: the page opens with a multi-task tab and a registry tab, and a query built
// only by clicking fields in the explorer runs and shows its answer. A real Chromium (playwright-core) on a real
// server; no request leaves loopback. POLYHEAD_GRAPHIQL_SCREENSHOT=docs/graphiql-explorer.png also saves a picture.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { buildSchema, parse, validate } from 'graphql';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { packageRoot } from '../../src/paths.js';
import { graphiqlOptions } from '../../src/server/graphiql.js';
import { tempDir, writeFixtureBundle } from '../helpers/bundle-fixture.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = existsSync(chromiumPath) || process.env.CI ? false : `no Chromium at ${chromiumPath} (apt-get install chromium; .ci/run does)`;
const screenshotPath = process.env.POLYHEAD_GRAPHIQL_SCREENSHOT;

let server: TestServer;
let browser: Browser;

before(async () => {
  if (skip) return;
  server = await startTestServer({ models: [] });
  const imported = await server.admin('mutation($path: String!) { importBundle(path: $path) { created } }', { path: writeFixtureBundle(tempDir(), { name: 'browsable' }) });
  assert.equal(imported.errors, undefined);
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test('the default tabs hold queries that are valid against schema.graphql', () => {
  const schema = buildSchema(readFileSync(join(packageRoot, 'schema.graphql'), 'utf8'));
  const tabs = graphiqlOptions('/graphql').defaultTabs ?? [];
  assert.equal(tabs.length, 2);
  for (const tab of tabs) assert.deepEqual(validate(schema, parse(tab.query!)).map(String), []);
  assert.match(tabs[0]!.query!, /analyze\([^)]*\) \{[\s\S]*sentiment[\s\S]*entities/, 'the first tab asks several tasks at once');
  assert.match(tabs[1]!.query!, /models\(/, 'the second tab browses the registry');
});

/** Opens GraphiQL and records every request for anything but the server itself. */
async function openGraphiQL(): Promise<{ page: Page; foreign: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  const foreign: string[] = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (!['127.0.0.1', 'localhost'].includes(url.hostname) && !['data:', 'blob:'].includes(url.protocol)) foreign.push(request.url());
  });
  await page.goto(server.url);
  await page.locator('.graphiql-query-editor').first().waitFor({ timeout: 30_000 });
  return { page, foreign };
}

/**
 * Clicks a field in the explorer, as a person would: its row in `fields` (the operation, or an expanded field's
 * children) is the one with the field's class; the click selects it and, for an object, opens its own fields.
 */
async function clickField(fields: Locator, name: string): Promise<Locator> {
  const row = fields.locator(`:scope > .graphiql-explorer-${name}`);
  await row.locator(`[data-field-name="${name}"]`).first().click();
  // An expanded row holds the field's own line, then a block with its children.
  return row.locator(':scope > div').nth(1);
}

/** The response pane's text (the editor renders spaces as no-break spaces). */
async function responseText(page: Page): Promise<string> {
  return (await page.locator('.graphiql-response').innerText()).replace(/\u00a0/g, ' ');
}

test('opens with a multi-task tab and a registry tab; the registry tab runs', { skip, timeout: 90_000 }, async () => {
  const { page, foreign } = await openGraphiQL();
  const tabs = page.locator('.graphiql-tab');
  await tabs.nth(1).waitFor();
  assert.deepEqual(await tabs.allInnerTexts(), ['MultiTask', 'Registry']);
  await page.getByRole('tab', { name: 'Registry' }).click();
  await page.locator('.graphiql-query-editor').filter({ hasText: 'query Registry' }).first().waitFor();
  await page.locator('.graphiql-execute-button').click();
  await page.locator('.graphiql-response').getByText('"browsable"').waitFor({ timeout: 30_000 });
  assert.match(await responseText(page), /"totalCount": 1,/);
  assert.deepEqual(foreign, []);
  await page.close();
});

test('a query built by clicking in the explorer runs and its answer is on the page', { skip, timeout: 90_000 }, async () => {
  const { page, foreign } = await openGraphiQL();
  // A new tab starts empty; the explorer builds the whole operation.
  await page.locator('.graphiql-tab-add').click();
  await page.getByRole('button', { name: 'Show GraphiQL Explorer' }).click();
  const operation = page.locator('.graphiql-explorer-root [id^="query-"]').first();
  await operation.waitFor();

  const models = await clickField(operation, 'models');
  const node = await clickField(await clickField(models, 'edges'), 'node');
  await clickField(node, 'name');
  const version = await clickField(node, 'version');
  await clickField(version, 'version');
  const heads = await clickField(version, 'heads');
  await clickField(heads, 'name');
  await clickField(heads, 'task');

  // The editor now holds what the clicks built, and nothing was typed.
  const editor = page.locator('.graphiql-query-editor').first();
  await editor.getByText('task').waitFor();
  const built = (await editor.innerText()).replace(/\s+/g, ' ');
  assert.match(built, /models \{ edges \{ node \{ name version \{ version heads \{ name task \} \} \} \} \}/);

  // GraphiQL takes in an edit after a short delay; the tab's title (the operation the explorer named) shows it has.
  await page.getByRole('tab', { name: 'MyQuery' }).waitFor();
  await page.locator('.graphiql-execute-button').click();
  await page.locator('.graphiql-response').getByText('"browsable"').waitFor({ timeout: 30_000 });
  const answer = await responseText(page);
  assert.match(answer, /"sentiment"/);
  assert.match(answer, /"CLASSIFICATION"/);
  assert.deepEqual(foreign, [], 'GraphiQL must not fetch anything from outside the server');
  if (screenshotPath) await page.screenshot({ path: join(packageRoot, screenshotPath) });
  await page.close();
});
