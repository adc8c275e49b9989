/**
 * Headless Chromium (Debian's `chromium`) driven by playwright-core, for the dashboard's tests.
 * Without it a browser test is skipped, its title saying why; under MESH_REQUIRE_BROWSER=1 (CI,
 * after installing it) a missing browser fails the run instead.
 */
import { existsSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import type { Browser } from 'playwright-core';
import { CHROMIUM, launchChromium } from './chromium.js';

const missing = existsSync(CHROMIUM)
  ? undefined
  : `no Chromium at ${CHROMIUM} (Debian's chromium package)`;
if (missing && process.env.MESH_REQUIRE_BROWSER === '1')
  throw new Error(`MESH_REQUIRE_BROWSER=1 but ${missing}`);

/** A test that needs the browser: run serially (one browser at a time), or skipped saying why. */
export function browserTest(
  title: string,
  body: (t: ExecutionContext, browser: Browser) => Promise<void>,
) {
  if (missing) {
    test.skip(`${title} [skipped: ${missing}]`, () => {});
    return;
  }
  test.serial(title, async (t) => {
    const browser = await launchChromium();
    t.teardown(() => browser.close());
    await body(t, browser);
  });
}
