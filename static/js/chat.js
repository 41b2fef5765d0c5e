// Chat page: ask over the websocket (protocol in chat/consumers.py), stream the answer in,
// show its sources, take feedback. Model output only ever reaches the page as text nodes.
(function () {
  "use strict";
  const root = document.getElementById("chat");
  if (!root) return;
  const base = root.dataset.base;
  const log = document.getElementById("log");
  const list = document.getElementById("conversations");
  const picker = document.getElementById("expert");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const sendButton = document.getElementById("send");
  const stopButton = document.getElementById("stop");
  const link = document.getElementById("link");

  let conversation = root.dataset.conversation ? Number(root.dataset.conversation) : null;
  let ws = null;
  let open = false;
  let retry = 500;
  // The answer being streamed: { bubble, body, text (a Text node), state, question, tokens }.
  let current = null;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }
  function scrollDown(force) { if (force || nearBottom()) log.scrollTop = log.scrollHeight; }

  function updateControls() {
    const hasExpert = conversation !== null || (picker && picker.value);
    sendButton.disabled = !open || current !== null || !hasExpert;
    stopButton.hidden = current === null;
  }

  function setLink(text, cls) { link.textContent = text; link.className = `badge ${cls || ""}`; }

  // --- citations --------------------------------------------------------------------------
  function citeHref(chunk) { return `${base}cite/${chunk}/`; }

  function citeLabel(c) {
    const where = [c.section, c.page ? `page ${c.page}` : ""].filter(Boolean).join(" · ");
    return `[${c.n}] ${c.title}${where ? ` — ${where}` : ""}`;
  }

  function renderSources(bubble, citations) {
    let sources = bubble.querySelector(".sources");
    if (!citations || !citations.length) { if (sources) sources.remove(); return; }
    if (!sources) {
      sources = el("div", { class: "sources" });
      bubble.querySelector(".text").after(sources);
    }
    sources.replaceChildren(...citations.map((c) => el("a", {
      class: c.cited ? "citation cited" : "citation", "data-n": String(c.n), href: citeHref(c.chunk),
      target: "_blank", rel: "noopener", title: [c.source, c.section].filter(Boolean).join(": "),
    }, citeLabel(c))));
  }

  // "[2]" in the answer becomes a link to source 2, built as DOM nodes from the plain text.
  function linkify(bubble) {
    const targets = new Map();
    bubble.querySelectorAll(".sources a.citation").forEach((a) => targets.set(a.dataset.n, a.getAttribute("href")));
    if (!targets.size) return;
    const body = bubble.querySelector(".text");
    const text = body.textContent;
    const parts = [];
    const marker = /\[(\d{1,2})\]/g;
    let last = 0;
    let m;
    while ((m = marker.exec(text)) !== null) {
      const href = targets.get(m[1]);
      if (!href) continue;
      parts.push(document.createTextNode(text.slice(last, m.index)));
      parts.push(el("a", { class: "cite-ref", href, target: "_blank", rel: "noopener" }, m[0]));
      last = m.index + m[0].length;
    }
    if (!parts.length) return;
    parts.push(document.createTextNode(text.slice(last)));
    body.replaceChildren(...parts);
  }

  // --- feedback ---------------------------------------------------------------------------
  function addActions(bubble, done) {
    const actions = el("div", { class: "actions" });
    actions.append(
      el("button", { type: "button", class: "fb", "data-value": "1", "aria-label": "Good answer", title: "Good answer", "aria-pressed": "false" }),
      el("button", { type: "button", class: "fb", "data-value": "-1", "aria-label": "Bad answer", title: "Bad answer", "aria-pressed": "false" }),
    );
    const meta = [];
    if (done.tokens) meta.push(`${done.tokens} tokens`);
    if (done.tokens_per_s) meta.push(`${done.tokens_per_s.toFixed(1)} tokens/s`);
    if (done.ttft_ms) meta.push(`first token ${Math.round(done.ttft_ms)} ms`);
    actions.append(el("span", { class: "muted meta" }, meta.join(" · ")));
    bubble.append(actions);
  }

  function showFeedback(bubble, value) {
    bubble.querySelectorAll("button.fb").forEach((b) => {
      b.setAttribute("aria-pressed", String(Number(b.dataset.value) === value));
    });
  }

  function sendFeedback(messageId, value, comment) {
    if (!open) { showError({ message: "Not connected: the feedback was not sent." }); return; }
    ws.send(JSON.stringify({ type: "feedback", message: messageId, value, comment: comment || "" }));
  }

  function askWhy(bubble, messageId) {
    if (bubble.querySelector(".why")) return;
    const why = el("form", { class: "why" });
    const reason = el("input", { type: "text", placeholder: "What was wrong? (optional)", "aria-label": "What was wrong" });
    why.append(reason, el("button", { type: "submit" }, "Send"));
    why.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sendFeedback(messageId, -1, reason.value);
      why.replaceWith(el("span", { class: "muted why" }, "Thanks for the feedback."));
    });
    bubble.append(why);
    reason.focus();
  }

  log.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.fb");
    if (!button) return;
    const bubble = button.closest(".msg");
    const messageId = Number(bubble.dataset.message);
    if (!messageId) return;
    const pressed = button.getAttribute("aria-pressed") === "true";
    const value = pressed ? 0 : Number(button.dataset.value);
    sendFeedback(messageId, value);
    if (value === -1) askWhy(bubble, messageId);
  });

  // --- the conversation list --------------------------------------------------------------
  function markCurrent(id, title) {
    list.querySelectorAll("a.current").forEach((a) => { a.classList.remove("current"); a.removeAttribute("aria-current"); });
    const none = list.querySelector(".none");
    if (none) none.remove();
    let item = list.querySelector(`a[data-id="${id}"]`);
    if (!item) item = el("a", { href: `${base}c/${id}/`, "data-id": String(id) }, title || `Conversation ${id}`);
    item.classList.add("current");
    item.setAttribute("aria-current", "page");
    list.prepend(item);  // newest first, as the server orders it
  }

  // --- asking and streaming ---------------------------------------------------------------
  function ask(text) {
    if (!open || current !== null) return;
    const expert = picker ? picker.value : "";
    const hello = log.querySelector(".hello");
    if (hello) hello.remove();
    const question = el("article", { class: "msg user" });
    question.append(el("div", { class: "text" }, text));
    const bubble = el("article", { class: "msg assistant", "data-status": "pending" });
    const body = el("div", { class: "text" });
    const textNode = document.createTextNode("");
    body.append(textNode);
    const state = el("div", { class: "state muted" }, "thinking…");
    bubble.append(body, state);
    log.append(question, bubble);
    current = { bubble, body, text: textNode, state, question: text, tokens: 0 };
    ws.send(JSON.stringify({ type: "ask", conversation, expert, text }));
    input.value = "";
    updateControls();
    scrollDown(true);
  }

  function finish() {
    current = null;
    updateControls();
    input.focus();
  }

  const handlers = {
    conversation(f) {
      conversation = f.id;
      root.dataset.conversation = String(f.id);
      if (picker) picker.disabled = true;  // a conversation belongs to one expert
      markCurrent(f.id, f.title);
      history.replaceState(null, "", `${base}c/${f.id}/`);
      if (f.title) document.title = `${f.title} · Chat · expertsite`;
    },
    queued(f) {
      if (!current) return;
      current.bubble.dataset.status = "queued";
      current.state.textContent = `queued, ${f.position} ahead`;
    },
    citations(f) {
      if (current) renderSources(current.bubble, f.citations);
    },
    token(f) {
      if (!current) return;
      if (current.tokens++ === 0) {
        current.bubble.dataset.status = "streaming";
        current.state.textContent = "";
      }
      const stick = nearBottom();
      current.text.appendData(f.text);
      scrollDown(stick);
    },
    done(f) {
      if (!current) return;
      const { bubble, state } = current;
      const stick = nearBottom();
      bubble.dataset.message = String(f.message);
      renderSources(bubble, f.citations);
      linkify(bubble);
      state.replaceChildren();
      state.className = "state";
      if (f.status === "interrupted") state.append(el("span", { class: "badge interrupted" }, "interrupted"));
      else if (!bubble.querySelector(".text").textContent.trim()) state.append(el("span", { class: "muted" }, "The model gave no answer."));
      addActions(bubble, f);
      // Set last: tests and assistive tech take data-status="complete" to mean "all shown".
      bubble.dataset.status = f.status;
      markCurrent(f.conversation);
      finish();
      scrollDown(stick);
    },
    feedback(f) {
      const bubble = log.querySelector(`.msg[data-message="${f.message}"]`);
      if (bubble) showFeedback(bubble, f.value);
    },
    error(f) { showError(f); },
  };

  function showError(f) {
    const line = el("div", { class: "msg-error error", role: "alert" }, f.message || "Something went wrong.");
    if (f.code) line.dataset.code = f.code;
    if (current) {
      const { bubble, question, tokens } = current;
      if (tokens === 0 && !bubble.querySelector(".sources")) {
        bubble.replaceWith(line);
        // Nothing came back: give the question back so it can be fixed and sent again.
        if (!input.value) input.value = question;
      } else {
        bubble.dataset.status = "failed";
        current.state.replaceChildren();
        bubble.after(line);
      }
      finish();
    } else {
      log.append(line);
    }
    scrollDown(true);
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value;
    if (text.trim()) ask(text);
  });

  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      if (!sendButton.disabled) form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", () => {
    if (!current || !open) return;
    ws.send(JSON.stringify({ type: "stop" }));
    if (current.tokens === 0) current.state.textContent = "stopping…";
  });

  if (picker) picker.addEventListener("change", updateControls);

  // --- the socket -------------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/ws/chat/`);
    ws.onopen = () => {
      open = true;
      retry = 500;
      setLink("connected", "ready");
      updateControls();
    };
    ws.onmessage = (msg) => {
      let frame;
      try { frame = JSON.parse(msg.data); } catch (e) { return; }
      const handle = handlers[frame.type];
      if (handle) handle(frame);
    };
    ws.onclose = (ev) => {
      open = false;
      if (current) {
        // The server keeps what was streamed as an interrupted answer.
        current.bubble.dataset.status = "interrupted";
        current.state.replaceChildren(el("span", { class: "badge interrupted" }, "interrupted: connection lost"));
        finish();
      }
      updateControls();
      // A refused handshake (session ended) looks like a dropped connection to the browser,
      // so both retry; the backoff keeps that cheap.
      setLink("reconnecting…");
      setTimeout(connect, retry + Math.random() * 250);
      retry = Math.min(retry * 2, 10000);
    };
  }

  log.querySelectorAll(".msg.assistant").forEach(linkify);
  scrollDown(true);
  updateControls();
  connect();
  input.focus();
})();
