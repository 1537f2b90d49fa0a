/**
 * Debian's Chromium driven by playwright-core, with a fresh profile per launch, and the
 * console helpers the tests share (sign in with a token, screenshots into .tmp/).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const SCREENSHOTS = resolve(import.meta.dirname, '../../.tmp/screenshots');

export interface Browser {
  readonly context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'airlock-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw new Error(`Chromium (/usr/bin/chromium) did not start: ${(e as Error).message}`);
  }
  return {
    context,
    newPage: () => context.newPage(),
    close: async () => {
      // A browser that does not close in time is killed: it must not outlive its test.
      const closed = await Promise.race([context.close().then(() => true, () => true), new Promise<false>((r) => setTimeout(() => r(false), CLOSE_WAIT_MS).unref())]);
      if (!closed) killProfileProcesses(profile);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const CLOSE_WAIT_MS = 15_000;

/** SIGKILL every process started with this profile (Chromium's browser, renderers, helpers). */
function killProfileProcesses(profile: string): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(`--user-data-dir=${profile}`)) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

export async function signInWithToken(page: Page, gatewayUrl: string, token: string): Promise<void> {
  await page.goto(`${gatewayUrl}/console`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${gatewayUrl}/console`);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * Playwright gives `evaluate` and `page.close` no timeout of their own, and once in ~15 runs
 * of the OIDC test a page stopped answering there until the runner's 300 s bound: bounded
 * here, so a stuck page fails its own test with a reason instead of stalling the file.
 */
export async function within<T>(what: string, work: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
