// Training job page: numbers, buttons and the loss chart kept live over a websocket.
// The chart is plain SVG drawn here (no libraries): train loss as a line, eval loss as dots.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const jobId = root.dataset.job;
  const SVG = "http://www.w3.org/2000/svg";
  const W = 640, H = 260, PAD = { left: 52, right: 14, top: 14, bottom: 30 };
  const ACTIVE = ["queued", "running"];
  const RETRYABLE = ["failed", "cancelled"];

  const $ = (id) => document.getElementById(id);
  const chart = $("loss-chart");
  const loss = new Map(); // step -> train loss
  const evals = new Map(); // step -> eval loss
  let status = root.dataset.status;
  let totalSteps = 0;

  // --- formatting ---------------------------------------------------------------------
  const dash = "—";
  const fixed = (v, n) => (v == null ? dash : Number(v).toFixed(n));
  function duration(s) {
    if (s == null) return dash;
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${sec}s`;
    return `${sec}s`;
  }
  const lr = (v) => (v == null ? dash : Number(v).toExponential(2));
  const mem = (v) => (v == null ? dash : `${Math.round(v)} MB`);

  // --- applying an event ----------------------------------------------------------------
  function addPoints(points) {
    for (const p of points || []) {
      if (p.loss != null) loss.set(p.step, p.loss);
      if (p.eval_loss != null) evals.set(p.step, p.eval_loss);
    }
  }

  function apply(ev, replace) {
    if (replace) { loss.clear(); evals.clear(); }
    addPoints(ev.last);
    totalSteps = ev.total_steps || 0;
    const previous = status;
    status = ev.status;
    root.dataset.status = status;
    const badge = $("job-status");
    badge.textContent = status;
    badge.className = `badge ${status}`;
    $("job-step").textContent = ev.step;
    $("job-total").textContent = totalSteps || "?";
    const bar = $("job-progress");
    if (totalSteps) { bar.max = totalSteps; bar.value = ev.step; } else bar.removeAttribute("value");
    $("train-loss").textContent = fixed(ev.train_loss, 4);
    $("eval-loss").textContent = fixed(ev.eval_loss, 4);
    $("learning-rate").textContent = lr(ev.learning_rate);
    $("tokens-per-s").textContent = ev.tokens_per_s == null ? dash : Math.round(ev.tokens_per_s);
    $("eta").textContent = ACTIVE.includes(status) ? duration(ev.eta_s) : dash;
    $("peak-mem").textContent = mem(ev.peak_mem_mb);
    const error = $("job-error");
    error.hidden = !ev.error || status === "succeeded";
    error.querySelector("strong").textContent = status === "cancelled" ? "Cancelled:" : "Failed:";
    error.querySelector(".reason").textContent = ev.error || "";
    $("cancel-form").hidden = !ACTIVE.includes(status);
    $("retry-form").hidden = !RETRYABLE.includes(status);
    draw();
    if (previous !== status) refreshDetails();
  }

  // The log, worker and adapter are not in the progress events: on a status change, take
  // them from a fresh render of this page rather than reloading it.
  async function refreshDetails() {
    try {
      const resp = await fetch(location.pathname, { credentials: "same-origin" });
      if (!resp.ok) return;
      const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
      const details = fresh.getElementById("job-details");
      if (details) $("job-details").replaceWith(details);
      scrollLog();
    } catch (e) { /* the numbers stay live; the details wait for the next change */ }
  }

  function scrollLog() {
    const log = $("job-log");
    if (log) log.scrollTop = log.scrollHeight;
  }

  // --- the chart ------------------------------------------------------------------------
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function draw() {
    const ls = [...loss.entries()].sort((a, b) => a[0] - b[0]);
    const es = [...evals.entries()].sort((a, b) => a[0] - b[0]);
    chart.dataset.lossPoints = String(ls.length);
    chart.dataset.evalPoints = String(es.length);
    const grid = chart.querySelector(".grid"), labels = chart.querySelector(".labels");
    const line = chart.querySelector(".loss-line");
    const lossDots = chart.querySelector(".loss-dots"), evalDots = chart.querySelector(".eval-dots");
    grid.replaceChildren(); labels.replaceChildren(); lossDots.replaceChildren(); evalDots.replaceChildren();
    const values = [...ls, ...es].map(([, v]) => v);
    if (!values.length) {
      line.setAttribute("points", "");
      labels.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" },
        "no loss yet"));
      return;
    }
    const maxStep = Math.max(totalSteps, ...ls.map(([s]) => s), ...es.map(([s]) => s), 1);
    let lo = Math.min(...values), hi = Math.max(...values);
    if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
    const pad = (hi - lo) * 0.08;
    lo = Math.max(0, lo - pad); hi += pad;
    const x = (step) => PAD.left + (step / maxStep) * (W - PAD.left - PAD.right);
    const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);

    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      grid.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
      labels.appendChild(svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(2)));
    }
    labels.appendChild(svg("text", { x: PAD.left, y: H - 8, "text-anchor": "start" }, "0"));
    labels.appendChild(svg("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end" }, `step ${maxStep}`));

    line.setAttribute("points", ls.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    // Dots on the train line only while they stay readable; the last point always gets one.
    const dotted = ls.length <= 80 ? ls : ls.slice(-1);
    for (const [s, v] of dotted) {
      const dot = svg("circle", { cx: x(s), cy: y(v), r: 2.5, class: "loss-dot", "data-step": s });
      dot.appendChild(svg("title", {}, `step ${s}: loss ${v}`));
      lossDots.appendChild(dot);
    }
    for (const [s, v] of es) {
      const dot = svg("circle", { cx: x(s), cy: y(v), r: 4.5, class: "eval-dot", "data-step": s });
      dot.appendChild(svg("title", {}, `step ${s}: eval loss ${v}`));
      evalDots.appendChild(dot);
    }
  }

  // --- live -----------------------------------------------------------------------------
  const live = $("live");
  let retry = 500;
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/training/jobs/${jobId}/`);
    ws.onopen = () => { live.textContent = "live"; live.className = "badge ready"; retry = 500; };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      // A snapshot (sent on every connect) carries the whole history: it replaces the chart,
      // so nothing pushed while the socket was down is missing.
      if (data.type === "snapshot") apply(data, true);
      else if (data.type === "progress") apply(data, false);
    };
    ws.onclose = (ev) => {
      live.className = "badge";
      if (ev.code >= 4400 && ev.code < 4500) { live.textContent = "not allowed"; return; }
      live.textContent = "reconnecting…";
      setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
    };
  }

  apply(JSON.parse($("job-event").textContent), true);
  scrollLog();
  connect();
})();
