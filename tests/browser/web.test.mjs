// The operators' pages in a real browser: sign in, see the rules (with local times from the
// script), place a hold, build a plan with the keyboard alone, see its preview, follow the job
// live through server-sent events to its end, and read the pages on a phone-sized screen; edit,
// save and delete a rule kept in the catalog.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { browserAs, ops, user, snap, tabUntil } from "./lib/harness.mjs";

const CALL = "CALLA0000000000000000000000000001";
const open = [];
after(async () => { for (const b of open) await b.close(); });

async function as(who, opts) {
  const b = await browserAs(who, opts);
  open.push(b);
  return b;
}

test("rules: schedule, next fire in UTC and local time; user sees no actions", async () => {
  const { page, errors } = await as(ops());
  await page.goto("/rules");
  await assert.doesNotReject(page.getByRole("heading", { name: /Daily backup/ }).waitFor());
  const card = page.locator("section.rule", { has: page.getByRole("heading", { name: /Daily backup/ }) });
  assert.match(await card.innerText(), /0 0 22 \* \* \*/);
  // The script adds the browser's local time beside each UTC time.
  await card.locator("time + .local").first().waitFor();
  assert.match(await card.locator(".local").first().innerText(), /local:/);
  assert.equal(await card.getByRole("button", { name: "Disable rule Daily backup" }).count(), 1);
  await snap(page, "rules");
  assert.deepEqual(errors, []);

  const u = await as(user());
  await u.page.goto("/rules");
  await u.page.getByRole("heading", { name: /Daily backup/ }).waitFor();
  assert.equal(await u.page.getByRole("button", { name: /Disable/ }).count(), 0);
  assert.match(await u.page.locator(".who").innerText(), /alice/);
});

test("rules kept in the catalog: edit and save a rule as its next version, add one, delete it", async () => {
  const { page, errors } = await as(ops());
  await page.goto("/rules");
  await page.getByRole("link", { name: "Edit rule Daily backup" }).click();
  const editor = page.getByLabel("Rule file (TOML)");
  await editor.waitFor();
  const text = await editor.inputValue();
  assert.match(text, /name = "Daily backup"/);
  assert.match(text, /0 0 22 \* \* \*/);
  await editor.fill(text.replace("0 0 22 * * *", "0 30 22 * * *"));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").filter({ hasText: "Rule Daily backup stored as its next version (version 2)." }).waitFor();
  const card = page.locator("section.rule", { has: page.getByRole("heading", { name: /Daily backup/ }) });
  assert.match(await card.innerText(), /0 30 22 \* \* \*/);
  assert.match(await card.innerText(), /2, by web:ops/);

  // A new rule for another node: stored, shown with its node path, then deleted.
  await page.getByLabel("Rule file (TOML)").fill(
    'name = "Browser rule"\nnode_path = "/other/node"\nschedule = "0 0 4 * * *"\n[[tasks]]\ntype = "purge"\nfilter = { min_age = 400 }\n');
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").filter({ hasText: "Rule Browser rule stored as a new rule (version 1)." }).waitFor();
  const mine = page.locator("section.rule", { has: page.getByRole("heading", { name: /Browser rule/ }) });
  assert.match(await mine.innerText(), /node path \/other\/node/);
  assert.match(await mine.innerText(), /none on this node/);
  await mine.getByRole("button", { name: "Delete rule Browser rule" }).click();
  await page.getByRole("status").filter({ hasText: "Rule Browser rule deleted (version 2 is its tombstone)." }).waitFor();
  assert.equal(await page.getByRole("heading", { name: /Browser rule/ }).count(), 0);
  await snap(page, "rules-saved-and-deleted");
  assert.deepEqual(errors, []);
});

test("a hold with a reason is placed from the recording's page and shows", async () => {
  const { page } = await as(ops());
  await page.goto("/recordings");
  await page.getByLabel("Held").selectOption("no");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: CALL }).click();
  await page.waitForURL(`**/recordings/${CALL}`);
  assert.equal(await page.locator("audio").count() >= 1, true, "a voice recording has an audio player");
  await page.getByLabel("Reason for the hold").fill("Case 42: keep");
  await page.getByRole("button", { name: "Hold", exact: true }).click();
  await page.getByRole("status").filter({ hasText: "Held." }).waitFor();
  assert.match(await page.locator("#hold-state").innerText(), /held Case 42: keep/);
  await snap(page, "recording-held");
});

test("keyboard: tab to the plan form and submit; preview; Start; the job followed live to its end", async () => {
  const { page, errors } = await as(ops());
  await page.goto("/jobs/new");
  // The skip link comes first and moves focus to the content.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  // Into the form: the task radios (backup is checked; the arrow picks purge).
  await tabUntil(page, () => document.activeElement.name === "type");
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.evaluate(() => document.activeElement.value), "purge");
  await tabUntil(page, () => document.activeElement.id === "min_age");
  await page.keyboard.type("1");
  await page.keyboard.press("Enter"); // submits the form
  await page.getByRole("heading", { name: "Plan preview" }).waitFor();
  const text = await page.locator("main").innerText();
  // The hold of the previous test, and a nonDelete of the sample data, are left alone.
  const held = Number(await page.locator('[data-plan="held"]').innerText());
  assert.ok(held >= 2, text);
  const recordings = Number(await page.locator('[data-plan="recordings"]').innerText());
  assert.ok(recordings >= 2, text);
  await snap(page, "plan-preview");

  // The job's page follows it through the API's event stream.
  const link = page.locator("main p a[href^='/jobs/']").first();
  const id = (await link.innerText()).trim();
  await link.click();
  await page.waitForURL(`**/jobs/${id}`);
  await page.locator("#live-status").filter({ hasText: "Live: planned" }).waitFor();
  // Start on this page: sent by the script without leaving it, so the stream goes on, and the
  // end is told by the stream alone (the page does not reload until then).
  await page.evaluate(() => { window.stillHere = true; });
  await page.getByRole("button", { name: "Start this plan" }).click();
  await page.locator("#live-status").filter({ hasText: "The job ended: succeeded" }).waitFor({ timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.stillHere), true, "the page was not reloaded before the end");
  // At the end the page loads the outcome rendered by the server.
  await page.getByRole("heading", { name: "Outcome per task" }).waitFor({ timeout: 30_000 });
  assert.match(await page.locator("#job-state").innerText(), /succeeded/);
  await snap(page, "job-done");
  assert.deepEqual(errors, []);
});

test("phone-sized screen: no page scrolls sideways", async () => {
  const { page } = await as(user(), { viewport: { width: 390, height: 844 } });
  for (const p of ["/", "/rules", "/jobs", "/recordings", `/recordings/${CALL}`, "/muxer"]) {
    await page.goto(p);
    const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(sw <= cw + 1, `${p}: ${sw} px wide on a ${cw} px screen`);
    await snap(page, "phone" + p.replace(/[^a-z0-9]+/gi, "-"));
  }
});
