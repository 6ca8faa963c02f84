/**
 * Ops in the Temporal UI, end to end: token workflows on a real dev server, found through the Web UI
 * in headless Chromium by workflow ID and by search-attribute query, with their state on the page.
 * Takes the docs' screenshots (test/helpers/chromium.ts says where they go).
 */
import path from 'node:path';
import { Client, Connection, type WorkflowExecutionInfo } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Page } from 'playwright-core';
import { loadConfig, taskQueueOf } from '../src/config';
import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import type { TokenRow } from '../src/registry/adapter';
import { cancelTokenExpiryWorkflow, startTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import type { createActivities } from '../activities/tokenExpiry';
import { startDevServer, type DevServer } from '../scripts/devtools/devServer';
import { launchChromium, SCREENSHOTS as DOCS, type Chromium } from './helpers/chromium';
import { workflowBundle } from './helpers/temporal';
import { TEST_INSTANCE } from './helpers/database';

// Starting the dev server, bundling the workflows and launching Chromium take a while.
jest.setTimeout(120_000);

// The columns an operator would pick in the UI's column chooser, seeded where the UI keeps that choice
// (its localStorage key as of UI 2.54): who the token is, where it stands, when the next email goes out.
const WORKFLOW_COLUMNS = [
  'Status',
  'Workflow ID',
  'TokenId',
  'ExpiryState',
  'NextReminderAt',
  'TokenExpiresAt',
  'ReminderFailure',
];

const DAY_MS = 24 * 60 * 60 * 1000;
type Activities = ReturnType<typeof createActivities>;
const WAITING = ['101', '102', '104'];
const REVOKED = '103';
// Created 10 days ago, expiring in 3: its 7d warning is already due when it starts, so it sends that first.
const LATE = '104';
const lateToken = tokenRow(LATE, 3, 10);

let server: DevServer;
let connection: Connection;
let client: Client;
let browser: Chromium;

beforeAll(async () => {
  server = await startDevServer();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
  await startTokens();
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await connection?.close();
  await server?.stop();
});

test('finds a waiting token by its workflow ID and sees it Running', async () => {
  await withPage('by-id', async (page) => {
    await openWorkflowList(page, `WorkflowId="${tokenExpiryWorkflowId('101', TEST_INSTANCE)}"`);
    await expectRows(page, { 'token-expiry-test-101': 'Running' });
  });
});

test('finds tokens by search-attribute queries, and shows when their next reminder fires', async () => {
  await withPage('by-search-attributes', async (page) => {
    await openWorkflowList(page, `TokenId="101" AND ExpiryState="waiting"`);
    await expectRows(page, { 'token-expiry-test-101': 'Running' });

    await openWorkflowList(page, `TokenId="${REVOKED}" AND ExpiryState="cancelled"`);
    await expectRows(page, { [tokenExpiryWorkflowId(REVOKED, TEST_INSTANCE)]: 'Canceled' });

    // The picture in docs/operations.md: every token still waiting, with its next reminder and expiry.
    await openWorkflowList(page, 'ExpiryState="waiting"');
    await expectRows(page, { 'token-expiry-test-101': 'Running', 'token-expiry-test-102': 'Running', 'token-expiry-test-104': 'Running' });
    await page.getByRole('columnheader', { name: WORKFLOW_COLUMNS[0], exact: true }).waitFor();
    const headers = (await page.getByRole('columnheader').allTextContents()).map((text) => text.trim());
    expect(headers).toEqual(expect.arrayContaining(WORKFLOW_COLUMNS));
    // Each row shows its token, its state, and the next reminder and the expiry as times to come.
    for (const id of WAITING) {
      const cells = await rowOf(page, tokenExpiryWorkflowId(id, TEST_INSTANCE)).innerText();
      expect(cells.replace(/\s+/g, ' ')).toMatch(new RegExp(`token-expiry-test-${id} ${id} waiting \\S+ \\w+ from now \\S+ \\w+ from now`));
    }
    await page.screenshot({ path: path.join(DOCS, 'temporal-ui.png') });
  });
});

test("opens a waiting token's workflow and sees its state and search attributes", async () => {
  await withPage('workflow-page', async (page) => {
    await openWorkflowList(page, 'TokenId="102"');
    await page.getByRole('link', { name: 'token-expiry-test-102', exact: true }).click();
    await page.waitForURL(/\/workflows\/token-expiry-test-102\//);
    await expectWorkflowHeader(page, 'token-expiry-test-102', 'Running');

    await page.getByTestId('search-attributes-tab').click();
    await page.getByRole('main').getByText('"TokenId"', { exact: true }).first().waitFor();
    const attributes = await page.getByRole('main').innerText();
    for (const text of ['"TokenId"', '"102"', '"ExpiryState"', '"waiting"', '"NextReminderAt"', '"TokenExpiresAt"']) {
      expect(attributes).toContain(text);
    }
    await page.screenshot({ path: path.join(DOCS, 'temporal-ui-workflow.png') });
  });
});

test("shows a token's run in words: which token, expiry and plan, and what each timer and activity is for", async () => {
  const seconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const expiresAt = lateToken.expiredAt!.getTime();
  await withPage('user-metadata', async (page) => {
    await page.goto(`${server.uiUrl}/namespaces/default/workflows/${tokenExpiryWorkflowId(LATE, TEST_INSTANCE)}`);
    await expectWorkflowHeader(page, tokenExpiryWorkflowId(LATE, TEST_INSTANCE), 'Running');
    // The timeline: the timer waiting for the next reminder, and the send of the late one, in words.
    const main = page.getByRole('main');
    await main.getByText(`1d warning, due ${seconds(expiresAt - DAY_MS)}`).first().waitFor();
    await main.getByText('send 7d warning').first().waitFor();
    await page.screenshot({ path: path.join(DOCS, 'temporal-ui-timeline.png') });

    // The workflow's summary and details: the UI renders their markdown in frames of their own.
    await page.getByText('User Metadata', { exact: true }).click();
    await expectTextInAFrame(page, `token ${LATE} expires ${seconds(expiresAt)}; plan 7d, 1d, expired`);
    await expectTextInAFrame(page, `expired notice, due ${seconds(expiresAt)}`);
    await page.screenshot({ path: path.join(DOCS, 'temporal-ui-metadata.png') });
  });
});

test("opens a revoked token's workflow and sees it Canceled", async () => {
  await withPage('revoked', async (page) => {
    await openWorkflowList(page, `TokenId="${REVOKED}"`);
    await page.getByRole('link', { name: tokenExpiryWorkflowId(REVOKED, TEST_INSTANCE), exact: true }).click();
    await expectWorkflowHeader(page, tokenExpiryWorkflowId(REVOKED, TEST_INSTANCE), 'Canceled');
  });
});

/**
 * Two tokens waiting for their first reminder, one revoked, one that sends a late reminder and waits for
 * the next. A worker runs just long enough for the workflows to upsert their state; its activities are
 * stubs (the send is "suppressed"), since the UI is what this test looks at.
 */
async function startTokens(): Promise<void> {
  // No spread: the timeline is checked against the nominal due times (test/tokenExpiry.spread.test.ts checks the spread).
  const settings = loadConfig({ TEMPORAL_TASK_QUEUE: `token-expiry-ui-test-${process.pid}`, TOKEN_EXPIRY_INSTANCE: TEST_INSTANCE, EXPIRY_SPREAD: '0' });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  try {
    const worker = await Worker.create({
      connection: workerConnection,
      taskQueue: taskQueueOf(settings),
      workflowBundle: await workflowBundle(),
      activities: stubActivities,
    });
    await worker.runUntil(async () => {
      await startTokenExpiryWorkflow(client, tokenRow('101', 30), settings);
      await startTokenExpiryWorkflow(client, tokenRow('102', 90), settings);
      const revoked = tokenRow(REVOKED, 60);
      await startTokenExpiryWorkflow(client, revoked, settings);
      await startTokenExpiryWorkflow(client, lateToken, settings);
      expect(await cancelTokenExpiryWorkflow(client, revoked, TEST_INSTANCE)).toBe(true);
      await client.workflow
        .getHandle(tokenExpiryWorkflowId(REVOKED, TEST_INSTANCE))
        .result()
        .catch(() => undefined);
      // The UI reads the visibility store, which trails the workflows by a moment.
      await waitForVisibility('ExpiryState="waiting" AND NextReminderAt IS NOT NULL', (found) =>
        sameIds(found, WAITING.map((id) => tokenExpiryWorkflowId(id, TEST_INSTANCE))),
      );
      await waitForVisibility(`TokenId="${LATE}" AND NextReminderAt > "${new Date().toISOString()}"`, (found) => found.length === 1);
      await waitForVisibility(
        'ExpiryState="cancelled"',
        (found) => sameIds(found, [tokenExpiryWorkflowId(REVOKED, TEST_INSTANCE)]) && found[0]?.status.name === 'CANCELLED',
      );
    });
  } finally {
    await workerConnection.close();
  }
}

const stubActivities: Pick<Activities, 'sendReminder' | 'sendReminderFirstTry' | 'recordOutcomes'> = {
  sendReminder: async () => ({ outcome: 'suppressed', reason: 'temporal-ui-test' }),
  // As under a send cap: the queued activity, which the UI shows with its summary, does the send.
  sendReminderFirstTry: async () => null,
  recordOutcomes: async () => [],
};

function tokenRow(id: string, expiresInDays: number, createdDaysAgo = 0): TokenRow {
  const createdAt = new Date(Date.now() - createdDaysAgo * DAY_MS);
  return {
    id,
    userId: '1',
    name: `ci-publish-${id}`,
    createdAt,
    lastUsedAt: null,
    revoked: false,
    crateScopes: null,
    endpointScopes: null,
    expiredAt: new Date(Date.now() + expiresInDays * DAY_MS),
    expiryWorkflowStartedAt: null,
  };
}

async function waitForVisibility(
  query: string,
  done: (found: WorkflowExecutionInfo[]) => boolean,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found: WorkflowExecutionInfo[] = [];
    for await (const execution of client.workflow.list({ query })) found.push(execution);
    if (done(found)) return;
    if (Date.now() > deadline) {
      const seen = found.map((e) => `${e.workflowId} ${e.status.name}`).join(', ');
      throw new Error(`visibility: ${query} still gives [${seen}] after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function sameIds(found: WorkflowExecutionInfo[], ids: string[]): boolean {
  const got = found.map((e) => e.workflowId).sort();
  return got.length === ids.length && [...ids].sort().every((id, i) => got[i] === id);
}

/** Chromium with the UI's column choice seeded where the UI keeps it. */
async function launchBrowser(): Promise<Chromium> {
  const chromium = await launchChromium('temporal-ui');
  await chromium.context.addInitScript((columns: string[]) => {
    // Runs in the page; this project's tsconfig has no DOM types.
    const { localStorage } = globalThis as unknown as { localStorage: { setItem(key: string, value: string): void } };
    localStorage.setItem(
      'namespace-workflow-table-columns',
      JSON.stringify({ default: columns.map((label, i) => ({ label, pinned: i < 2 })) }),
    );
    localStorage.setItem('relativeTime', 'true');
  }, WORKFLOW_COLUMNS);
  return chromium;
}

function withPage(name: string, fn: (page: Page) => Promise<void>): Promise<void> {
  return browser.withPage(name, fn);
}

async function openWorkflowList(page: Page, query: string): Promise<void> {
  await page.goto(`${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
}

function rowOf(page: Page, workflowId: string) {
  return page
    .getByTestId('workflows-summary-configurable-table-row')
    .filter({ has: page.getByRole('link', { name: workflowId, exact: true }) });
}

/** Once the list has loaded: exactly these workflows, each with this status on its badge. */
async function expectRows(page: Page, expected: Record<string, string>): Promise<void> {
  const rows = page.getByTestId('workflows-summary-configurable-table-row');
  for (const workflowId of Object.keys(expected)) await rowOf(page, workflowId).waitFor();
  const shown: Record<string, string> = {};
  for (const row of await rows.all()) {
    const id = (await row.getByRole('link').first().textContent())?.trim() ?? '';
    shown[id] = (await row.getByTestId('execution-status').textContent())?.trim() ?? '';
  }
  expect(shown).toEqual(expected);
}

/** The page's header (not the event history below it) names this workflow and shows this status. */
async function expectWorkflowHeader(page: Page, workflowId: string, status: string): Promise<void> {
  const header = page.locator('header', { has: page.getByTestId('workflow-id-heading') });
  await header.getByTestId('execution-status').waitFor();
  expect((await header.getByTestId('workflow-id-heading').textContent())?.trim()).toMatch(new RegExp(`^${workflowId}\\b`));
  expect((await header.getByTestId('execution-status').textContent())?.trim()).toBe(status);
}

async function expectTextInAFrame(page: Page, text: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of page.frames()) {
      if ((await frame.getByText(text).count().catch(() => 0)) > 0) return;
    }
    if (Date.now() > deadline) throw new Error(`no frame of the page shows "${text}" after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
