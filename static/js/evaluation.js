// Evaluation pages: the new-evaluation form offers only what applies to the chosen expert,
// and the report follows a running evaluation by polling its progress every 2 seconds.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  // --- the form -------------------------------------------------------------------------
  const form = $("evaluation-form");
  if (form) {
    const expert = form.querySelector("select[name=expert]");
    const dataset = form.querySelector("select[name=dataset]");
    const modes = [...form.querySelectorAll("input[name=modes]")];
    const sources = [...form.querySelectorAll("input[name=source]")];

    const chosenExpert = () => expert.options[expert.selectedIndex];

    function syncModes() {
      const option = chosenExpert();
      const hasAdapter = option && option.dataset.adapter === "yes";
      for (const box of modes) {
        if (box.dataset.needsAdapter !== "yes") continue;
        box.disabled = !hasAdapter;
        if (!hasAdapter) box.checked = false;
        box.closest("label").title = hasAdapter ? "" : "This expert has no adapter";
      }
    }

    // Questions come from the expert's own team: hide other teams' datasets.
    function syncDatasets() {
      const option = chosenExpert();
      if (!dataset || !option) return;
      const team = option.dataset.team;
      for (const o of dataset.options) {
        const other = o.dataset.team && o.dataset.team !== team;
        o.hidden = other;
        o.disabled = other;
        if (other && o.selected) dataset.value = "";
      }
    }

    function syncSource() {
      const chosen = sources.find((r) => r.checked);
      for (const box of form.querySelectorAll("[data-source]")) {
        box.hidden = !chosen || box.dataset.source !== chosen.value;
      }
    }

    expert.addEventListener("change", () => { syncModes(); syncDatasets(); });
    sources.forEach((r) => r.addEventListener("change", syncSource));
    syncModes(); syncDatasets(); syncSource();
  }

  // --- the training overview's latest evaluations ------------------------------------------
  // Rendered by the server when the overview view passes them; otherwise borrowed from the
  // evaluations page (the same permission-checked table), trimmed to the newest few.
  const latest = $("evaluations-latest");
  if (latest && !latest.querySelector("table")) {
    fetch(latest.dataset.src, { credentials: "same-origin" })
      .then((resp) => (resp.ok ? resp.text() : ""))
      .then((html) => {
        const table = html && new DOMParser().parseFromString(html, "text/html").getElementById("evaluations");
        if (!table) return;
        const limit = Number(latest.dataset.limit) || 10;
        [...table.tBodies[0].rows].slice(limit).forEach((r) => r.remove());
        latest.replaceChildren(table);
      })
      .catch(() => { /* the link to all evaluations is still there */ });
  }

  // --- the report -----------------------------------------------------------------------
  const root = $("evaluation");
  if (!root) return;
  const live = $("live");
  let status = root.dataset.status;

  function apply(p) {
    const changed = p.status !== status;
    status = p.status;
    root.dataset.status = status;
    const badge = $("evaluation-status");
    badge.textContent = status;
    badge.className = `badge ${status}`;
    $("evaluation-done").textContent = p.done;
    $("evaluation-total").textContent = p.total;
    const bar = $("evaluation-progress-bar");
    bar.max = p.total || 1;
    bar.value = p.done;
    const error = $("evaluation-error");
    error.hidden = !p.error;
    error.querySelector(".reason").textContent = p.error || "";
    live.hidden = !p.active;
    return changed;
  }

  // The metrics, charts and answers are rendered by the server: take them from a fresh
  // render of this page rather than reloading it, so the reader keeps their place.
  async function refreshReport() {
    try {
      const resp = await fetch(location.pathname, { credentials: "same-origin" });
      if (!resp.ok) return;
      const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
      const report = fresh.getElementById("evaluation-report");
      const open = new Set([...document.querySelectorAll("details.question[open]")].map((d) => d.dataset.ordinal));
      if (report) $("evaluation-report").replaceWith(report);
      for (const d of document.querySelectorAll("details.question")) {
        if (open.has(d.dataset.ordinal)) d.open = true;
      }
    } catch (e) { /* the next change tries again */ }
  }

  let lastDone = Number($("evaluation-done").textContent);
  async function poll() {
    try {
      const resp = await fetch(root.dataset.progressUrl, { credentials: "same-origin" });
      if (resp.ok) {
        const p = await resp.json();
        const changed = apply(p);
        // New answers while running show up in the question list every ten of them;
        // the finished report (metrics, charts, recommendation) when the status changes.
        if (changed || p.done - lastDone >= 10) { lastDone = p.done; await refreshReport(); }
        if (!p.active) return;
      }
    } catch (e) { /* keep polling: the server may be restarting */ }
    setTimeout(poll, 2000);
  }

  const first = JSON.parse($("evaluation-progress").textContent);
  if (first.active) setTimeout(poll, 2000);
})();
