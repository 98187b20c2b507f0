// Encrypted playback in a real browser (issue 24): a user-role user opens the page of a call
// whose voice file is a CMS envelope; the server decrypts it (in memory) and the page's audio
// element plays it: metadata loaded, data decoded (readyState ≥ 2), a duration, no error; the
// same bytes decode with WebAudio to the call's length. The page names the key that opened it,
// and ops then see the play on the page (from the playback audit log).
//
// Environment (set by tests/web_browser.rs): RECLIFE_URL, RECLIFE_OPS, RECLIFE_USER,
// RECLIFE_CHROMIUM, RECLIFE_ENCRYPTED_CALL.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { browserAs, ops, user, snap } from "./lib/harness.mjs";

const CALL = process.env.RECLIFE_ENCRYPTED_CALL;
const open = [];
after(async () => { for (const b of open) await b.close(); });

test("an encrypted recording plays in the page, decrypted by the server, and the play shows", async () => {
  assert.ok(CALL, "RECLIFE_ENCRYPTED_CALL is not set: run through `cargo test --test web_browser`");
  const u = await browserAs(user());
  open.push(u);
  const { page, errors } = u;
  await page.goto(`/recordings/${CALL}`);
  assert.equal(await page.locator("code.key-label").innerText(), "recording-key");
  const audio = page.locator("audio").first();
  await audio.waitFor();
  const r = await audio.evaluate(async (a) => {
    a.muted = true;
    a.preload = "auto";
    a.load();
    await a.play();
    const t0 = performance.now();
    while ((a.readyState < 2 || !(a.duration > 0)) && !a.error && performance.now() - t0 < 15000) {
      await new Promise((ok) => setTimeout(ok, 50));
    }
    // Let it run a little: the media clock moves.
    const before = a.currentTime;
    await new Promise((ok) => setTimeout(ok, 600));
    const bytes = await (await fetch(a.currentSrc)).arrayBuffer();
    const decoded = await new AudioContext().decodeAudioData(bytes);
    return { readyState: a.readyState, duration: a.duration, error: a.error && a.error.message,
      moved: a.currentTime > before, decoded: decoded.duration, src: a.currentSrc };
  });
  assert.equal(r.error, null, JSON.stringify(r));
  assert.ok(r.readyState >= 2, JSON.stringify(r));
  assert.ok(r.duration > 3 && r.duration < 5, `the 4 s call: ${JSON.stringify(r)}`);
  assert.ok(r.moved, `playing: ${JSON.stringify(r)}`);
  assert.ok(Math.abs(r.decoded - 4) < 0.2, `WebAudio decodes the plaintext: ${JSON.stringify(r)}`);
  assert.match(r.src, new RegExp(`/api/v2/recordings/${CALL}/play/`));
  await snap(page, "recording-encrypted-played");
  assert.deepEqual(errors, []);

  // Ops see the plays (who, outcome, the key), newest first.
  const o = await browserAs(ops());
  open.push(o);
  const t0 = Date.now();
  let text = "";
  while (Date.now() - t0 < 10000) {
    await o.page.goto(`/recordings/${CALL}`);
    if (await o.page.locator("table#plays").count()) {
      text = await o.page.locator("table#plays").innerText();
      if (/succeeded/.test(text)) break;
    }
    await new Promise((ok) => setTimeout(ok, 200));
  }
  assert.match(text, new RegExp(`${user().username}[\\s\\S]*succeeded[\\s\\S]*recording-key`));
});
