// Pages that read well on any screen (issue 24), in headless Chromium at 1366 px and 390 px:
// no word of a table broken across lines, no page scrolling sideways, tables as cards on a
// phone; a plan preview that a reload does not plan again; a form that keeps what was typed
// and names the field by its label; HTML for an unknown URL and for refused credentials; a
// video showing a frame before it plays. With RECLIFE_SCREENSHOTS=dir, every page is saved
// at both widths as dir/<page>-<width>.png (docs/screenshots is made this way).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { browserAs, ops, user } from "./lib/harness.mjs";

const CALL = "CALLA0000000000000000000000000001";
// CALL's screen recording (an MP4 in the sample data).
const SCREEN = "CALLA0000000000000000000000000001_2024-03-10_09-15-02";
const WIDTHS = [1366, 390];
const open = [];
after(async () => { for (const b of open) await b.close(); });

async function as(who, opts) {
  const b = await browserAs(who, opts);
  open.push(b);
  return b;
}

async function shoot(page, name, width) {
  const dir = process.env.RECLIFE_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}-${width}.png`), fullPage: true });
}

// Every word of every visible table cell (text outside `code`: ids and paths may wrap
// anywhere) laid out on one line; the page no wider than the screen.
async function measure(page) {
  return page.evaluate(() => {
    const broken = [];
    for (const cell of document.querySelectorAll("main td, main th")) {
      if (!cell.getClientRects().length) continue;
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (n.parentElement.closest("code")) continue;
        const text = n.textContent;
        for (const m of text.matchAll(/\S+/g)) {
          const r = document.createRange();
          r.setStart(n, m.index);
          r.setEnd(n, m.index + m[0].length);
          const lines = new Set([...r.getClientRects()].filter((q) => q.width > 0).map((q) => Math.round(q.top)));
          if (lines.size > 1) broken.push(`${m[0]} (in a ${Math.round(cell.getBoundingClientRect().width)} px cell)`);
        }
      }
    }
    const de = document.documentElement;
    return { broken, scrollWidth: de.scrollWidth, clientWidth: de.clientWidth };
  });
}

async function anyJob(page) {
  const jobs = await page.evaluate(async () => (await (await fetch("/api/v1/jobs?limit=1000")).json()));
  return jobs;
}

test("tables never break a word, pages never scroll sideways, at 1366 px and 390 px", async () => {
  // A finished job and a planned one, so the job pages have every table.
  const o = await as(ops(), { viewport: { width: 1366, height: 900 } });
  await o.page.goto("/jobs/new");
  await o.page.getByLabel("Minimum age (days)").fill("1");
  await o.page.getByRole("button", { name: "Build the plan" }).click();
  await o.page.getByRole("heading", { name: "Plan preview" }).waitFor();
  const preview = new URL(o.page.url()).pathname;
  const done = preview.replace(/\/preview$/, "");
  await o.page.goto(done);
  await o.page.getByRole("button", { name: "Start this plan" }).click();
  await o.page.getByRole("heading", { name: "Outcome per task" }).waitFor({ timeout: 60_000 });
  await o.page.goto("/jobs/new");
  await o.page.getByRole("button", { name: "Build the plan" }).click();
  await o.page.getByRole("heading", { name: "Plan preview" }).waitFor();
  const planned = new URL(o.page.url()).pathname;

  const pages = [
    ["health", "/"], ["rules", "/rules"], ["jobs", "/jobs"], ["plan-form", "/jobs/new"],
    ["plan-preview", planned], ["job-planned", planned.replace(/\/preview$/, "")], ["job-done", done],
    ["recordings", "/recordings"], ["recording", `/recordings/${CALL}`], ["muxer", "/muxer"],
  ];
  for (const width of WIDTHS) {
    const { page } = await as(ops(), { viewport: { width, height: 900 } });
    for (const [name, p] of pages) {
      const r = await page.goto(p);
      assert.equal(r.status(), 200, p);
      const m = await measure(page);
      assert.deepEqual(m.broken, [], `${p} at ${width} px: words broken across lines`);
      assert.ok(m.scrollWidth <= m.clientWidth + 1, `${p}: ${m.scrollWidth} px wide on a ${m.clientWidth} px screen`);
      if (width < 600) {
        // Cards: no header row shown, each cell labelled.
        const shown = await page.evaluate(() =>
          [...document.querySelectorAll("main table thead")].filter((t) => t.getClientRects().length).length);
        assert.equal(shown, 0, `${p} at ${width} px: a table header row is shown (not cards)`);
      }
      await shoot(page, name, width);
    }
  }
});

test("reloading a plan preview plans nothing more", async () => {
  const { page } = await as(ops(), { viewport: { width: 1366, height: 900 } });
  await page.goto("/jobs/new");
  const before = (await anyJob(page)).jobs.length;
  await page.getByLabel("Minimum age (days)").fill("3");
  await page.getByRole("button", { name: "Build the plan" }).click();
  await page.getByRole("heading", { name: "Plan preview" }).waitFor();
  assert.match(new URL(page.url()).pathname, /^\/jobs\/[^/]+\/preview$/, "the preview has a URL of its own");
  await page.reload();
  await page.getByRole("heading", { name: "Plan preview" }).waitFor();
  await page.reload();
  await page.getByRole("heading", { name: "Plan preview" }).waitFor();
  assert.equal((await anyJob(page)).jobs.length, before + 1, "exactly one job planned");
});

test("a form error keeps what was typed and is shown at its field, by its label", async () => {
  const { page } = await as(ops(), { viewport: { width: 390, height: 844 } });
  await page.goto("/jobs/new");
  await page.getByLabel("Purge (needs a minimum age)").check();
  await page.getByLabel("Call type").fill("inbound");
  await page.getByLabel("With every label (space-separated)").fill("keep-me");
  await page.getByRole("button", { name: "Build the plan" }).click();
  const err = page.locator("#min_age-error");
  await err.waitFor();
  const text = await err.innerText();
  assert.match(text, /Minimum age \(days\)/);
  assert.doesNotMatch(text, /min_age/);
  assert.equal(await page.getByLabel("Call type").inputValue(), "inbound");
  assert.equal(await page.getByLabel("With every label (space-separated)").inputValue(), "keep-me");
  assert.equal(await page.getByLabel("Purge (needs a minimum age)").isChecked(), true);
  assert.equal(await page.getByLabel("Minimum age (days)").getAttribute("aria-invalid"), "true");
  await shoot(page, "plan-form-error", 390);
});

test("an unknown URL and refused credentials are HTML pages", async () => {
  const { page } = await as(user(), { viewport: { width: 1366, height: 900 } });
  const r = await page.goto("/no/such/page");
  assert.equal(r.status(), 404);
  assert.match(r.headers()["content-type"], /^text\/html/);
  await page.getByRole("heading", { name: "404 Not Found" }).waitFor();
  await shoot(page, "not-found", 1366);
  // Wrong credentials, again and again (past the point where logins are slowed down).
  const wrong = await as({ username: user().username, password: "wrong" }, { viewport: { width: 390, height: 844 } });
  let last;
  for (let i = 0; i < 7; i++) last = await wrong.page.goto("/jobs");
  assert.equal(last.status(), 401);
  assert.match(last.headers()["content-type"], /^text\/html/);
  assert.match(await wrong.page.locator("main").innerText(), /wrong user name or password/);
  await shoot(wrong.page, "refused", 390);
});

test("a video shows a frame before it is played", async () => {
  const { page } = await as(user(), { viewport: { width: 1366, height: 900 } });
  await page.goto(`/recordings/${SCREEN}`);
  const video = page.locator("video").first();
  await video.waitFor();
  // HAVE_CURRENT_DATA or more: a frame is decoded and shown, without pressing play.
  await page.waitForFunction(() => document.querySelector("video").readyState >= 2, null, { timeout: 15_000 });
  assert.equal(await video.evaluate((v) => v.paused), true);
  await shoot(page, "screen-recording", 1366);
});
