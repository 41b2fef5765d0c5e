// Operations dashboard: the server renders it once; every few seconds this fetches
// /dashboard/data.json and redraws each part from it, numbers, tables and the SVG charts alike.
// Text goes in with textContent only: errors and names come from users and documents.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const seconds = Number(root.dataset.pollSeconds) || 5;
  // The same geometry as expertsite/dashboard_views.py.
  const VOLUME = { w: 720, h: 140, top: 16, bottom: 20 };
  const STATUS_ORDER = ["ready", "queued", "parsing", "embedding", "failed"];
  const dash = "—";

  // --- helpers --------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c != null) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const get = (data, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), data);
  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 60) return "just now";
    if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
    return `${Math.floor(s / 86400)} days ago`;
  }
  const when = (iso) => (iso ? el("time", { datetime: iso }, ago(iso)) : "");
  function format(value, kind) {
    if (value == null) return dash;
    if (kind === "ms") return `${Math.round(value)} ms`;
    return String(value);
  }
  function rows(tbody, items, render, columns) {
    tbody.replaceChildren(
      ...(items.length ? items.map(render)
        : [el("tr", { class: "none" }, el("td", { colspan: columns, class: "muted" }, "None."))]));
  }

  // --- parts ----------------------------------------------------------------------------
  function fields(data) {
    for (const node of root.ownerDocument.querySelectorAll("[data-field]")) {
      node.textContent = format(get(data, node.dataset.field), node.dataset.format);
    }
    const generated = $("generated");
    generated.dateTime = data.generated;
    generated.textContent = new Date(data.generated).toLocaleTimeString();
    $("teams").textContent = data.teams.join(", ") || "none";
  }

  function documents(data) {
    const bar = $("documents-bar");
    const statuses = [...STATUS_ORDER, ...Object.keys(data.documents).filter((s) => !STATUS_ORDER.includes(s)).sort()];
    const total = data.documents_total;
    let x = 0;
    bar.replaceChildren(...statuses.map((status) => {
      const count = data.documents[status] || 0;
      const width = total ? (100 * count) / total : 0;
      const rect = svg("rect", { class: `status-${status}`, x: x.toFixed(2), y: 0, width: width.toFixed(2), height: 6 });
      rect.appendChild(svg("title", {}, `${status}: ${count}`));
      x += width;
      return rect;
    }));
  }

  function queues(data) {
    rows($("queue-rows"), data.queues, (q) => {
      let hosts;
      if (q.error) hosts = el("span", { class: "error" }, q.error);
      else if (q.hosts.length) hosts = q.hosts.join(", ");
      else hosts = el("span", { class: "error" }, "no live worker");
      return el("tr", { "data-queue": q.queue, class: q.workers ? "" : "down" },
        el("td", {}, el("code", {}, q.queue)),
        el("td", { class: "num workers" }, q.workers),
        el("td", { class: "num depth" }, q.depth == null ? "?" : q.depth),
        el("td", { class: "hosts" }, hosts));
    }, 4);
  }

  function volume(data) {
    const chart = $("volume-chart");
    const hours = data.chat.per_hour;
    const top = Math.max(1, ...hours.map((h) => h.count));
    const slot = VOLUME.w / Math.max(hours.length, 1);
    const plot = VOLUME.h - VOLUME.top - VOLUME.bottom;
    const bars = chart.querySelector(".bars"), ticks = chart.querySelector(".ticks");
    bars.replaceChildren(); ticks.replaceChildren();
    hours.forEach((h, i) => {
      const height = (plot * h.count) / top;
      const x = i * slot + slot * 0.12;
      const rect = svg("rect", {
        x: x.toFixed(1), y: (VOLUME.h - VOLUME.bottom - height).toFixed(1),
        width: (slot * 0.76).toFixed(1), height: height.toFixed(1), "data-count": h.count,
      });
      rect.appendChild(svg("title", {}, `${h.label}: ${h.count}`));
      bars.appendChild(rect);
      if (i % 6 === 0) ticks.appendChild(svg("text", { x: x.toFixed(1), y: VOLUME.h - 4 }, h.label));
    });
    chart.querySelector(".peak").textContent = `peak ${Math.max(0, ...hours.map((h) => h.count))} per hour`;
  }

  function minibar(kind, value) {
    const bar = svg("svg", { class: `minibar ${kind}`, viewBox: "0 0 1 1", preserveAspectRatio: "none" });
    bar.appendChild(svg("rect", { class: "track", width: 1, height: 1 }));
    bar.appendChild(svg("rect", { width: value || 0, height: 1 }));
    return bar;
  }

  function evaluations(data) {
    const list = $("evaluation-list");
    if (!data.evaluations.length) { list.replaceChildren(el("p", { class: "muted" }, "No evaluations yet.")); return; }
    list.replaceChildren(...data.evaluations.map((ev) => {
      const active = ev.status === "queued" || ev.status === "running";
      const article = el("article", { class: "expert-eval", "data-run": ev.run_id },
        el("h3", {}, el("a", { href: ev.url }, ev.expert), " ", el("span", { class: "muted" }, ev.team), " ",
          el("span", { class: `badge ${ev.status}` }, ev.status),
          active ? el("span", { class: "muted" }, ` ${ev.done} / ${ev.total}`) : null));
      if (ev.scores.length) {
        article.append(el("table", { class: "scores" },
          el("thead", {}, el("tr", {}, el("th", {}, "Mode"), el("th", {}, "Containment"), el("th", {}, "F1"))),
          el("tbody", {}, ...ev.scores.map((s) => el("tr", { "data-mode": s.mode },
            el("td", {}, el("code", {}, s.mode)),
            el("td", {}, minibar("containment", s.containment), " ",
              el("span", { class: "value" }, s.containment == null ? dash : `${Math.round(100 * s.containment)}%`)),
            el("td", {}, minibar("f1", s.f1), " ",
              el("span", { class: "value" }, s.f1 == null ? dash : Number(s.f1).toFixed(2))))))));
      }
      if (ev.recommendation) article.append(el("p", { class: "recommendation-text" }, ev.recommendation));
      return article;
    }));
  }

  function failures(data) {
    rows($("job-failures"), data.jobs.failures, (j) => el("tr", {},
      el("td", {}, el("a", { href: j.url }, `#${j.id}`), " ", el("span", { class: "muted" }, j.team)),
      el("td", {}, j.dataset), el("td", { class: "reason" }, j.error), el("td", {}, when(j.finished))), 4);
    rows($("message-errors"), data.errors.messages, (m) => el("tr", {},
      el("td", {}, m.expert), el("td", { class: "reason" }, m.error), el("td", {}, when(m.created))), 3);
    rows($("document-errors"), data.errors.documents, (d) => el("tr", {},
      el("td", {}, el("a", { href: d.url }, d.title)), el("td", {}, d.collection),
      el("td", { class: "reason" }, d.error), el("td", {}, when(d.updated))), 4);
  }

  function generation(data) {
    const pairs = Object.entries(data.generation.backends);
    const box = $("generation-backends");
    if (!pairs.length) box.replaceChildren(el("span", { class: "muted" }, "none (all use the default)"));
    else box.replaceChildren(...pairs.flatMap(([m, b]) => [el("code", {}, `${m}=${b}`), " "]));
    $("generation-resolved").replaceChildren(...data.generation.resolved.map((r) => el("div", {},
      el("code", {}, r.base_model), " → ", el("code", {}, r.backend),
      r.note ? el("span", { class: "muted" }, ` (${r.note})`) : null)));
  }

  function render(data) {
    fields(data); documents(data); queues(data); volume(data); evaluations(data); failures(data); generation(data);
  }

  // --- polling --------------------------------------------------------------------------
  const live = $("live");
  async function poll() {
    try {
      const resp = await fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      render(await resp.json());
      live.textContent = "live";
      live.className = "badge ready";
      live.title = `refreshed every ${seconds} seconds`;
    } catch (e) {
      // Stale numbers stay on screen, marked as such, until the server answers again.
      live.textContent = "stale";
      live.className = "badge failed";
      live.title = String(e);
    }
    setTimeout(poll, seconds * 1000);
  }
  setTimeout(poll, seconds * 1000);
})();
