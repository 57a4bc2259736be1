// Ask Hub portal: plain browser JavaScript, no build step.
// Server text is only ever placed with textContent / text nodes, never as HTML.

import {
  $,
  applyLabels,
  attempt,
  el,
  keyStore,
  labels,
  setLabel,
  t,
  useLabels,
  wireLanguageToggle,
} from "/static/common.js";

const token = keyStore("askhub.token"); // sessionStorage only: forgotten when the tab closes

const LABELS = labels("portal");
useLabels(LABELS);

const ui = {
  main: $("#main"),
  thread: $("#thread"),
  empty: $("#empty-state"),
  form: $("#ask-form"),
  question: $("#question"),
  send: $("#send"),
  status: $("#status"),
  authForm: $("#auth-form"),
  authKey: $("#auth-key"),
  forgetKey: $("#forget-key"),
};

const state = {
  conversationId: newId(),
  busy: false,
  controller: null,
  pendingQuestion: null, // asked again once a key is entered after a 401
  turn: 0,
  handoff: null, // while a person has the conversation: { url, controller, lastId, seen }
};

const RECONNECT_MS = 2000;

// ---- small helpers ----

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID(); // needs a secure context (https or localhost)
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function formatLatency(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function retryAfterSeconds(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

// ---- talking to the hub ----

function postJson(path, body, signal) {
  const headers = token.authorize({
    "Content-Type": "application/json",
    Accept: "text/event-stream, application/json",
    "X-AskHub-Client": "portal",
  });
  return fetch(path, { method: "POST", headers, body: JSON.stringify(body), signal, cache: "no-store" });
}

async function ask(text) {
  const question = text.trim();
  if (!question || state.busy) return;
  state.pendingQuestion = null;
  state.controller = new AbortController();
  setBusy(true);
  ui.empty.hidden = true;
  ui.thread.append(questionItem(question));
  const card = answerItem(question);
  ui.thread.append(card.item);
  scrollToBottom(true);
  const started = performance.now();
  try {
    const body = { question, conversation_id: state.conversationId, stream: true };
    const response = await postJson("/ask", body, state.controller.signal);
    const type = response.headers.get("content-type") || "";
    if (!response.ok) await showHttpError(card, response, question);
    else if (type.includes("text/event-stream") && response.body) await readStream(response, card, started);
    else renderAnswer(card, await response.json(), performance.now() - started);
  } catch (err) {
    if (err.name === "AbortError") return;
    const network = err instanceof TypeError;
    showError(card, { title: t(network ? "errNetwork" : "errUnexpected"), question, partial: card.partial });
  } finally {
    setBusy(false);
    scrollToBottom(false);
    // A clicked example button hides itself: give focus back (not on touch screens: no surprise keyboard).
    if (document.activeElement === document.body && matchMedia("(pointer: fine)").matches) ui.question.focus();
  }
}

async function readStream(response, card, started) {
  for await (const event of serverEvents(response)) {
    if (handleEvent(event, card, started)) return;
  }
  showError(card, { title: t("errStream"), partial: card.partial, question: card.question });
}

/** A response's server-sent events, parsed as they arrive (the last one even without its blank line);
 * leaving the loop early cancels the response. */
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = blocks.pop();
      for (const block of blocks) yield parseEvent(block);
    }
    if (buffer.trim()) yield parseEvent(buffer);
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parseEvent(block) {
  let name = "message";
  let id = null;
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("id:")) id = line.slice(3).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return null;
  return { name, id, data: attempt(() => JSON.parse(data.join("\n"))) };
}

// ---- a person on the conversation: their replies arrive on its event stream ----

/** Follows the conversation's events while a person has it (fetch, so the Bearer key goes along). */
function followHandoff(url) {
  if (state.handoff?.url === url) return;
  stopHandoff();
  state.handoff = { url, controller: new AbortController(), lastId: null, seen: new Set() };
  ui.status.textContent = t("withPerson");
  readHandoff(state.handoff);
}

function stopHandoff() {
  state.handoff?.controller.abort();
  state.handoff = null;
}

async function readHandoff(handoff) {
  while (state.handoff === handoff) {
    try {
      const query = handoff.lastId ? `?after=${encodeURIComponent(handoff.lastId)}` : "";
      const headers = token.authorize({ Accept: "text/event-stream" });
      const signal = handoff.controller.signal;
      const response = await fetch(handoff.url + query, { headers, signal, cache: "no-store" });
      if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
      for await (const event of serverEvents(response)) {
        showHandoffEvent(handoff, event);
        if (state.handoff !== handoff) return;
      }
    } catch (err) {
      if (err.name === "AbortError") return;
    }
    await new Promise((resume) => setTimeout(resume, RECONNECT_MS)); // the stream dropped: resume after lastId
  }
}

function showHandoffEvent(handoff, event) {
  if (!event?.data || state.handoff !== handoff) return;
  const id = event.id || event.data.id;
  if (id) {
    if (handoff.seen.has(id)) return; // shown once, whatever the network did
    handoff.seen.add(id);
    handoff.lastId = id;
  }
  const text = String(event.data.text ?? "");
  if (event.name === "agent") ui.thread.append(agentItem(text));
  else if (event.name === "end") {
    ui.thread.append(el("li", { class: "msg msg-notice" }, el("p", { text })));
    ui.status.textContent = "";
    stopHandoff();
  }
  scrollToBottom(false);
}

function agentItem(text) {
  const who = el("span", { class: "visually-hidden", i18n: "agentSaid" });
  const name = el("p", { class: "agent-name", "aria-hidden": "true", i18n: "agentName" });
  return el("li", { class: "msg msg-agent" }, who, name, el("p", { class: "agent-text", text }));
}

/** Applies one server-sent event; returns true once the answer is finished. */
function handleEvent(event, card, started) {
  if (!event || !event.data) return false;
  if (event.name === "delta") {
    card.partial += String(event.data.text ?? "");
    showPartial(card);
    return false;
  }
  if (event.name === "done") {
    renderAnswer(card, event.data, performance.now() - started);
    return true;
  }
  if (event.name === "error") {
    const error = event.data.error || {};
    const title = error.type === "rate_limited" ? t("errRate") : t("errStream");
    showError(card, { title, detail: error.message, partial: card.partial, question: card.question });
    return true;
  }
  return false;
}

async function showHttpError(card, response, question) {
  const body = await response.json().catch(() => null);
  const status = response.status;
  const seconds = retryAfterSeconds(response.headers.get("retry-after"));
  const detail = typeof body?.error?.message === "string" ? body.error.message : "";
  if (status === 401) showAuth(question);
  const final = [400, 401, 403, 413, 422].includes(status); // asking the same again won't help
  const requestId = response.headers.get("x-request-id");
  const title = errorTitle(status, seconds);
  showError(card, { title, detail, requestId, question: final ? null : question, retryIn: seconds });
}

function errorTitle(status, seconds) {
  if (status === 400 || status === 422) return t("errInvalid");
  if (status === 401) return t(token.get() ? "errKeyRejected" : "errAuth");
  if (status === 403) return t("errForbidden");
  if (status === 413) return t("errTooLong");
  if (status === 429) return seconds ? t("errRateWait", { s: seconds }) : t("errRate");
  if (status === 504) return t("errTimeout");
  if (status === 502 || status === 503) return seconds ? t("errModelWait", { s: seconds }) : t("errModel");
  return t("errUnexpected");
}

async function sendFeedback(group, note, requestId, rating, offer) {
  for (const button of group.querySelectorAll("button")) {
    button.disabled = true;
    button.setAttribute("aria-pressed", String(button.dataset.rating === rating));
  }
  try {
    const response = await postJson("/feedback", { request_id: requestId, rating });
    setLabel(note, response.ok ? "thanks" : "feedbackFailed");
  } catch {
    setLabel(note, "feedbackFailed");
  }
  if (rating === "down" && offer) group.append(personButton(offer));
}

/** After a 👎 where the hub offers it: one press sends the hub's trigger as the next message. */
function personButton(send) {
  const button = el("button", { type: "button", class: "btn btn-secondary btn-person", i18n: "talkToPerson" });
  button.addEventListener("click", () => {
    if (state.busy) return;
    button.disabled = true;
    ask(send);
  });
  return button;
}

// ---- rendering ----

function questionItem(question) {
  const who = el("span", { class: "visually-hidden", i18n: "youAsked" });
  return el("li", { class: "msg msg-question" }, who, el("p", { class: "bubble", text: question }));
}

/** An answer card: "Looking it up…" at first, aria-busy until complete (screen readers wait for it). */
function answerItem(question) {
  const dots = el("span", { class: "dots", "aria-hidden": "true" });
  const thinking = el("p", { class: "thinking" }, el("span", { i18n: "thinking" }), dots);
  const body = el("div", { class: "answer-body" }, thinking);
  const who = el("span", { class: "visually-hidden", i18n: "hubAnswered" });
  const item = el("li", { class: "msg msg-answer", "aria-busy": "true" }, who, body);
  return { n: ++state.turn, item, body, question, partial: "", live: null };
}

function showPartial(card) {
  if (!card.live) {
    card.live = el("div", { class: "answer-text streaming" });
    card.body.replaceChildren(card.live);
  }
  card.live.textContent = card.partial;
  scrollToBottom(false);
}

function renderAnswer(card, data, latencyMs) {
  if (data.handoff && typeof data.handoff.events === "string") {
    // The hub's notice or acknowledgement: no model, no sources, nothing to rate.
    card.live = null;
    card.body.replaceChildren(renderText(String(data.answer ?? ""), card, 0));
    card.item.classList.add("msg-handoff");
    card.item.setAttribute("aria-busy", "false");
    followHandoff(data.handoff.events);
    return;
  }
  const sources = Array.isArray(data.sources) ? data.sources : [];
  card.live = null;
  card.body.replaceChildren(renderText(String(data.answer ?? ""), card, sources.length));
  if (sources.length) card.body.append(renderSources(card, sources));
  const offer = typeof data.handoff_offer?.send === "string" ? data.handoff_offer.send : null;
  const feedback = data.request_id ? renderFeedback(String(data.request_id), offer) : null;
  card.body.append(el("div", { class: "answer-foot" }, renderMeta(data, latencyMs), feedback));
  card.item.setAttribute("aria-busy", "false");
}

function renderText(text, card, sourceCount) {
  const root = el("div", { class: "answer-text" });
  let list = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const item = /^(?:[-*•]|(\d+)[.)])\s+(.*)$/.exec(line);
    if (!line) {
      list = null;
    } else if (item) {
      const kind = item[1] ? "ol" : "ul";
      if (list?.localName !== kind) {
        list = el(kind, kind === "ol" ? { start: item[1] } : {});
        root.append(list);
      }
      list.append(el("li", {}, ...inline(item[2], card, sourceCount)));
    } else {
      list = null;
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      const props = heading ? { class: "answer-heading" } : {};
      root.append(el("p", props, ...inline(heading ? heading[1] : line, card, sourceCount)));
    }
  }
  return root;
}

const INLINE = /\[(\d{1,2})\]|\*\*(.+?)\*\*|`([^`]+)`/g;

/** Text with citations [n], **bold** and `code` as DOM nodes (plain strings become text nodes). */
function inline(text, card, sourceCount) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    let before = text.slice(last, match.index);
    if (match[1] !== undefined) before = before.replace(/\s+$/, "\u00a0"); // keep a citation on its word's line
    if (before) parts.push(before);
    const n = Number(match[1]);
    if (match[1] !== undefined) parts.push(n >= 1 && n <= sourceCount ? citation(card, n) : match[0]);
    else if (match[2] !== undefined) parts.push(el("strong", { text: match[2] }));
    else parts.push(el("code", { text: match[3] }));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

const sourceId = (card, n) => `src-${card.n}-${n}`;

function citation(card, n) {
  const onclick = (event) => {
    event.preventDefault();
    highlightSource(document.getElementById(sourceId(card, n)));
  };
  const attrs = { class: "cite", href: `#${sourceId(card, n)}`, "aria-label": t("cite", { n }), onclick };
  return el("a", attrs, String(n));
}

function highlightSource(item) {
  if (!item) return;
  const calm = matchMedia("(prefers-reduced-motion: reduce)").matches;
  item.scrollIntoView({ behavior: calm ? "auto" : "smooth", block: "nearest" });
  item.classList.remove("flash");
  void item.offsetWidth; // restart the highlight animation
  item.classList.add("flash");
  const details = item.querySelector("details");
  if (details) details.open = true;
  item.focus({ preventScroll: true });
}

// A synced document's title links to it at its source (http(s) only: never a script URL).
function sourceTitle(source) {
  const text = source.title || source.id || t("untitled");
  const url = typeof source.url === "string" && /^https?:\/\//i.test(source.url) ? source.url : null;
  if (!url) return el("span", { class: "source-title", text });
  return el("a", { class: "source-title", href: url, target: "_blank", rel: "noopener noreferrer", text });
}

function renderSources(card, sources) {
  const list = el("ol", { class: "sources" });
  sources.forEach((source, i) => {
    const score = Number(source.score);
    // The passage stays collapsed behind <details>; its summary row is the numbered title.
    const hint = source.text ? "showPassage" : null;
    const head = el(
      source.text ? "summary" : "div",
      { class: "source-head", "data-i18n-title": hint, title: hint && t(hint) },
      el("span", { class: "source-num", text: String(i + 1) }),
      sourceTitle(source),
    );
    if (Number.isFinite(score)) {
      const label = el("span", { class: "visually-hidden", i18n: "relevance" });
      head.append(el("span", { class: "source-score" }, label, ` ${score.toFixed(2)}`));
    }
    const body = source.text ? el("details", { class: "passage" }, head, el("p", { text: source.text })) : head;
    list.append(el("li", { id: sourceId(card, i + 1), class: "source", tabindex: "-1" }, body));
  });
  return el("section", { class: "sources-block" }, el("h3", { class: "sources-title", i18n: "sources" }), list);
}

function renderMeta(data, latencyMs) {
  const model = el("span", { class: "model-name", text: String(data.model ?? "") });
  const latencyLabel = el("span", { class: "visually-hidden", i18n: "latency" });
  const meta = el(
    "div",
    { class: "answer-meta" },
    el("span", { class: "badge" }, el("span", { i18n: "model" }), model),
    el("span", { class: "badge latency" }, latencyLabel, formatLatency(latencyMs)),
  );
  if (data.cached === true) meta.append(el("span", { class: "badge badge-cached", i18n: "cached" }));
  if (data.verified && typeof data.verified === "object") {
    // A person's answer, not the model's: say who stands behind it.
    const by = el("span", { class: "verified-by", text: String(data.verified.by ?? "") });
    meta.append(el("span", { class: "badge badge-verified" }, "✅ ", el("span", { i18n: "verifiedBy" }), " ", by));
  }
  if (data.request_id) meta.append(requestIdLine(String(data.request_id)));
  return meta;
}

function requestIdLine(id) {
  return el("span", { class: "request-id" }, el("span", { i18n: "requestId" }), " ", el("code", { text: id }));
}

function renderFeedback(requestId, offer) {
  const note = el("span", { class: "feedback-note muted", role: "status" });
  const group = el("div", { class: "feedback", role: "group", i18nAria: "feedbackLabel" });
  for (const [rating, icon, label] of [["up", "👍", "helpful"], ["down", "👎", "notHelpful"]]) {
    const onclick = () => sendFeedback(group, note, requestId, rating, offer);
    const attrs = { type: "button", class: "btn btn-icon", "data-rating": rating, "aria-pressed": "false", onclick };
    group.append(el("button", { ...attrs, i18nAria: label }, icon));
  }
  group.append(note);
  return group;
}

function showError(card, { title, detail, requestId, partial, question, retryIn }) {
  card.live = null;
  const parts = [];
  if (partial) parts.push(renderText(partial, card, 0), el("p", { class: "cut-off", i18n: "cutOff" }));
  const box = el("div", { class: "error-box" }, el("p", { class: "error-title", text: title }));
  if (detail) box.append(el("p", { class: "error-detail", text: detail }));
  if (requestId) box.append(requestIdLine(requestId));
  if (question) box.append(retryButton(question, retryIn));
  card.body.replaceChildren(...parts, box);
  card.item.classList.add("msg-error");
  card.item.setAttribute("aria-busy", "false");
}

function retryButton(question, seconds) {
  const button = el("button", { type: "button", class: "btn btn-secondary", onclick: () => ask(question) });
  let left = seconds || 0;
  const update = () => {
    button.textContent = left > 0 ? t("retryIn", { s: left }) : t("retry");
    button.disabled = left > 0;
  };
  update();
  if (left > 0) {
    const timer = setInterval(() => {
      left -= 1;
      update();
      if (left <= 0) clearInterval(timer);
    }, 1000);
  }
  return button;
}

// ---- page state ----

function setBusy(busy) {
  state.busy = busy;
  ui.send.disabled = busy;
  ui.form.setAttribute("aria-busy", String(busy));
  for (const button of document.querySelectorAll(".example")) button.disabled = busy;
}

function scrollToBottom(force) {
  const main = ui.main;
  const nearBottom = main.scrollHeight - main.scrollTop - main.clientHeight < 160;
  if (force || nearBottom) main.scrollTop = main.scrollHeight;
}

function autoGrow() {
  ui.question.style.height = "auto";
  ui.question.style.height = `${ui.question.scrollHeight}px`;
}

function showAuth(question) {
  state.pendingQuestion = question;
  ui.authForm.hidden = false;
  ui.authKey.value = "";
  ui.authKey.focus();
}

function saveKey(event) {
  event.preventDefault();
  if (!token.takeFrom(ui.authKey)) return;
  ui.authForm.hidden = true;
  ui.forgetKey.hidden = false;
  ui.status.textContent = "";
  if (state.pendingQuestion) ask(state.pendingQuestion);
  else ui.question.focus();
}

function forgetKey() {
  token.clear();
  ui.forgetKey.hidden = true;
  setLabel(ui.status, "keyForgotten");
  ui.question.focus();
}

function newConversation() {
  state.controller?.abort();
  stopHandoff();
  state.conversationId = newId();
  state.pendingQuestion = null;
  ui.thread.replaceChildren();
  ui.empty.hidden = false;
  ui.status.textContent = "";
  ui.question.focus();
}

function onKeyDown(event) {
  // Enter sends; Shift+Enter is a newline; never send while an IME is composing (keyCode 229: Safari).
  if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
  event.preventDefault();
  ui.form.requestSubmit();
}

function onSubmit(event) {
  event.preventDefault();
  if (state.busy || !ui.question.value.trim()) return;
  const question = ui.question.value;
  ui.question.value = "";
  autoGrow();
  ask(question);
}

function init() {
  applyLabels();
  ui.forgetKey.hidden = !token.get();
  ui.form.addEventListener("submit", onSubmit);
  ui.question.addEventListener("keydown", onKeyDown);
  ui.question.addEventListener("input", autoGrow);
  ui.authForm.addEventListener("submit", saveKey);
  $("#auth-cancel").addEventListener("click", () => (ui.authForm.hidden = true));
  ui.forgetKey.addEventListener("click", forgetKey);
  $("#new-chat").addEventListener("click", newConversation);
  wireLanguageToggle();
  for (const button of document.querySelectorAll(".example")) {
    button.addEventListener("click", () => ask(button.textContent));
  }
  document.body.classList.add("ready");
}

init();
