// The browser-test harness: Debian's headless Chromium driven by playwright-core, against a
// `reclife serve` that the Rust test (tests/web_browser.rs) started. Reusable by any page's
// tests: `node --test tests/browser/`.
//
// Environment (set by the Rust test):
//   RECLIFE_URL           the server's base URL (http://127.0.0.1:PORT)
//   RECLIFE_OPS           "user:password" of an ops user
//   RECLIFE_USER          "user:password" of a user-role user
//   RECLIFE_CHROMIUM      the browser (default /usr/bin/chromium)
//   RECLIFE_ARTIFACTS     optional folder for screenshots
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const baseUrl = () => {
  const u = process.env.RECLIFE_URL;
  if (!u) throw new Error("RECLIFE_URL is not set: run these tests through `cargo test --test web_browser`");
  return u.replace(/\/$/, "");
};

const creds = (name) => {
  const v = process.env[name];
  if (!v || !v.includes(":")) throw new Error(`${name} is not set (user:password)`);
  const i = v.indexOf(":");
  return { username: v.slice(0, i), password: v.slice(i + 1) };
};
export const ops = () => creds("RECLIFE_OPS");
export const user = () => creds("RECLIFE_USER");

// The flags this machine's Chromium needs as root, without reaching for the network
// (shared servers.md); the profile is a fresh temporary folder, removed on close.
const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/// A browser signed in as `who` ({username, password}); `close()` removes its profile.
export async function browserAs(who, { viewport = { width: 1280, height: 800 } } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "reclife-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RECLIFE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    httpCredentials: who,
    viewport,
    baseURL: baseUrl(),
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return {
    context,
    page,
    /// Uncaught script errors seen so far on the page.
    errors,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/// Saves a screenshot when RECLIFE_ARTIFACTS names a folder.
export async function snap(page, name) {
  const dir = process.env.RECLIFE_ARTIFACTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/// Presses Tab until `pred(activeElement)` holds in the page (at most `max` times); returns how
/// many presses it took.
export async function tabUntil(page, pred, max = 60) {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(pred)) return i;
  }
  throw new Error(`focus never reached the element after ${max} Tab presses`);
}
