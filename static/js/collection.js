// Collection page: drag-and-drop upload of files and folders with a progress bar per
// file, and document status kept live over a websocket.
(function () {
  "use strict";
  const table = document.getElementById("documents");
  if (!table) return;
  const collectionId = table.dataset.collection;
  const canEdit = table.dataset.canEdit === "1";
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const tbody = table.querySelector("tbody");
  const uploads = document.getElementById("uploads");
  const live = document.getElementById("live");

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // --- the document table -------------------------------------------------------------
  function renderRow(d) {
    let row = tbody.querySelector(`tr[data-id="${d.id}"]`);
    if (d.deleted) { if (row) row.remove(); return; }
    if (!row) { row = el("tr", { "data-id": d.id }); tbody.appendChild(row); }
    row.replaceChildren();
    const name = el("td");
    name.appendChild(el("a", { href: `/knowledge/documents/${d.id}/` }, d.source_path));
    const status = el("td");
    status.appendChild(el("span", { class: `badge ${d.status}` }, d.status));
    if (d.error) status.appendChild(el("div", { class: "error reason" }, d.error));
    const actions = el("td", { class: "actions" });
    if (canEdit) {
      actions.appendChild(el("button", { "data-action": "reindex" }, "Re-index"));
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(el("button", { class: "danger", "data-action": "delete" }, "Delete"));
    }
    row.append(name, status, el("td", {}, String(d.version)), el("td", {}, d.pages == null ? "" : String(d.pages)),
      el("td", {}, String(d.chunks)), actions);
  }

  tbody.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr");
    const id = row.dataset.id;
    const action = button.dataset.action;
    if (action === "delete" && !confirm("Delete this document and its passages?")) return;
    const resp = await fetch(action === "delete" ? `/api/documents/${id}` : `/api/documents/${id}/reindex`, {
      method: action === "delete" ? "DELETE" : "POST",
      headers: { "X-CSRFToken": csrf },
      credentials: "same-origin",
    });
    if (!resp.ok) { alert(`Could not ${action}: ${resp.status}`); return; }
    if (action === "delete") row.remove(); else renderRow(toRow(await resp.json()));
  });

  function toRow(d) {
    return { id: d.id, source_path: d.source_path, status: d.status, error: d.error, version: d.version,
      pages: d.pages, chunks: d.chunks };
  }

  // --- live status --------------------------------------------------------------------
  let retry = 500;
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/knowledge/collections/${collectionId}/`);
    ws.onopen = () => { live.textContent = "live"; live.className = "badge ready"; retry = 500; };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type === "document") renderRow(data);
    };
    ws.onclose = () => {
      live.textContent = "reconnecting…"; live.className = "badge";
      setTimeout(connect, retry); retry = Math.min(retry * 2, 10000);
    };
  }
  connect();

  // --- uploads ------------------------------------------------------------------------
  if (!canEdit) return;
  const zone = document.getElementById("dropzone");

  function uploadOne(file, path) {
    const item = el("li");
    const label = el("span", {}, path);
    const bar = el("progress", { max: "100", value: "0" });
    const state = el("span", { class: "muted" }, "uploading");
    item.append(label, bar, state);
    uploads.prepend(item);
    return new Promise((resolve) => {
      const form = new FormData();
      form.append("files", file, file.name);
      form.append("paths", path);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `/api/collections/${collectionId}/documents`);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100); };
      xhr.onload = () => {
        bar.value = 100;
        let results = [];
        try { results = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: shown below */ }
        if (xhr.status !== 200 || !Array.isArray(results)) {
          let detail = xhr.statusText;
          try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (e) { /* keep */ }
          state.textContent = "failed"; state.className = "error";
          item.appendChild(el("div", { class: "error reason" }, `Upload failed (${xhr.status}): ${detail}`));
        } else {
          const r = results[0];
          state.textContent = r.status; state.className = r.status === "rejected" ? "error" : "ok";
          if (r.error) item.appendChild(el("div", { class: "error reason" }, r.error));
          if (r.status === "skipped") item.appendChild(el("div", { class: "muted reason" }, "Same file already in this collection."));
          if (r.document) renderRow(toRow(r.document));
        }
        resolve();
      };
      xhr.onerror = () => { state.textContent = "network error"; state.className = "error"; resolve(); };
      xhr.send(form);
    });
  }

  async function uploadAll(entries) {
    // Two at a time: progress stays readable and the server is not flooded.
    const queue = entries.slice();
    const workers = [0, 1].map(async () => {
      while (queue.length) { const [f, p] = queue.shift(); await uploadOne(f, p); }
    });
    await Promise.all(workers);
  }

  function readEntry(entry, prefix) {
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((f) => resolve([[f, prefix + f.name]]), () => resolve([]));
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const all = [];
        const next = () => reader.readEntries(async (batch) => {
          if (!batch.length) {
            const nested = await Promise.all(all.map((e) => readEntry(e, `${prefix}${entry.name}/`)));
            resolve(nested.flat());
          } else { all.push(...batch); next(); }
        }, () => resolve([]));
        next();
      } else resolve([]);
    });
  }

  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault(); zone.classList.remove("over");
    const items = Array.from(e.dataTransfer.items || []);
    let files = [];
    if (items.length && items[0].webkitGetAsEntry) {
      const lists = await Promise.all(items.map((i) => i.webkitGetAsEntry()).filter(Boolean).map((en) => readEntry(en, "")));
      files = lists.flat();
    } else {
      files = Array.from(e.dataTransfer.files).map((f) => [f, f.name]);
    }
    uploadAll(files);
  });
  for (const id of ["file-input", "folder-input"]) {
    document.getElementById(id).addEventListener("change", (e) => {
      uploadAll(Array.from(e.target.files).map((f) => [f, f.webkitRelativePath || f.name]));
      e.target.value = "";
    });
  }
})();
