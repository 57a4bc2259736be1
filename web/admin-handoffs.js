// The dashboard's "Open handoffs" card: customers waiting for (or talking to) a person in Slack.
// Data from GET /admin/handoffs with the dashboard's admin key (sessionStorage). No customer id
// or message text ever reaches this card: platform, tenant, why, how long, who took it.
// Server text is placed with textContent only.

import { $, el, labels, language, pollCard } from "/static/common.js";

const REFRESH_MS = 15_000;
const WAIT_ALERT_SEC = 600; // the same 10 minutes as the AskHubHandoffWaiting alert

const WORDS = labels("handoffs");

const words = () => WORDS[language()] ?? WORDS.en;

function minutes(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function card() {
  let section = $("#handoffs-card");
  if (section) return section;
  section = el("section", { id: "handoffs-card", class: "card keys-card", "aria-labelledby": "handoffs-title" },
    el("header", { class: "card-head" },
      el("h2", { id: "handoffs-title" }),
      el("p", { id: "handoffs-note", class: "card-note muted" })),
    el("div", { class: "table-wrap" },
      el("table", { id: "handoffs", class: "recent" }, el("thead"), el("tbody")),
      el("p", { id: "handoffs-empty", class: "muted empty-note", hidden: true })));
  ($("#dashboard") ?? document.body).append(section);
  return section;
}

function render(data) {
  const w = words();
  card();
  $("#handoffs-title").textContent = w.title;
  $("#handoffs-note").textContent = w.note;
  const head = $("#handoffs thead");
  head.replaceChildren(el("tr", {}, ...[w.platform, w.tenant, w.reason, w.waiting, w.taken, w.answered]
    .map((text, n) => el("th", { scope: "col", class: n === 3 ? "num" : null, text }))));
  const rows = data.enabled ? data.handoffs : [];
  const body = $("#handoffs tbody");
  body.replaceChildren(...rows.map((row) => el("tr", { class: row.waiting_sec > WAIT_ALERT_SEC && !row.first_reply_at ? "alert" : null },
    el("td", { text: String(row.platform) }),
    el("td", { text: String(row.tenant) }),
    el("td", { text: w.reasons[row.reason] ?? String(row.reason) }),
    el("td", { class: "num", text: minutes(row.waiting_sec) }),
    el("td", { text: row.taken_by ? String(row.taken_by) : w.nobody }),
    el("td", { text: row.first_reply_at ? w.yes : w.no }))));
  const empty = $("#handoffs-empty");
  empty.textContent = data.enabled ? w.none : w.off;
  empty.hidden = rows.length > 0;
}

pollCard("/admin/handoffs", render, REFRESH_MS);
