// The dashboard's "Sources" card: each knowledge source's last sync, next sync, documents and
// errors, with "Sync now" for admins. Data from GET /admin/sources with the dashboard's admin
// key (sessionStorage); server text is placed with textContent only.

import { $, el, keyStore, labels, language, pollCard } from "/static/common.js";

const token = keyStore("askhub.admin-token");
const REFRESH_MS = 15_000;

const WORDS = labels("sources");

const words = () => WORDS[language()] ?? WORDS.en;
const when = (iso) => (iso ? new Date(iso).toLocaleString(language()) : null);

function card() {
  let section = $("#sources-card");
  if (section) return section;
  section = el("section", { id: "sources-card", class: "card keys-card", "aria-labelledby": "sources-title" },
    el("header", { class: "card-head" },
      el("h2", { id: "sources-title" }),
      el("p", { id: "sources-note", class: "card-note muted" })),
    el("div", { class: "table-wrap" },
      el("table", { id: "sources", class: "recent" }, el("thead"), el("tbody")),
      el("p", { id: "sources-empty", class: "muted empty-note", hidden: true })));
  ($("#dashboard") ?? document.body).append(section);
  return section;
}

async function syncNow(name, button) {
  button.disabled = true;
  button.textContent = words().syncing;
  try {
    await fetch(`/admin/sources/${encodeURIComponent(name)}/sync`, { method: "POST", headers: token.authorize({}) });
  } finally {
    setTimeout(refresh, 1000);
  }
}

function render(data) {
  const w = words();
  card();
  $("#sources-title").textContent = w.title;
  $("#sources-note").textContent = w.note;
  $("#sources thead").replaceChildren(el("tr", {}, ...[w.name, w.type, w.collection, w.last, w.next, w.documents, w.outcome, ""]
    .map((text, n) => el("th", { scope: "col", class: n === 5 ? "num" : null, text }))));
  const rows = data.sources ?? [];
  $("#sources tbody").replaceChildren(...rows.map((row) => {
    const button = el("button", { type: "button", class: "btn btn-ghost", text: row.syncing ? w.syncing : w.sync, disabled: row.syncing });
    button.addEventListener("click", () => syncNow(row.name, button));
    const outcome = row.outcome ? (w.outcomes[row.outcome] ?? String(row.outcome)) : "—";
    return el("tr", { class: row.outcome === "failed" ? "alert" : null },
      el("td", { text: String(row.name) }),
      el("td", { text: String(row.type) }),
      el("td", { text: String(row.collection) }),
      el("td", { text: when(row.last_sync) ?? w.never }),
      el("td", { text: row.every_sec ? (when(row.next_sync) ?? "—") : w.byCommand }),
      el("td", { class: "num", text: String(row.documents ?? 0) }),
      el("td", { text: outcome, title: row.error ? String(row.error) : null }),
      el("td", {}, button));
  }));
  const empty = $("#sources-empty");
  empty.textContent = w.none;
  empty.hidden = rows.length > 0;
}

const refresh = pollCard("/admin/sources", render, REFRESH_MS);
