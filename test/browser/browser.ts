// A real Chromium for the browser tests, driven by playwright-core: one browser per test file,
// a fresh context (cookies, storage) per page, a screenshot of every step a test names (and of
// the page as it was when a test failed), an accessibility scan with axe-core, and a record of
// what went wrong inside the page (uncaught errors, console errors such as a
// Content-Security-Policy refusal) for the test to assert on.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type axe from 'axe-core';
import type { Result as AxeResult } from 'axe-core';
import { chromium, type Locator, type Page } from 'playwright-core';
import { testEnv } from '../support/env.js';
import { projectRoot } from '../support/processes.js';

/**
 * How long any one wait on the page may take: generous, because a vlog renders on two busy
 * cores beside the rest of the suite, but bounded, so a broken page fails instead of hanging.
 */
export const pageTimeoutMs = 90_000;

/** Where screenshots go: gitignored, kept after the run, one folder per test file. */
const artifactsRoot = path.join(projectRoot, 'test-artifacts', 'browser');

/** A phone's viewport: the narrowest the page is made for. */
export const phoneViewport = { width: 375, height: 740 };

export interface BrowserPage {
  page: Page;
  /** Saves a full-page screenshot named after the test and `step`; returns its path. */
  step: (step: string) => Promise<string>;
  /** What went wrong inside the page so far: uncaught errors and console errors. */
  problems: () => string[];
  /**
   * Runs axe-core on the page as it is now; returns the serious and critical violations, and a
   * heading that skips a level (moderate to axe, but it breaks a screen reader's outline).
   */
  accessibilityViolations: () => Promise<AxeResult[]>;
}

export interface PageOptions {
  /** Default: a laptop's 1280×900. */
  viewport?: { width: number; height: number };
}

export interface BrowserSession {
  /**
   * Opens a page in a fresh context (`name` prefixes its screenshots), runs `use` with it and
   * closes it; when `use` fails, a screenshot of the page as it was is saved first.
   */
  withPage<T>(
    name: string,
    options: PageOptions,
    use: (opened: BrowserPage) => Promise<T>,
  ): Promise<T>;
  /** Closes the browser and prints where the screenshots are. */
  close(): Promise<void>;
}

const axeSource = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Launches headless Chromium for one test file, whose screenshots go to `artifactsRoot/<suite>`
 * (emptied first, so what is there is this run's).
 */
export async function startBrowser(suite: string): Promise<BrowserSession> {
  const dir = path.join(artifactsRoot, suite);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const browser = await chromium.launch({ executablePath: testEnv.chromiumPath });
  let shots = 0;
  const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, '-');

  return {
    async withPage(name, options, use) {
      const context = await browser.newContext({
        viewport: options.viewport ?? { width: 1280, height: 900 },
        reducedMotion: 'reduce',
        // Dates the page shows and the days its date filters mean do not depend on the machine.
        locale: 'en-GB',
        timezoneId: 'UTC',
      });
      try {
        context.setDefaultTimeout(pageTimeoutMs);
        const page = await context.newPage();
        const problems: string[] = [];
        page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
        page.on('console', (message) => {
          if (message.type() === 'error')
            problems.push(`console: ${message.text()} (${message.location().url})`);
        });
        const step = async (what: string) => {
          shots += 1;
          const file = path.join(
            dir,
            `${String(shots).padStart(2, '0')}-${slug(name)}-${slug(what)}.png`,
          );
          await page.screenshot({ path: file, fullPage: true });
          return file;
        };
        try {
          return await use({
            page,
            step,
            problems: () => [...problems],
            async accessibilityViolations() {
              // Evaluated through the DevTools protocol, which the page's CSP does not govern.
              if (!(await page.evaluate(() => 'axe' in globalThis))) {
                await page.evaluate(await axeSource);
              }
              const results = await page.evaluate(() =>
                (globalThis as unknown as { axe: typeof axe }).axe.run(),
              );
              return results.violations.filter(
                (violation) =>
                  violation.impact === 'serious' ||
                  violation.impact === 'critical' ||
                  violation.id === 'heading-order',
              );
            },
          });
        } catch (error) {
          await step('at failure').catch(() => undefined);
          throw error;
        }
      } finally {
        await context.close();
      }
    },
    async close() {
      await browser.close();
      const files = await readdir(dir).catch(() => []);
      console.log(`browser screenshots: ${files.length} in ${path.relative(projectRoot, dir)}/`);
    },
  };
}

/** Axe's violations as lines a failing assertion can show: rule, impact, and where. */
export function describeViolations(violations: AxeResult[]): string {
  return violations
    .map(
      (violation) =>
        `${violation.id} (${violation.impact}): ${violation.help}\n` +
        violation.nodes
          .map((node) => `  ${node.target.join(' ')}: ${node.failureSummary}`)
          .join('\n'),
    )
    .join('\n');
}

/** Waits until `target` has the keyboard focus. */
export async function assertFocused(target: Locator): Promise<void> {
  const focused = await target
    .page()
    .waitForFunction(
      (element) =>
        element ===
        (globalThis as unknown as { document: { activeElement: unknown } }).document.activeElement,
      await target.elementHandle(),
      { timeout: pageTimeoutMs },
    );
  await focused.dispose();
}
