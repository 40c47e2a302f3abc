// The status page: polls /api/status and /api/history and draws them. No
// build step, no libraries.
"use strict";

const colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let interval = 1000;

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
}
const rate = (n) => bytes(n) + "/s";
const rtt = (ms) => (ms > 0 ? ms.toFixed(ms < 10 ? 2 : 0) + " ms" : "–");

// el builds an element: el("td", {class: "x"}, "text", child, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}
const row = (attrs, cells) => el("tr", attrs, ...cells.map((c) => el("td", typeof c === "object" ? c : {}, typeof c === "object" ? c.text : c)));
const head = (names) => el("tr", {}, ...names.map((n) => el("th", {}, n)));

function pathTable(paths) {
  const t = el("table", { class: "paths" }, head(["path", "state", "RTT", "throughput ↑", "throughput ↓", "sent", "received", "retransmitted", "failures"]));
  for (const p of paths) {
    t.append(row({ class: "path", "data-path": p.name, "data-rate": p.rate_sent + p.rate_received, "data-state": p.state }, [
      p.name + (p.backup ? " (backup)" : ""),
      { class: "state-" + p.state, text: p.state },
      rtt(p.rtt_ms), rate(p.rate_sent), rate(p.rate_received),
      bytes(p.bytes_sent), bytes(p.bytes_received), bytes(p.retransmitted), String(p.fails),
    ]));
  }
  return t;
}

function sessionTable(sessions, now) {
  const t = el("table", { class: "sessions" }, head(["#", "target", "age", "streams", "throughput ↑", "throughput ↓", "sent", "received", "paths (RTT, throughput)"]));
  for (const s of sessions) {
    const paths = s.paths.map((p) => `${p.name} ${p.state} ${rtt(p.rtt_ms)} ${rate(p.rate_sent + p.rate_received)}`).join("; ");
    const age = Math.max(0, (now - Date.parse(s.started)) / 1000);
    t.append(row({ class: "session", "data-id": s.id }, [
      String(s.id), { class: "text", text: s.target }, age.toFixed(0) + " s", s.tunnel ? String(s.streams_open) : "–",
      rate(s.rate_sent), rate(s.rate_received), bytes(s.bytes_sent), bytes(s.bytes_received),
      { class: "text", text: paths },
    ]));
  }
  return t;
}

// streamTable lists a tunnel's open streams: the oldest 100 at most, of
// maybe thousands.
function streamTable(s) {
  const shown = s.streams_open > s.streams.length ? `, the oldest ${s.streams.length} shown` : "";
  const t = el("table", { class: "streams", "data-session": s.id },
    el("caption", {}, `tunnel #${s.id}: ${s.streams_open} stream${s.streams_open === 1 ? "" : "s"} open${shown}`),
    head(["stream", "target", "sent", "received"]));
  for (const st of s.streams) {
    t.append(row({ class: "stream", "data-target": st.target, "data-bytes": st.bytes_sent + st.bytes_received }, [
      String(st.id), { class: "text", text: st.target }, bytes(st.bytes_sent), bytes(st.bytes_received),
    ]));
  }
  return t;
}

function renderStatus(report) {
  const now = Date.parse(report.time);
  const box = document.getElementById("sources");
  box.replaceChildren();
  for (const src of report.sources) {
    const list = (m) => Object.entries(m).map(([r, n]) => `${r} ${n}`).join(", ") || "none";
    box.append(
      el("h2", {}, `${src.side} ${src.tag}`),
      el("p", { class: "counters" },
        `sessions open ${src.sessions_open}, total ${src.sessions_total}; ` +
        `streams open ${src.streams.open}, total ${src.streams.total}; UDP associations ${src.udp_associations}` +
        (src.side === "server" ? `; handshakes refused: ${list(src.refusals)}; streams refused: ${list(src.streams.refused)}` : "")),
      pathTable(src.paths),
      src.sessions.length ? sessionTable(src.sessions, now) : el("p", {}, "no live session"),
      ...src.sessions.filter((s) => s.streams.length).map(streamTable),
    );
  }
  document.getElementById("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
}

function renderHistory(h) {
  interval = Math.max(200, h.interval * 1000);
  const slots = Math.max(2, Math.round(h.window / h.interval));
  document.getElementById("window").textContent = Math.round(h.window / 60) + " min";
  const canvas = document.getElementById("chart");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 70, bottom = 20, top = 10;
  ctx.clearRect(0, 0, W, H);
  const n = h.times.length;
  let peak = 1;
  for (const s of h.series) for (const v of s.rates) peak = Math.max(peak, v);
  // The newest sample is at the right edge; the chart fills leftwards.
  const x = (i) => left + ((W - left - 10) * (slots - n + i)) / (slots - 1);
  const y = (v) => H - bottom - ((H - bottom - top) * v) / peak;
  ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
  for (let g = 0; g <= 4; g++) {
    const v = (peak * g) / 4;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(W - 10, y(v)); ctx.stroke();
    ctx.fillText(rate(v), 2, y(v) + 4);
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  h.series.forEach((s, k) => {
    const color = colors[k % colors.length];
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    s.rates.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
    const last = s.rates.length ? s.rates[s.rates.length - 1] : 0;
    legend.append(el("li", { class: "series", "data-path": s.path, "data-last": last },
      el("span", { style: "background:" + color }), `${s.side} ${s.tag} ${s.path}: ${rate(last)}`));
  });
}

async function poll() {
  try {
    const [status, history] = await Promise.all([
      fetch("api/status").then((r) => r.json()),
      fetch("api/history").then((r) => r.json()),
    ]);
    renderStatus(status);
    renderHistory(history);
  } catch (e) {
    document.getElementById("updated").textContent = "no answer: " + e;
  }
  setTimeout(poll, interval);
}
poll();
