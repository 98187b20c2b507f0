// reclife operators' pages: the little that needs a browser. Plain JavaScript, no build step.
// Everything but live job progress works without it.
"use strict";

// Times are rendered in UTC; add the browser's local time beside each.
function showLocalTimes(root) {
  for (const t of root.querySelectorAll("time[data-local]")) {
    if (t.nextElementSibling && t.nextElementSibling.classList.contains("local")) continue;
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    const s = document.createElement("span");
    s.className = "local";
    s.textContent = " (local: " + d.toLocaleString() + ")";
    t.after(s);
  }
}

// A job's page follows the job through the API's server-sent events until it ends.
function followJob() {
  const box = document.getElementById("job");
  if (!box || box.dataset.live !== "1" || !window.EventSource) return;
  const id = box.dataset.job;
  const status = document.getElementById("live-status");
  const badge = document.getElementById("job-state");
  const es = new EventSource("/api/v1/jobs/" + encodeURIComponent(id) + "/events");
  // Started and Finished move with the state, so a page never says "succeeded" beside
  // "Finished: not yet" (or "never").
  const stamp = (ddId, iso) => {
    const dd = document.getElementById(ddId);
    if (!dd || !iso || dd.querySelector("time")) return;
    const t = document.createElement("time");
    t.setAttribute("datetime", iso);
    t.dataset.local = "";
    t.textContent = iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$|\+00:00$/, "") + " UTC";
    dd.replaceChildren(t);
    showLocalTimes(dd);
  };
  const task = document.getElementById("live-task");
  const apply = (p) => {
    badge.innerHTML = "";
    const b = document.createElement("span");
    b.className = "badge " + p.job.state;
    b.textContent = p.job.state;
    badge.append(b);
    stamp("job-started", p.job.started);
    stamp("job-finished", p.job.finished);
    if (task && p.live) {
      const l = p.live;
      task.textContent = "Task " + l.task + ": " + l.recordings + " of " + l.total + " recordings, " +
        l.bytes.toLocaleString("en") + " bytes";
    }
    p.rows.forEach((row, i) => {
      const tr = document.querySelector('#progress tr[data-task="' + i + '"]');
      if (!tr) return;
      let total = 0;
      for (const n of Object.values(row)) total += n;
      for (const td of tr.querySelectorAll("td[data-count]")) td.textContent = row[td.dataset.count] || 0;
      const bar = tr.querySelector("progress");
      if (bar) {
        bar.max = Math.max(total, 1);
        bar.value = total - (row.planned || 0);
        bar.textContent = bar.value + " of " + total;
      }
    });
  };
  es.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    apply(p);
    status.textContent = "Live: " + p.job.state + ".";
  });
  es.addEventListener("end", (e) => {
    const p = JSON.parse(e.data);
    es.close();
    apply(p);
    status.textContent = "The job ended: " + p.job.state + ". Loading its outcome…";
    // The server renders the outcome (failed items, archives): load it.
    setTimeout(() => location.replace(location.pathname), 800);
  });
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) status.textContent = "Live updates stopped: reload the page.";
    else status.textContent = "Reconnecting…";
  });
}

// Forms marked data-stay (Start and Cancel on a job's page) are sent without leaving the page,
// so the live progress goes on; without this script they post and come back as usual.
function stayOnPage() {
  const status = document.getElementById("live-status");
  for (const f of document.querySelectorAll("form[data-stay]")) {
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const buttons = f.querySelectorAll("button");
      try {
        const r = await fetch(f.action, {
          method: "POST",
          body: new URLSearchParams(new FormData(f)),
          credentials: "same-origin",
        });
        if (!r.ok) throw new Error("the server answered " + r.status);
        if (status) status.textContent = f.dataset.stay;
        if (f.dataset.stayHide !== undefined) f.hidden = true;
      } catch (err) {
        if (status) status.textContent = "Not sent (" + err.message + "): reload the page and try again.";
      } finally {
        setTimeout(() => { for (const b of buttons) b.disabled = false; }, 0);
      }
    });
  }
}

// A form is sent once: its buttons are disabled while the next page loads.
function sendOnce() {
  document.addEventListener("submit", (e) => {
    const f = e.target;
    if (f.method.toLowerCase() !== "post") return;
    setTimeout(() => { for (const b of f.querySelectorAll("button")) b.disabled = true; }, 0);
  });
}

// A video shows its frame at 0.1 s as its poster (`#t=0.1`); played, it starts from 0.
function playFromStart() {
  for (const v of document.querySelectorAll('video[src*="#t="]')) {
    v.addEventListener("play", () => { if (v.currentTime <= 0.2) v.currentTime = 0; }, { once: true });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  showLocalTimes(document);
  playFromStart();
  followJob();
  stayOnPage();
  sendOnce();
});
