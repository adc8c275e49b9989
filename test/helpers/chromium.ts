/** Debian's headless Chromium, driven by playwright-core (no ava here: benchmarks use it too). */
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.MESH_CHROMIUM ?? '/usr/bin/chromium';

/** The browser, headless; as root (CI), Chromium runs only without its sandbox. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}
