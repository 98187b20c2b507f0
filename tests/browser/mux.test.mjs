// A muxed file in a real browser: tests/muxer_browser.rs writes a muxed MP4 whose voice tones
// and video colours sit at known times, with `expect.json` saying where; this test serves the
// folder on loopback and checks, in headless Chromium, that the file plays to `ended` with its
// audio decoded, lasts as long as the timeline, has each tone at its offset (WebAudio decode +
// Goertzel, within ±40 ms) and shows each colour at its time.
//
// Environment: RECLIFE_MUX_DIR (the folder), RECLIFE_CHROMIUM.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import os from "node:os";

const dir = process.env.RECLIFE_MUX_DIR;

function serve(root) {
  const server = http.createServer((req, res) => {
    const name = path.basename(decodeURIComponent(new URL(req.url, "http://x").pathname)) || "index.html";
    const file = path.join(root, name);
    if (!fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const size = fs.statSync(file).size;
    const type = name.endsWith(".mp4") ? "video/mp4" : name.endsWith(".json") ? "application/json" : "text/html";
    const range = /bytes=(\d*)-(\d*)/.exec(req.headers.range || "");
    if (range) {
      const start = range[1] ? Number(range[1]) : 0;
      const end = range[2] ? Number(range[2]) : size - 1;
      res.writeHead(206, { "content-type": type, "content-range": `bytes ${start}-${end}/${size}`, "accept-ranges": "bytes", "content-length": end - start + 1 });
      fs.createReadStream(file, { start, end }).pipe(res);
    } else {
      res.writeHead(200, { "content-type": type, "accept-ranges": "bytes", "content-length": size });
      fs.createReadStream(file).pipe(res);
    }
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

test("the muxed file plays in Chromium with every tone and frame at its time", async () => {
  assert.ok(dir, "RECLIFE_MUX_DIR is not set: run through `cargo test --test muxer_browser`");
  const expect = JSON.parse(fs.readFileSync(path.join(dir, "expect.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "index.html"), `<!doctype html><video id=v src="out.mp4" preload=auto></video><canvas id=c width=16 height=16></canvas>`);
  const server = await serve(dir);
  const base = `http://127.0.0.1:${server.address().port}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "reclife-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RECLIFE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"],
  });
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    await page.goto(`${base}/index.html`);
    const r = await page.evaluate(async (expect) => {
      const out = {};
      // 1. The audio track as WebAudio decodes it: where each tone starts.
      const buf = await (await fetch("out.mp4")).arrayBuffer();
      const rate = 16000;
      const ac = new OfflineAudioContext(1, rate, rate);
      const audio = await ac.decodeAudioData(buf);
      const pcm = audio.getChannelData(0);
      out.decodedSeconds = audio.duration;
      const win = 160; // 10 ms
      const level = (freq, at) => {
        const k = 2 * Math.cos((2 * Math.PI * freq) / audio.sampleRate);
        let s1 = 0, s2 = 0;
        for (let i = at; i < at + win && i < pcm.length; i++) {
          const s0 = pcm[i] + k * s1 - s2;
          s2 = s1;
          s1 = s0;
        }
        return (2 * Math.sqrt(Math.max(0, s1 * s1 + s2 * s2 - k * s1 * s2))) / win;
      };
      out.onsets = expect.tones.map(({ freq, at }) => {
        const steady = level(freq, Math.round((at + 0.5) * audio.sampleRate));
        const from = Math.max(0, Math.round((at - 0.5) * audio.sampleRate));
        for (let i = from; i < pcm.length; i += 16) {
          if (level(freq, i) > steady / 2) return { freq, expected: at, found: (i + win / 2) / audio.sampleRate, steady };
        }
        return { freq, expected: at, found: null, steady };
      });
      // 2. Playback to the end, audio decoded.
      const v = document.getElementById("v");
      v.muted = true;
      await new Promise((ok, fail) => {
        v.onended = ok;
        v.onerror = () => fail(new Error("video error " + (v.error && v.error.message)));
        v.play().catch(fail);
      });
      out.ended = v.ended;
      out.duration = v.duration;
      out.audioBytes = v.webkitAudioDecodedByteCount;
      out.videoBytes = v.webkitVideoDecodedByteCount;
      // 3. The picture at given times.
      const c = document.getElementById("c").getContext("2d", { willReadFrequently: true });
      out.frames = [];
      for (const { at, colour } of expect.frames) {
        await new Promise((ok) => {
          v.onseeked = ok;
          v.currentTime = at;
        });
        await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
        c.drawImage(v, 0, 0, 16, 16);
        const [red, green, blue] = c.getImageData(8, 8, 1, 1).data;
        out.frames.push({ at, colour, rgb: [red, green, blue] });
      }
      return out;
    }, expect);
    console.log(JSON.stringify(r));
    assert.ok(r.ended, "plays to ended");
    assert.ok(r.audioBytes > 0, "audio decoded while playing");
    assert.ok(Math.abs(r.duration - expect.duration) < 0.05, `duration ${r.duration} vs timeline ${expect.duration}`);
    for (const o of r.onsets) {
      assert.ok(o.found !== null, `${o.freq} Hz tone not found`);
      assert.ok(Math.abs(o.found - o.expected) <= 0.04, `${o.freq} Hz tone at ${o.found} s, expected ${o.expected} s (±40 ms)`);
    }
    const channel = { red: 0, green: 1, blue: 2 };
    for (const f of r.frames) {
      const main = channel[f.colour];
      assert.ok(f.rgb[main] > 150 && f.rgb.every((x, i) => i === main || x < 100), `at ${f.at} s: ${f.rgb} is not ${f.colour}`);
    }
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
    server.close();
  }
});

// Issue 24: the recording page's player (`preload="metadata"`, `#t=0.1` on the source, as
// src/web/recordings.rs writes it) shows the screen's first frame before anything is played,
// not black. The same player without the fragment is measured too, for the log.
test("the page's player shows the first frame before it is played", async () => {
  assert.ok(dir, "RECLIFE_MUX_DIR is not set: run through `cargo test --test muxer_browser`");
  const expect = JSON.parse(fs.readFileSync(path.join(dir, "expect.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "poster.html"), `<!doctype html>
<video id=v controls preload="metadata" src="out.mp4#t=0.1" width=160 height=120></video>
<video id=w controls preload="metadata" src="out.mp4" width=160 height=120></video>
<canvas id=c width=16 height=16></canvas>`);
  const server = await serve(dir);
  const base = `http://127.0.0.1:${server.address().port}`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "reclife-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RECLIFE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    await page.goto(`${base}/poster.html`);
    const shown = async (id) => page.evaluate(async (id) => {
      const v = document.getElementById(id);
      const t0 = performance.now();
      while (v.readyState < 2 && performance.now() - t0 < 10000) await new Promise((ok) => setTimeout(ok, 50));
      await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
      const c = document.getElementById("c").getContext("2d", { willReadFrequently: true });
      c.clearRect(0, 0, 16, 16);
      c.drawImage(v, 0, 0, 16, 16);
      return { readyState: v.readyState, paused: v.paused, at: v.currentTime, rgb: [...c.getImageData(8, 8, 1, 1).data].slice(0, 3) };
    }, id);
    const withFragment = await shown("v");
    const without = await shown("w");
    console.log(JSON.stringify({ withFragment, without }));
    const first = expect.frames[0].colour;
    const main = { red: 0, green: 1, blue: 2 }[first];
    assert.ok(withFragment.readyState >= 2, `no frame shown: ${JSON.stringify(withFragment)}`);
    assert.ok(withFragment.paused, "nothing played");
    const rgb = withFragment.rgb;
    assert.ok(rgb[main] > 150 && rgb.every((x, i) => i === main || x < 100), `poster ${rgb} is not ${first}`);
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
    server.close();
  }
});
