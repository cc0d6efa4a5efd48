import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page, type Request } from 'playwright-core';

/**
 * Debian's Chromium driven by playwright-core: headless, a fresh --user-data-dir per test (so
 * IndexedDB starts empty), a phone-sized viewport. Screenshots go to test/web/artifacts/
 * (gitignored). `apiRequests` counts the page's Connect requests (Playwright request events).
 */

export const chromiumPath = '/usr/bin/chromium';
export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** A phone: 390 x 844 CSS pixels. */
export const phoneViewport = { width: 390, height: 844 };
/** Longest wait for anything on the page (a loaded 2-core machine runs PBKDF2 slowly). */
export const pageTimeoutMs = 30_000;
/** Longest wait for the browser to start. */
export const launchTimeoutMs = 60_000;

export const artifactsDir = fileURLToPath(new URL('./artifacts/', import.meta.url));

export interface TerminalBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Every request the page sent to the API (path /countersign.v1.*), in order. */
  readonly apiRequests: string[];
  /** Uncaught script errors and console errors (not the browser's own lines about failed HTTP requests, which the API's error statuses cause). */
  readonly pageErrors: string[];
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

export function chromiumAvailable(): boolean {
  return existsSync(chromiumPath);
}

function isApi(request: Request): boolean {
  return new URL(request.url()).pathname.startsWith('/countersign.v1.');
}

export async function openTerminalBrowser(url: string): Promise<TerminalBrowser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'cs-web-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    viewport: phoneViewport,
    timeout: launchTimeoutMs,
  });
  context.setDefaultTimeout(pageTimeoutMs);
  const page = context.pages()[0] ?? (await context.newPage());
  const apiRequests: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (r) => {
    if (isApi(r)) apiRequests.push(new URL(r.url()).pathname);
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });
  await page.goto(url);
  return {
    context,
    page,
    apiRequests,
    pageErrors,
    async screenshot(name) {
      mkdirSync(artifactsDir, { recursive: true });
      const path = join(artifactsDir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
