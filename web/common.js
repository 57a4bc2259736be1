// What the Ask Hub portal (app.js) and the admin dashboard (admin.js) share: plain browser
// JavaScript, an ES module imported from /static/common.js, no build step. Server text is only
// ever placed with textContent / setAttribute, never parsed as HTML.

import en from "/static/i18n/en.json" with { type: "json" };
import zhTW from "/static/i18n/zh-TW.json" with { type: "json" };

const LANG_KEY = "askhub.lang"; // localStorage, the same for both pages: a preference, never a secret

export const $ = (selector) => document.querySelector(selector);

export function attempt(fn, fallback = null) {
  try {
    return fn();
  } catch {
    return fallback; // storage can be blocked by browser privacy settings
  }
}

// ---- the key (API key, admin key or JWT) ----

/** A key kept in sessionStorage under `name` only (forgotten when the tab closes), sent as a Bearer header. */
export function keyStore(name) {
  const store = {
    get: () => attempt(() => sessionStorage.getItem(name)),
    set: (value) => attempt(() => sessionStorage.setItem(name, value)),
    clear: () => attempt(() => sessionStorage.removeItem(name)),
    /** Adds Authorization: Bearer <key> to `headers` when a key is kept; returns `headers`. */
    authorize(headers) {
      const key = store.get();
      if (key) headers.Authorization = `Bearer ${key}`;
      return headers;
    },
    /** Keeps the key typed into `input` (a pasted "Bearer " prefix dropped) and empties it; false if blank. */
    takeFrom(input) {
      const value = input.value.trim().replace(/^Bearer\s+/i, "");
      if (!value) return false;
      store.set(value);
      input.value = "";
      return true;
    },
  };
  return store;
}

// ---- language: zh-TW or English ----

/** One page's labels in both languages, from web/i18n/<language>.json (one table per language). */
export const labels = (page) => ({ en: en[page], "zh-TW": zhTW[page] });

let LABELS = { en: {} };
let lang = "en";

/** The page's labels ({ en: {…}, "zh-TW": {…} }); the language is the saved one, else the browser's. */
export function useLabels(labels) {
  LABELS = labels;
  const saved = attempt(() => localStorage.getItem(LANG_KEY));
  if (Object.hasOwn(LABELS, saved ?? "")) lang = saved;
  else lang = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-TW" : "en";
}

export const language = () => lang;

export function t(key, params = {}) {
  const text = LABELS[lang][key] ?? LABELS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

export function setLabel(node, key) {
  node.dataset.i18n = key; // applyLabels() re-translates it when the language changes
  node.textContent = t(key);
}

export function setAriaLabel(node, key) {
  node.dataset.i18nAria = key;
  node.setAttribute("aria-label", t(key));
}

export function applyLabels() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-aria]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAria));
  }
  for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  $("#lang-toggle").lang = lang === "en" ? "zh-TW" : "en";
}

/** #lang-toggle switches between zh-TW and English, remembers it and relabels the page, then calls `then`. */
export function wireLanguageToggle(then = () => {}) {
  $("#lang-toggle").addEventListener("click", () => {
    lang = lang === "en" ? "zh-TW" : "en";
    attempt(() => localStorage.setItem(LANG_KEY, lang));
    applyLabels();
    then();
  });
}

// ---- DOM ----

/**
 * An element: props "text" (textContent), "i18n" / "i18nAria" (a label key, kept up to date on a
 * language change), "class", "on<event>" (a listener), else attributes (true: present, null/false: absent).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "i18n") setLabel(node, value);
    else if (name === "i18nAria") setAriaLabel(node, value);
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

// ---- dashboard cards ----

/**
 * Keeps a dashboard card fresh: GET `path` with the admin key every `everyMs` (and right after
 * the key is entered), `render(data)` on success, and again on a language switch. Returns
 * `refresh`, for a card whose own action wants fresh data now.
 */
export function pollCard(path, render, everyMs) {
  const token = keyStore("askhub.admin-token");
  let last = null;
  async function refresh() {
    if (!token.get()) return; // the dashboard asks for the key; the card waits for it
    try {
      const response = await fetch(path, { headers: token.authorize({}), cache: "no-store" });
      if (!response.ok) return;
      last = await response.json();
      render(last);
    } catch {
      // the dashboard's own status line says when the hub cannot be reached
    }
  }
  $("#lang-toggle")?.addEventListener("click", () => queueMicrotask(() => last && render(last)));
  $("#auth-form")?.addEventListener("submit", () => setTimeout(refresh, 0)); // the key was just entered
  refresh();
  setInterval(refresh, everyMs);
  return refresh;
}
