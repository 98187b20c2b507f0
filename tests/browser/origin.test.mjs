// Origin safety in a real browser, signed in as ops: a media file whose metadata says it is a web
// page, opened from its link, runs no script; a page of another origin (a server on another
// loopback port) that posts forms and no-cors requests to the API changes nothing. What changed
// is read back through the API afterwards, with the ops credentials and no browser.
//
// Environment, beside the harness's (set by tests/web_browser.rs):
//   RECLIFE_HTML_MEDIA   path of the HTML-typed media file (its mediaUri's path)
//   RECLIFE_CALL         a call the attacks try to hold
//   RECLIFE_GUARDED      a nonDelete call, and RECLIFE_GUARDED_DOC its document with nonDelete
//                        false, which the attacks try to write through /internal-api
//   RECLIFE_RULE         a disabled rule the attacks try to enable
//   RECLIFE_CCID         the contact center id
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { browserAs, ops, baseUrl } from "./lib/harness.mjs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through \`cargo test --test web_browser\``);
  return v;
};
const CALL = env("RECLIFE_CALL");
const GUARDED = env("RECLIFE_GUARDED");
const RULE = env("RECLIFE_RULE");

const open = [];
after(async () => { for (const b of open) await b.close(); });

/// GET through the API as ops, outside the browser.
async function api(path) {
  const { username, password } = ops();
  const r = await fetch(baseUrl() + path, {
    headers: { authorization: "Basic " + Buffer.from(`${username}:${password}`).toString("base64") },
  });
  assert.equal(r.status, 200, `${path}: ${r.status}`);
  return r.json();
}

/// What the attacks try to change, as the API shows it.
async function state() {
  const call = await api(`/api/v2/recordings/${CALL}`);
  const guarded = await api(`/api/v2/recordings/${GUARDED}`);
  const rule = await api(`/api/v1/rules/${encodeURIComponent(RULE)}`);
  return {
    hold: call.recording.hold ?? null,
    nonDelete: guarded.recording.nonDelete ?? null,
    ruleEnabled: rule.rule.enabled,
    override: rule.override ?? null,
  };
}

const untouched = { hold: null, nonDelete: true, ruleEnabled: false, override: null };

test("an HTML-typed media file opened by ops runs no script and changes nothing", async () => {
  assert.deepEqual(await state(), untouched);
  const b = await browserAs(ops());
  open.push(b);
  const { page } = b;
  // Signed in on the pages first, as an operator would be.
  await page.goto("/");
  // The recording's page offers it as a download, not as a player.
  const id = env("RECLIFE_HTML_MEDIA").split("/")[4];
  await page.goto(`/recordings/${id}`);
  assert.equal(await page.locator("audio, video").count(), 0);
  // Opening the link itself: served as an attachment, so the browser downloads it; whatever it
  // did, no script of it may run.
  let downloaded = false;
  page.on("download", () => { downloaded = true; });
  await page.goto(env("RECLIFE_HTML_MEDIA")).catch(() => {});
  await page.waitForTimeout(3000);
  assert.deepEqual(await state(), untouched);
  const title = await page.title().catch(() => "");
  assert.ok(!title.startsWith("script"), `the media's script ran (the page's title is ${title})`);
  assert.equal(downloaded, true, "the media was not offered as a download");
});

test("a page of another origin posting to the API changes nothing", async () => {
  const target = baseUrl();
  const doc = env("RECLIFE_GUARDED_DOC");
  // A text/plain form body is `name=value`: split the JSON so that the `=` lands in a string.
  const docName = doc.slice(0, -1) + ',"x-pad":"';
  const docValue = '"}';
  const ingest = `${target}/internal-api/contact-centers/${env("RECLIFE_CCID")}/recordings`;
  const hold = `${target}/api/v2/recordings/${CALL}/hold`;
  const enable = `${target}/api/v1/rules/${encodeURIComponent(RULE)}/enable`;
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  const forms = [
    { action: hold, enctype: "text/plain", name: '{"reason":"forged', value: ' by a form"}' },
    { action: hold, enctype: "application/x-www-form-urlencoded", name: "reason", value: "forged" },
    { action: ingest, enctype: "text/plain", name: docName, value: docValue },
    { action: enable, enctype: "application/x-www-form-urlencoded", name: "x", value: "1" },
    { action: enable, enctype: "text/plain", name: "{}", value: "" },
  ];
  const attack = `<!doctype html><html><head><title>elsewhere</title></head><body>
${forms.map((f, i) => `<iframe name="f${i}"></iframe>
<form id="form${i}" method="post" target="f${i}" action="${esc(f.action)}" enctype="${f.enctype}">
<input type="hidden" name="${esc(f.name)}" value="${esc(f.value)}"></form>`).join("\n")}
<script>
const sent = [];
for (let i = 0; i < ${forms.length}; i++) {
  const frame = document.querySelector('iframe[name="f' + i + '"]');
  sent.push(new Promise((ok) => frame.addEventListener("load", ok, { once: true })));
  document.getElementById("form" + i).submit();
}
const blind = (url, body) => fetch(url, { method: "POST", mode: "no-cors", credentials: "include", body }).catch(() => {});
sent.push(blind(${JSON.stringify(hold)}, JSON.stringify({ reason: "forged by fetch" })));
sent.push(blind(${JSON.stringify(ingest)}, ${JSON.stringify(doc)}));
sent.push(blind(${JSON.stringify(enable)}, ""));
sent.push(fetch(${JSON.stringify(enable)}, { method: "POST", mode: "no-cors", credentials: "include",
  headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "a=1" }).catch(() => {}));
Promise.all(sent).then(() => { document.title = "sent"; });
</script></body></html>`;
  const evil = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(attack);
  });
  await new Promise((ok) => evil.listen(0, "127.0.0.1", ok));
  try {
    const elsewhere = `http://127.0.0.1:${evil.address().port}/`;
    assert.notEqual(new URL(elsewhere).origin, new URL(target).origin);
    assert.deepEqual(await state(), untouched);
    const b = await browserAs(ops());
    open.push(b);
    const { page } = b;
    await page.goto(`${target}/rules`); // signed in to reclife in this browser
    await page.goto(elsewhere);
    await page.waitForFunction(() => document.title === "sent", null, { timeout: 30_000 });
    await page.waitForTimeout(500);
    assert.deepEqual(await state(), untouched);
  } finally {
    evil.close();
  }
});
