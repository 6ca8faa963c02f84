/**
 * Headless Chromium for the browser tests (Debian's, or CHROMIUM_PATH), on a closed network: only
 * 127.0.0.1 is reachable. Screenshots go to docs/ with UPDATE_SCREENSHOTS=1, else to .data/ (so a test
 * run leaves the tree clean); a failing page's last state goes to .data/ for whoever debugs it.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const SCREENSHOTS = path.resolve(__dirname, process.env.UPDATE_SCREENSHOTS === '1' ? '../../docs' : '../../.data');
const FAILURES = path.resolve(__dirname, '../../.data');
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

export interface Chromium {
  context: BrowserContext;
  /** A fresh page for one step; on failure its last state is saved as .data/<prefix>-failure-<name>.png. */
  withPage(name: string, fn: (page: Page) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export async function launchChromium(failurePrefix: string): Promise<Chromium> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `no Chromium at ${CHROMIUM_PATH}: run ./scripts/test (it installs Debian's chromium), ` +
        'or apt-get install chromium, or set CHROMIUM_PATH',
    );
  }
  const profileDir = await mkdtemp(path.join(tmpdir(), 'token-expiry-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 900 },
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  context.setDefaultTimeout(30_000);
  // Everything the pages need is on this machine; anything else would only hang on the closed network.
  await context.route(
    (url) => url.hostname !== '127.0.0.1' && url.hostname !== 'localhost',
    (route) => route.abort(),
  );
  await mkdir(SCREENSHOTS, { recursive: true });
  return {
    context,
    async withPage(name, fn) {
      const page = await context.newPage();
      try {
        await fn(page);
      } catch (err) {
        await mkdir(FAILURES, { recursive: true });
        await page.screenshot({ path: path.join(FAILURES, `${failurePrefix}-failure-${name}.png`) }).catch(() => undefined);
        throw err;
      } finally {
        await page.close();
      }
    },
    async close() {
      await context.close();
      await rm(profileDir, { recursive: true, force: true });
    },
  };
}
