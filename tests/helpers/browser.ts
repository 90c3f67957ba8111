/**
 * A real headless Chromium for page tests: Debian's `chromium` (/usr/bin/chromium, installed by
 * .ci/run when missing) driven by playwright-core, with a fresh profile per launch and nothing
 * that phones home. Under CI=true a missing browser fails the test; elsewhere the test says
 * why it skips.
 *
 *     const chromium = await launchChromium()
 *     const page = await chromium.context.newPage()
 *     await chromium.close() // and its profile is removed
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can (CI never skips: the test fails instead). */
export function browserMissing(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.env["CI"] === "true")
    throw new Error(
      `${CHROMIUM} is missing: .ci/run installs Debian's chromium; install it with apt-get install -y chromium`,
    );
  return `${CHROMIUM} is missing (apt-get install -y chromium)`;
}

/** A persistent context is how playwright takes a profile directory of our own (`--user-data-dir`). */
export interface Chromium {
  context: BrowserContext;
  /** Closes the browser, then removes its profile. */
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Chromium> {
  const profile = mkdtempSync(join(tmpdir(), "hypercast-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context: browser,
    async close() {
      await browser.close();
      // The browser's last writes may still land just after it exits: retry briefly.
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
}
