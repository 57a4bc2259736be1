// Verified answers on the operations dashboard: list, edit and retire them, and save one for a
// 👎-marked answer of the "Recent questions" table (its question prefilled). Talks to
// /admin/verified with the dashboard's admin key (sessionStorage). Server text is placed with
// textContent only. It adds its own card and watches admin.js's DOM, so admin.js need not know it.

import { $, el, keyStore, labels, language } from "/static/common.js";

const token = keyStore("askhub.admin-token"); // the same key admin.js keeps
const BY_KEY = "askhub.verified-by"; // the name an admin last verified as (a preference, this tab only)

const LABELS = labels("verified");
const t = (key, params = {}) =>
  (LABELS[language()]?.[key] ?? LABELS.en[key]).replace(/\{(\w+)\}/g, (_, n) => String(params[n] ?? ""));

const state = { rows: [], collections: [], tenants: {}, editing: null };

// ---- the card ----

const ui = {};

function buildCard() {
  ui.body = el("tbody");
  ui.empty = el("p", { class: "muted empty-note", hidden: true });
  ui.status = el("p", { class: "muted small", role: "status", id: "verified-status" });
  ui.question = el("textarea", { id: "verified-question", rows: "2", maxlength: "2000", required: true });
  ui.answer = el("textarea", { id: "verified-answer", rows: "4", maxlength: "8000", required: true });
  ui.collection = el("select", { id: "verified-collection" });
  ui.by = el("input", { id: "verified-by", type: "text", maxlength: "200", required: true, autocomplete: "off" });
  ui.submit = el("button", { type: "submit", class: "btn btn-primary" });
  ui.cancel = el("button", { type: "button", class: "btn btn-ghost", onclick: closeForm });
  ui.labels = {};
  const field = (name, input) => {
    ui.labels[name] = el("label", { for: input.id, class: "field-label" });
    return el("div", { style: "display:grid;gap:0.2rem" }, ui.labels[name], input);
  };
  ui.form = el(
    "form",
    { id: "verified-form", hidden: true, style: "display:grid;gap:0.5rem;margin:0.6rem 0", onsubmit: submit },
    field("question", ui.question),
    field("answer", ui.answer),
    field("collection", ui.collection),
    field("verifiedBy", ui.by),
    el("div", { style: "display:flex;gap:0.5rem" }, ui.submit, ui.cancel),
  );
  ui.add = el("button", { type: "button", class: "btn btn-ghost", id: "verified-add", onclick: () => openForm() });
  ui.heading = el("h2", { id: "verified-title" });
  ui.note = el("p", { class: "card-note muted" });
  ui.head = el("tr");
  ui.card = el(
    "section",
    { class: "card recent-card verified-card", id: "verified", "aria-labelledby": "verified-title" },
    el("header", { class: "card-head" }, ui.heading, ui.note, ui.add),
    ui.form,
    ui.status,
    el("div", { class: "table-wrap" }, el("table", { class: "recent", id: "verified-table" },
                                          el("thead", {}, ui.head), ui.body), ui.empty),
  );
  $("#dashboard").append(ui.card);
}

function relabel() {
  ui.heading.textContent = t("title");
  ui.note.textContent = t("note");
  ui.add.textContent = t("add");
  ui.empty.textContent = t("empty");
  ui.submit.textContent = t("save");
  ui.cancel.textContent = t("cancel");
  for (const [name, label] of Object.entries(ui.labels)) label.textContent = t(name);
  ui.head.replaceChildren(
    ...["colQuestion", "colAnswer", "colCollection", "colBy", "colState", ""].map((k) =>
      el("th", { scope: "col", text: k ? t(k) : "" }),
    ),
  );
  render();
  markFeedbackRows();
}

// ---- talking to the hub ----

async function call(method, path, body) {
  const headers = token.authorize({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/admin/verified${path}`, {
    method, headers, cache: "no-store", credentials: "omit",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, data };
}

async function load() {
  const { ok, data } = await call("GET", "?retired=true");
  if (!ok || !Array.isArray(data?.verified)) return;
  state.rows = data.verified;
  state.collections = Array.isArray(data.collections) ? data.collections : [];
  state.tenants = data.tenants && typeof data.tenants === "object" ? data.tenants : {};
  render();
}

// ---- the list ----

function render() {
  if (!ui.body) return;
  ui.empty.hidden = state.rows.length > 0;
  ui.body.replaceChildren(
    ...state.rows.map((row) => {
      const actions = el("td", { class: "nowrap" });
      if (!row.retired) {
        actions.append(
          el("button", { type: "button", class: "btn btn-ghost", "data-action": "edit", text: t("edit"),
                         onclick: () => openForm(row) }),
          el("button", { type: "button", class: "btn btn-ghost", "data-action": "retire", text: t("retire"),
                         onclick: () => retire(row) }),
        );
      }
      return el(
        "tr",
        { "data-verified-id": String(row.id), "data-state": row.retired ? "retired" : "live" },
        el("td", { class: "col-question", title: String(row.question), text: String(row.question) }),
        el("td", { class: "col-question", title: String(row.answer), text: String(row.answer) }),
        el("td", { text: String(row.collection) }),
        el("td", { text: String(row.verified_by) }),
        el("td", {}, el("span", { class: `tag tag-${row.retired ? "none" : "ok"}`, text: t(row.retired ? "retired" : "live") })),
        actions,
      );
    }),
  );
}

// ---- the form ----

/** Edit `row`, or add one (from a 👎 answer: its question, and a collection its tenant reads). */
function openForm(row = null, question = "", tenant = "") {
  state.editing = row;
  ui.collection.replaceChildren(...state.collections.map((name) => el("option", { value: name, text: name })));
  ui.question.value = row ? row.question : question;
  ui.answer.value = row ? row.answer : "";
  if (row) ui.collection.value = row.collection;
  else if (state.tenants[tenant]?.length) ui.collection.value = state.tenants[tenant][0];
  ui.by.value = row ? row.verified_by : sessionStorage.getItem(BY_KEY) ?? "";
  ui.status.textContent = "";
  ui.form.hidden = false;
  (question || row ? ui.answer : ui.question).focus();
}

function closeForm() {
  state.editing = null;
  ui.form.hidden = true;
}

async function submit(event) {
  event.preventDefault();
  const body = { question: ui.question.value, answer: ui.answer.value, collection: ui.collection.value,
                 verified_by: ui.by.value };
  const editing = state.editing;
  const result = editing ? await call("PATCH", `/${encodeURIComponent(editing.id)}`, body) : await call("POST", "", body);
  if (!result.ok) {
    ui.status.textContent = t("failed", { message: result.data?.error?.message ?? result.status });
    return;
  }
  sessionStorage.setItem(BY_KEY, body.verified_by);
  closeForm();
  ui.status.textContent = t("saved");
  await load();
}

async function retire(row) {
  const result = await call("POST", `/${encodeURIComponent(row.id)}/retire`);
  if (!result.ok) ui.status.textContent = t("failed", { message: result.data?.error?.message ?? result.status });
  await load();
}

// ---- 👎 answers in "Recent questions" ----

function markFeedbackRows() {
  // The button goes under the question (the feedback cell keeps just its 👍 / 👎).
  for (const row of document.querySelectorAll("#recent tbody tr")) {
    const cell = row.querySelector(".col-question");
    const vote = row.querySelector(".feedback-cell")?.textContent.trim();
    if (!cell || vote !== "👎" || cell.querySelector("[data-action=verify]")) continue;
    const question = cell.getAttribute("title") ?? cell.textContent;
    const tenant = row.cells[1]?.textContent ?? ""; // admin.js's columns: time, tenant, platform, question, …
    cell.append(el("div", {}, el("button", { type: "button", class: "btn btn-ghost", "data-action": "verify",
                                             text: t("fromFeedback"), onclick: () => openForm(null, question, tenant) })));
  }
}

function init() {
  buildCard();
  relabel();
  $("#lang-toggle").addEventListener("click", relabel); // after admin.js has switched the language
  $("#refresh").addEventListener("click", () => $("#dashboard").hidden || load());
  new MutationObserver(markFeedbackRows).observe($("#recent tbody"), { childList: true });
  // The dashboard is shown when admin.js unlocks it: load then, and clear when it locks.
  new MutationObserver(() => {
    if ($("#dashboard").hidden) {
      state.rows = [];
      closeForm();
      render();
    } else load();
  }).observe($("#dashboard"), { attributes: true, attributeFilter: ["hidden"] });
  if (!$("#dashboard").hidden) load();
}

init();
