/**
 * The status page: one self-contained HTML file (inline CSS and JS, no build
 * step, nothing fetched from elsewhere). It reads /api/stream with fetch()
 * rather than EventSource so that it can send the bearer token, which it
 * takes from the URL's fragment (#token=...; fragments never reach servers
 * or their logs). Health colours roll up as Cockpit's do: a leg's state
 * makes its LV's, the worst LV makes its VG's, the worst VG the page's.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ulvm status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.2em 0 .4em}
.meta{color:#666;font-size:.9em}
.dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.4em;vertical-align:-.05em}
.green>.row>.dot,.dot.green{background:#3e8635}.amber>.row>.dot,.dot.amber{background:#f0ab00}.red>.row>.dot,.dot.red{background:#c9190b}
.vg,.lv{border:1px solid #ddd;border-radius:6px;background:#fff;margin:.5em 0;padding:.4em .8em}
.lv{margin-left:1.2em}.legs{margin:.2em 0 .2em 2.4em;border-collapse:collapse}
.legs td{padding:.1em .8em .1em 0}.state{font-weight:600}
.bar{display:inline-block;width:12em;height:.7em;background:#eee;border-radius:3px;vertical-align:middle;overflow:hidden}
.bar>i{display:block;height:100%;background:#06c}
.job{margin:.2em 0 .2em 2.4em;color:#333}
#events{border-collapse:collapse;width:100%;background:#fff}
#events td,#events th{border-bottom:1px solid #eee;padding:.2em .6em;text-align:left;font-size:.9em}
.sev-error{color:#c9190b}.sev-warning{color:#a66f00}
#conn{float:right}
</style></head>
<body>
<div id="conn" class="meta">connecting…</div>
<h1><span id="overall" class="dot"></span>ulvm</h1>
<div class="meta" id="daemon"></div>
<div id="tree"></div>
<h2>Recent events</h2>
<table id="events"><thead><tr><th>#</th><th>time</th><th>event</th><th>where</th><th>what happened</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? { Authorization: "Bearer " + token } : {};
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const bytes = (n) => { const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; };
const dur = (s) => { s = Math.round(s); const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), x = s % 60; return (h ? h + "h" : "") + (h || m ? m + "m" : "") + x + "s"; };
const HEALTH_TEXT = { ok: "healthy", degraded: "degraded: redundancy lost, repair to restore it", partial: "partial: data unavailable" };
function job(label, p) {
  if (!p) return "";
  const pct = (p.ratio * 100).toFixed(1);
  const rate = p.rateBytesPerSec !== undefined && p.rateBytesPerSec !== null ? bytes(p.rateBytesPerSec) + "/s" : "measuring rate…";
  const eta = p.etaSeconds !== undefined && p.etaSeconds !== null ? ", " + dur(p.etaSeconds) + " to go" : "";
  return '<div class="job" data-job="' + esc(label) + '" data-percent="' + pct + '">' + esc(label) + " (" + esc(p.action) + '): <span class="bar"><i style="width:' + pct + '%"></i></span> <span class="pct">' + pct + "%</span> " + esc(bytes(p.doneBytes)) + " of " + esc(bytes(p.totalBytes)) + ", " + rate + eta + "</div>";
}
function render(st) {
  document.getElementById("overall").className = "dot " + st.color;
  document.getElementById("daemon").textContent = "ulvmd " + st.version + " (pid " + st.pid + "), " + st.nbdConnections + " NBD connection(s), " + new Date(st.time).toLocaleTimeString();
  let h = "";
  if (!st.vgs.length) h = '<p class="meta">No active logical volumes.</p>';
  for (const vg of st.vgs) {
    h += '<div class="vg ' + vg.color + '" data-vg="' + esc(vg.name) + '" data-color="' + vg.color + '"><div class="row"><span class="dot"></span><b>VG ' + esc(vg.name) + "</b></div>";
    for (const lv of vg.lvs) {
      h += '<div class="lv ' + lv.color + '" data-lv="' + esc(lv.vg + "/" + lv.lv) + '" data-color="' + lv.color + '" data-health="' + lv.health + '"><div class="row"><span class="dot"></span><b>' + esc(lv.lv) + "</b> " + esc(lv.segtype) + ", " + bytes(lv.sizeBytes) + ' — <span class="state">' + esc(HEALTH_TEXT[lv.health] || lv.health) + "</span>" + (lv.suspended ? " (suspended)" : "") + (lv.openCount ? ", open" : "") + "</div>";
      h += job("sync", lv.sync);
      if (lv.scrub) h += lv.scrub.running ? job("scrub", lv.scrub) : '<div class="job">last ' + esc(lv.scrub.action) + ": " + lv.scrub.mismatchSectors + " mismatched sectors</div>";
      if (lv.legs.length) {
        h += '<table class="legs">';
        for (const g of lv.legs) h += '<tr data-leg="' + esc(g.name) + '" data-state="' + g.state + '"><td><span class="dot ' + g.color + '"></span>' + esc(g.name) + "</td><td>" + esc(g.pv || "—") + '</td><td class="state">' + esc(g.state.replace("_", " ")) + "</td><td>" + (g.errors ? g.errors + " error(s)" : "") + "</td></tr>";
        h += "</table>";
      }
      h += "</div>";
    }
    h += "</div>";
  }
  document.getElementById("tree").innerHTML = h;
}
const events = [];
function renderEvents() {
  const rows = events.slice(-50).reverse().map((e) => {
    const where = [e.vg && e.lv ? e.vg + "/" + e.lv : e.vg, e.leg, e.pv].filter(Boolean).join(" ");
    return '<tr class="sev-' + esc(e.severity) + '"><td>' + e.id + "</td><td>" + esc(new Date(e.time).toLocaleString()) + "</td><td>" + esc(e.name) + "</td><td>" + esc(where) + "</td><td>" + esc(e.details && typeof e.details.message === "string" ? e.details.message : e.details ? JSON.stringify(e.details) : "") + "</td></tr>";
  });
  document.querySelector("#events tbody").innerHTML = rows.join("") || '<tr><td colspan="5" class="meta">none</td></tr>';
}
function onFrame(type, data) {
  if (type === "status") render(JSON.parse(data));
  else if (type === "events") { events.length = 0; events.push(...JSON.parse(data)); renderEvents(); }
  else if (type === "ulvm-event") { const e = JSON.parse(data); if (!events.some((x) => x.id === e.id)) events.push(e); renderEvents(); }
}
async function stream() {
  const conn = document.getElementById("conn");
  for (;;) {
    try {
      const res = await fetch("api/stream", { headers, cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      conn.textContent = "live";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\\n\\n")) >= 0) {
          const frame = buf.slice(0, i); buf = buf.slice(i + 2);
          let type = "message", data = "";
          for (const line of frame.split("\\n")) {
            if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          onFrame(type, data);
        }
      }
      conn.textContent = "disconnected, retrying…";
    } catch (e) {
      conn.textContent = "disconnected (" + e.message + "), retrying…";
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
stream();
</script>
</body></html>
`;
