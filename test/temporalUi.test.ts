/**
 * Ops in the Temporal UI, end to end: token workflows on a real dev server, found through the Web UI
 * in headless Chromium by workflow ID and by search-attribute query, with their state on the page.
 * Takes the README's screenshots: into docs/ with UPDATE_SCREENSHOTS=1, else into .data/ (so a test run
 * leaves the tree clean).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowExecutionInfo } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { loadConfig } from '../src/config';
import { tokenExpiryWorkflowId } from '../src/tokenExpiry/contract';
import type { TokenRow } from '../src/registry/adapter';
import { cancelTokenExpiryWorkflow, startTokenExpiryWorkflow } from '../src/tokenExpiry/client';
import { startDevServer, type DevServer } from '../scripts/devtools/devServer';
import { workflowBundle } from './helpers/temporal';

// Starting the dev server, bundling the workflows and launching Chromium take a while.
jest.setTimeout(120_000);

const DOCS = path.resolve(__dirname, process.env.UPDATE_SCREENSHOTS === '1' ? '../docs' : '../.data');
const FAILURES = path.resolve(__dirname, '../.data');
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The network is closed: without these Chromium keeps trying to reach Google's services.
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
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
const WAITING = ['101', '102'];
const REVOKED = '103';

let server: DevServer;
let connection: Connection;
let client: Client;
let browser: BrowserContext;
let profileDir: string;

beforeAll(async () => {
  server = await startDevServer();
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection });
  await startTokens();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (profileDir) await rm(profileDir, { recursive: true, force: true });
  await connection?.close();
  await server?.stop();
});

test('finds a waiting token by its workflow ID and sees it Running', async () => {
  await withPage('by-id', async (page) => {
    await openWorkflowList(page, `WorkflowId="${tokenExpiryWorkflowId('101')}"`);
    await expectRows(page, { 'token-expiry-101': 'Running' });
  });
});

test('finds tokens by search-attribute queries, and shows when their next reminder fires', async () => {
  await withPage('by-search-attributes', async (page) => {
    await openWorkflowList(page, `TokenId="101" AND ExpiryState="waiting"`);
    await expectRows(page, { 'token-expiry-101': 'Running' });

    await openWorkflowList(page, `TokenId="${REVOKED}" AND ExpiryState="cancelled"`);
    await expectRows(page, { [`token-expiry-${REVOKED}`]: 'Canceled' });

    // The README's picture: every token still waiting, with its next reminder and expiry.
    await openWorkflowList(page, 'ExpiryState="waiting"');
    await expectRows(page, { 'token-expiry-101': 'Running', 'token-expiry-102': 'Running' });
    for (const column of WORKFLOW_COLUMNS) {
      await page.getByRole('columnheader', { name: column, exact: true }).waitFor();
    }
    await page.screenshot({ path: path.join(DOCS, 'temporal-ui.png') });
  });
});

test("opens a waiting token's workflow and sees its state and search attributes", async () => {
  await withPage('workflow-page', async (page) => {
    await openWorkflowList(page, 'TokenId="102"');
    await page.getByRole('link', { name: 'token-expiry-102', exact: true }).click();
    await page.waitForURL(/\/workflows\/token-expiry-102\//);
    await expectWorkflowHeader(page, 'token-expiry-102', 'Running');

    await page.getByTestId('search-attributes-tab').click();
    for (const text of ['"TokenId"', '"102"', '"ExpiryState"', '"waiting"', '"NextReminderAt"', '"TokenExpiresAt"']) {
      await page.getByRole('main').getByText(text, { exact: true }).first().waitFor();
    }
    await page.screenshot({ path: path.join(DOCS, 'temporal-ui-workflow.png') });
  });
});

test("opens a revoked token's workflow and sees it Canceled", async () => {
  await withPage('revoked', async (page) => {
    await openWorkflowList(page, `TokenId="${REVOKED}"`);
    await page.getByRole('link', { name: `token-expiry-${REVOKED}`, exact: true }).click();
    await expectWorkflowHeader(page, `token-expiry-${REVOKED}`, 'Canceled');
  });
});

/**
 * Two tokens waiting for their first reminder, one revoked. A worker runs just long enough for the
 * workflows to upsert their state; no reminder falls due for weeks, so its activities are stubs.
 */
async function startTokens(): Promise<void> {
  const settings = loadConfig({ TEMPORAL_TASK_QUEUE: `token-expiry-ui-test-${process.pid}` });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  try {
    const worker = await Worker.create({
      connection: workerConnection,
      taskQueue: settings.TEMPORAL_TASK_QUEUE,
      workflowBundle: await workflowBundle(),
      activities: { sendReminder: noActivities, recordOutcomes: noActivities },
    });
    await worker.runUntil(async () => {
      await startTokenExpiryWorkflow(client, tokenRow('101', 30), settings);
      await startTokenExpiryWorkflow(client, tokenRow('102', 90), settings);
      const revoked = tokenRow(REVOKED, 60);
      await startTokenExpiryWorkflow(client, revoked, settings);
      expect(await cancelTokenExpiryWorkflow(client, revoked, undefined)).toBe(true);
      await client.workflow
        .getHandle(tokenExpiryWorkflowId(REVOKED))
        .result()
        .catch(() => undefined);
      // The UI reads the visibility store, which trails the workflows by a moment.
      await waitForVisibility('ExpiryState="waiting" AND NextReminderAt IS NOT NULL', (found) =>
        sameIds(found, WAITING.map((id) => tokenExpiryWorkflowId(id))),
      );
      await waitForVisibility(
        'ExpiryState="cancelled"',
        (found) => sameIds(found, [tokenExpiryWorkflowId(REVOKED)]) && found[0]?.status.name === 'CANCELLED',
      );
    });
  } finally {
    await workerConnection.close();
  }
}

async function noActivities(): Promise<never> {
  throw ApplicationFailure.nonRetryable('the Temporal UI test runs no activities', 'NotInThisTest');
}

function tokenRow(id: string, expiresInDays: number): TokenRow {
  const createdAt = new Date();
  return {
    id,
    userId: '1',
    name: `ci-publish-${id}`,
    createdAt,
    lastUsedAt: null,
    revoked: false,
    crateScopes: null,
    endpointScopes: null,
    expiredAt: new Date(createdAt.getTime() + expiresInDays * DAY_MS),
    expiryNotificationAt: null,
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

async function launchChromium(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: run ./scripts/test (it installs Debian's chromium), ` +
        'or apt-get install chromium, or set CHROMIUM_PATH',
    );
  }
  profileDir = await mkdtemp(path.join(tmpdir(), 'token-expiry-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  context.setDefaultTimeout(30_000);
  // Everything the UI needs is on the dev server; anything else would only hang on the closed network.
  await context.route(
    (url) => url.hostname !== '127.0.0.1' && url.hostname !== 'localhost',
    (route) => route.abort(),
  );
  await context.addInitScript((columns: string[]) => {
    // Runs in the page; this project's tsconfig has no DOM types.
    const { localStorage } = globalThis as unknown as { localStorage: { setItem(key: string, value: string): void } };
    localStorage.setItem(
      'namespace-workflow-table-columns',
      JSON.stringify({ default: columns.map((label, i) => ({ label, pinned: i < 2 })) }),
    );
    localStorage.setItem('relativeTime', 'true');
  }, WORKFLOW_COLUMNS);
  await mkdir(DOCS, { recursive: true });
  return context;
}

/** A fresh page for one test; on failure its last state is saved to .data/ for whoever debugs it. */
async function withPage(name: string, fn: (page: Page) => Promise<void>): Promise<void> {
  const page = await browser.newPage();
  try {
    await fn(page);
  } catch (err) {
    await mkdir(FAILURES, { recursive: true });
    await page.screenshot({ path: path.join(FAILURES, `temporal-ui-failure-${name}.png`) }).catch(() => undefined);
    throw err;
  } finally {
    await page.close();
  }
}

async function openWorkflowList(page: Page, query: string): Promise<void> {
  await page.goto(`${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
}

/** Waits until the list shows exactly these workflows, each with its status badge. */
async function expectRows(page: Page, expected: Record<string, string>): Promise<void> {
  const rows = page.getByTestId('workflows-summary-configurable-table-row');
  for (const [workflowId, status] of Object.entries(expected)) {
    const row = rows.filter({ has: page.getByRole('link', { name: workflowId, exact: true }) });
    await row.getByTestId('execution-status').filter({ hasText: status }).waitFor();
  }
  expect(await rows.count()).toBe(Object.keys(expected).length);
}

async function expectWorkflowHeader(page: Page, workflowId: string, status: string): Promise<void> {
  await page.getByTestId('workflow-id-heading').filter({ hasText: workflowId }).waitFor();
  await page.getByTestId('execution-status').filter({ hasText: status }).waitFor();
}
