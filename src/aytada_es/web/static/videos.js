// My Videos: every project as a card, kept live over the WebSocket (or polling while it is down).

import { ApiError, api, explain, writtenPosition } from "./api.js";
import { confirmDelete } from "./delete_dialog.js";
import { LiveFeed } from "./live.js";
import { closeMenus, menuButton } from "./menus.js";
import { notificationsOn, notifyEnded, toggleNotifications } from "./notifications.js";
import { flash, toast } from "./toasts.js";
import {
  ACTIONS,
  STATUSES,
  announce,
  downloadUrl,
  el,
  gradientFor,
  icon,
  isActive,
  progressBar,
  setProgress,
  statusBadge,
  statusLabel,
  timeElement,
} from "./ui.js";

const grid = document.getElementById("videos");
const empty = document.getElementById("videos-empty");
const loading = document.getElementById("videos-loading");
const summary = document.getElementById("videos-summary");
const badge = document.getElementById("processing-badge");
const connection = document.getElementById("connection");
const filters = document.getElementById("filters");
const messages = document.getElementById("videos-messages");
const search = document.getElementById("videos-search");
const sortSelect = document.getElementById("videos-sort");
const noMatch = document.getElementById("videos-nomatch");
const toasts = document.getElementById("toasts");
const notifyToggle = document.getElementById("notify-toggle");

const cards = new Map(); // id -> card
const nodes = new Map(); // id -> <li>
let filter = "all";

const FILTERS = {
  all: () => true,
  active: (card) => isActive(card.status),
  ready: (card) => STATUSES[card.status] && STATUSES[card.status].kind === "ready",
  completed: (card) => card.status === "completed",
  failed: (card) => card.status === "failed",
};

function newestFirst(a, b) {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : -1;
}

const byTitle = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });
const SORTS = {
  newest: newestFirst,
  oldest: (a, b) => newestFirst(b, a),
  title: (a, b) => byTitle.compare(a.title, b.title) || newestFirst(a, b),
};

// The search and the order live in the URL (?q=…&sort=…): kept on reload, back and forward.
let query = "";
let sort = "newest";

function readUrl() {
  const params = new URLSearchParams(location.search);
  query = (params.get("q") || "").trim();
  sort = SORTS[params.get("sort")] ? params.get("sort") : "newest";
  search.value = query;
  sortSelect.value = sort;
}

function writeUrl() {
  const params = new URLSearchParams(location.search);
  if (query) params.set("q", query);
  else params.delete("q");
  if (sort !== "newest") params.set("sort", sort);
  else params.delete("sort");
  const next = params.toString() ? `?${params}` : location.pathname;
  if (next !== (location.search || location.pathname)) history.pushState(null, "", next);
}

function matches(card) {
  return !query || card.title.toLocaleLowerCase().includes(query.toLocaleLowerCase());
}

function thumbnail(card) {
  const backdrop = el("div", { class: "thumb-backdrop", "aria-hidden": "true" });
  const frame = el("div", { class: "thumb-frame", "data-format": card.format });
  const gradient = gradientFor(card.id);
  backdrop.style.background = gradient;
  frame.style.background = gradient;
  if (card.thumbnail_url) {
    const img = el("img", { src: card.thumbnail_url, alt: "", loading: "lazy", decoding: "async" });
    img.addEventListener("error", () => {
      img.remove();
      frame.append(el("div", { class: "placeholder-icon" }, icon("play")));
    });
    frame.append(img);
    backdrop.style.backgroundImage = `url("${encodeURI(card.thumbnail_url)}")`;
    backdrop.style.backgroundSize = "cover";
  } else {
    frame.append(el("div", { class: "placeholder-icon" }, icon("play")));
  }
  const thumb = el(
    "div",
    { class: "thumb" },
    backdrop,
    frame,
    el("span", { class: "format-tag" }, card.format),
  );
  if (isActive(card.status)) thumb.append(progressOverlay(card));
  return thumb;
}

function progressOverlay(card) {
  return el(
    "div",
    { class: "progress-overlay" },
    el(
      "div",
      { class: "progress-label" },
      el("span", { class: "progress-stage" }, `${statusLabel(card.status)}…`),
      el("span", { class: "progress-value" }, `${card.progress}%`),
    ),
    progressBar(card.progress, `Progress of ${card.title}`),
  );
}

function actionButton(card) {
  if (!card.action || !ACTIONS[card.action]) {
    return el("span", { class: "working" }, el("span", { class: "spinner", "aria-hidden": "true" }), "Working on it…");
  }
  const primary = card.action === "continue";
  return el(
    "a",
    {
      class: primary ? "btn btn-primary" : "btn",
      href: `/studio/${encodeURIComponent(card.id)}`,
      "data-action": card.action,
    },
    ACTIONS[card.action],
    icon(card.action === "retry" ? "retry" : "arrow"),
  );
}

function cardMenu(card) {
  return menuButton({
    id: `menu-${card.id}`,
    label: `More actions for ${card.title}`,
    items: () => {
      const current = cards.get(card.id) || card;
      return [
        { key: "rename", label: "Rename", action: () => openRename(current) },
        current.status === "completed"
          ? { key: "download", label: "Download video", action: () => downloadVideo(current) }
          : null,
        { key: "delete", label: "Delete", danger: true, action: () => openDelete(current) },
      ].filter(Boolean);
    },
  });
}

/** "Paused: needs N credits" under a card whose autopilot stopped for lack of credits. */
function pausedNote(card) {
  const paused = card.paused;
  if (!paused) return null;
  const needs = typeof paused.needed === "number" ? `needs ${paused.needed.toLocaleString()} credits` : "needs more credits";
  return el(
    "p",
    { class: "card-paused" },
    el("strong", {}, `Paused: ${needs}`),
    " to go on. Ask support for credits, or continue by hand in the Studio.",
  );
}

function buildCard(card) {
  const titleId = `title-${card.id}`;
  return el(
    "li",
    {
      class: "card",
      "data-project-id": card.id,
      "data-status": card.status,
      "data-paused": card.paused ? String(card.paused.needed ?? "") : null,
      "aria-labelledby": titleId,
    },
    thumbnail(card),
    el(
      "div",
      { class: "card-body" },
      el(
        "div",
        { class: "card-head" },
        el(
          "h2",
          { class: "card-title", id: titleId, title: card.title },
          el("a", { href: `/studio/${encodeURIComponent(card.id)}` }, card.title),
        ),
        cardMenu(card),
      ),
      el(
        "div",
        { class: "card-meta" },
        el("span", { class: "card-format" }, card.format),
        el("span", { class: "sep", "aria-hidden": "true" }, "·"),
        timeElement(card.created_at),
      ),
      el("div", { class: "card-status" }, statusBadge(card.status)),
      pausedNote(card),
      el("div", { class: "card-foot" }, actionButton(card)),
    ),
  );
}

/** Change a card in place when only its progress moved, so the bar animates forward. */
function patchCard(node, before, card) {
  const same =
    before.status === card.status &&
    before.title === card.title &&
    before.thumbnail_url === card.thumbnail_url &&
    before.action === card.action &&
    JSON.stringify(before.paused || null) === JSON.stringify(card.paused || null);
  if (!same) {
    if (node.contains(document.activeElement) || node.querySelector('[aria-expanded="true"]')) {
      closeMenus();
    }
    const fresh = buildCard(card);
    const oldBar = node.querySelector('[role="progressbar"]');
    const newBar = fresh.querySelector('[role="progressbar"]');
    if (oldBar && newBar) {
      // start the new bar where the old one was, then let it move
      const from = Number(oldBar.getAttribute("aria-valuenow")) || 0;
      newBar.querySelector(".progress-fill").style.width = `${from}%`;
      requestAnimationFrame(() => setProgress(newBar, card.progress));
    }
    fresh.style.animation = "none";
    node.replaceWith(fresh);
    return fresh;
  }
  const bar = node.querySelector('[role="progressbar"]');
  if (bar) setProgress(bar, card.progress);
  const value = node.querySelector(".progress-value");
  if (value) value.textContent = `${card.progress}%`;
  return node;
}

const ENDED = new Set(["completed", "failed"]);

function upsert(card) {
  const before = cards.get(card.id);
  if (before && before.status !== card.status && ENDED.has(card.status)) notifyEnded(card);
  cards.set(card.id, card);
  const node = nodes.get(card.id);
  if (node && before) nodes.set(card.id, patchCard(node, before, card));
  else nodes.set(card.id, buildCard(card));
}

function remove(id) {
  cards.delete(id);
  const node = nodes.get(id);
  if (node) node.remove();
  nodes.delete(id);
}

function replaceAll(videos) {
  const keep = new Set(videos.map((card) => card.id));
  for (const id of [...cards.keys()]) if (!keep.has(id)) remove(id);
  for (const card of videos) upsert(card);
}

function render() {
  loading.hidden = true;
  const ordered = [...cards.values()].sort(SORTS[sort]);
  // reorder only when needed, so CSS transitions are not restarted
  let previous = null;
  for (const card of ordered) {
    const node = nodes.get(card.id);
    const expected = previous ? previous.nextElementSibling : grid.firstElementChild;
    if (node !== expected) {
      if (previous) previous.after(node);
      else grid.prepend(node);
    }
    node.hidden = !FILTERS[filter](card) || !matches(card);
    previous = node;
  }
  noMatch.hidden = !query || ordered.length === 0 || ordered.some(matches);
  const active = ordered.filter((card) => isActive(card.status)).length;
  empty.hidden = ordered.length > 0;
  grid.hidden = ordered.length === 0;
  summary.textContent = describe(ordered.length, active);
  if (active > 0) {
    badge.hidden = false;
    badge.setAttribute("data-processing", "");
    badge.querySelector(".processing-count").textContent =
      active === 1 ? ": 1 project" : `: ${active} projects`;
  } else {
    badge.hidden = true;
    badge.removeAttribute("data-processing");
  }
  const searched = ordered.filter(matches);
  for (const chip of filters.querySelectorAll("[data-filter]")) {
    const count = searched.filter(FILTERS[chip.dataset.filter]).length;
    chip.querySelector(".count").textContent = String(count);
  }
}

function describe(total, active) {
  if (total === 0) return "No projects yet";
  const projects = total === 1 ? "1 project" : `${total} projects`;
  return active ? `${projects} · ${active} processing` : projects;
}

const feed = new LiveFeed({
  onSnapshot(videos) {
    replaceAll(videos);
    render();
  },
  onUpdate(card) {
    upsert(card);
    render();
  },
  onRemoved(id) {
    remove(id);
    render();
  },
  async poll() {
    const data = await api("/api/videos");
    // a command answered while this was read: what the page shows is newer than this list
    if (data.position < writtenPosition()) return;
    if (feed.acceptPosition(data.position)) {
      replaceAll(data.videos || []);
      render();
    }
  },
  isActive: () => [...cards.values()].some((card) => isActive(card.status)),
  onState(state) {
    connection.dataset.state = state;
    connection.textContent = {
      live: "Live",
      polling: "Refreshing every 8 s",
      connecting: "Connecting…",
      offline: "Reconnecting…",
    }[state];
  },
});

filters.addEventListener("click", (event) => {
  const chip = event.target.closest("[data-filter]");
  if (!chip) return;
  filter = chip.dataset.filter;
  for (const other of filters.querySelectorAll("[data-filter]")) {
    other.setAttribute("aria-pressed", String(other === chip));
  }
  render();
});

// ---- new video ------------------------------------------------------------------------

const dialog = document.getElementById("new-video");
const form = document.getElementById("new-video-form");
const formError = document.getElementById("new-video-error");
const costLine = document.getElementById("nv-cost");
const briefCount = document.getElementById("nv-brief-count");
const autopilotBox = document.getElementById("nv-autopilot");

// What the server checks (CONTRACT §2 and §7), said next to the field before sending.
const MAX_TITLE = 200;
const MAX_BRIEF = 5000;
const FORMATS = ["9:16", "16:9", "1:1", "4:5"];
const CONTROL = /\p{Cc}/u;
const BIDI = /[\u202a-\u202e\u2066-\u2069]/u;
const LONE_SURROGATE = /\p{Cs}/u;
const FORM_FIELDS = ["title", "format", "brief", "autopilot"];

function codePoint(character) {
  return `U+${character.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
}

function textProblem(text, { multiline = false } = {}) {
  const checked = multiline ? text.replace(/[\n\t]/g, "") : text;
  const control = checked.match(CONTROL);
  if (control) {
    const allowed = multiline ? " (line breaks and tabs are fine)" : "";
    return `Remove the invisible control character ${codePoint(control[0])}${allowed}.`;
  }
  const bidi = text.match(BIDI);
  if (bidi) return `Remove the text-direction character ${codePoint(bidi[0])}.`;
  if (LONE_SURROGATE.test(text)) return "The text holds a broken character: retype it.";
  return null;
}

function length(text) {
  return [...text].length; // characters as the server counts them, not UTF-16 units
}

function draftOf(data) {
  return {
    title: String(data.get("title") || "").trim(),
    format: String(data.get("format") || ""),
    brief: String(data.get("brief") || "").replace(/\r\n/g, "\n"),
    autopilot: data.get("autopilot") === "on",
  };
}

function problemsOf(draft) {
  const problems = {};
  if (!draft.title) problems.title = "Give the video a title.";
  else if (length(draft.title) > MAX_TITLE)
    problems.title = `Keep the title to ${MAX_TITLE} characters (it has ${length(draft.title)}).`;
  else problems.title = textProblem(draft.title);
  if (!FORMATS.includes(draft.format)) problems.format = "Choose a format.";
  if (length(draft.brief) > MAX_BRIEF)
    problems.brief = `Keep the brief to 5,000 characters (it has ${length(draft.brief).toLocaleString()}).`;
  else problems.brief = textProblem(draft.brief, { multiline: true });
  for (const name of Object.keys(problems)) if (!problems[name]) delete problems[name];
  return problems;
}

function fieldError(name) {
  return document.getElementById(`nv-${name}-error`);
}

function showProblems(problems) {
  for (const name of FORM_FIELDS) {
    const message = problems[name] || "";
    const error = fieldError(name);
    error.textContent = message;
    error.hidden = !message;
    for (const input of form.querySelectorAll(`[name="${name}"]`)) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
    form.querySelector(`[data-field="${name}"]`).classList.toggle("invalid", Boolean(message));
  }
}

function focusFirst(problems) {
  const first = FORM_FIELDS.find((name) => problems[name]);
  const input = first && form.querySelector(`[name="${first}"]:checked, [name="${first}"]`);
  if (input) input.focus();
}

/** The server's 422 on the fields it names; what names no field of the form goes above them. */
function serverProblems(error) {
  const problems = {};
  const rest = [];
  for (const [name, why] of Object.entries(error.fields || {})) {
    const text = Array.isArray(why) ? why.join(", ") : String(why);
    const sentence = text.charAt(0).toUpperCase() + text.slice(1) + (/[.!?]$/.test(text) ? "" : ".");
    if (FORM_FIELDS.includes(name)) problems[name] = sentence;
    else rest.push(sentence);
  }
  return { problems, rest };
}

let tried = false; // once the person has tried to send, fields are checked as they type
let serverSaid = {}; // the server's word on a field stands until that field changes

function check() {
  showProblems({ ...serverSaid, ...problemsOf(draftOf(new FormData(form))) });
}

form.addEventListener("input", (event) => {
  if (event.target.name === "brief") briefCount.textContent = length(event.target.value).toLocaleString();
  if (event.target.name === "autopilot") showCost();
  delete serverSaid[event.target.name];
  if (tried) check();
});
form.addEventListener("change", (event) => {
  if (event.target.name === "autopilot") showCost();
});
form.addEventListener(
  "blur",
  (event) => {
    const name = event.target.name;
    if (!FORM_FIELDS.includes(name) || !event.target.value) return;
    const problems = problemsOf(draftOf(new FormData(form)));
    showProblems(tried ? problems : { [name]: problems[name] });
  },
  true,
);

// ---- what autopilot costs ----

let prices = null;

async function loadPrices() {
  if (prices) return prices;
  try {
    prices = await api("/api/prices");
  } catch (error) {
    console.warn("prices not read", error);
  }
  return prices;
}

function showCost() {
  if (!autopilotBox.checked) {
    costLine.dataset.cost = "0";
    costLine.textContent = "Creating a draft is free: each step shows its price in the Studio.";
    costLine.classList.remove("short");
    return;
  }
  if (!prices) {
    costLine.removeAttribute("data-cost");
    costLine.textContent = "Reading the prices…";
    loadPrices().then(() => prices && showCost());
    return;
  }
  const total = prices.autopilot;
  costLine.dataset.cost = String(total);
  const balanceNode = document.querySelector("[data-balance]");
  const balance = balanceNode ? Number(balanceNode.dataset.balance) : NaN;
  const parts = [
    el("strong", {}, `Autopilot total: about ${total.toLocaleString()} credits`),
    ", reserved step by step; each step is charged what it really used.",
  ];
  const short = Number.isFinite(balance) && balance < total;
  if (short) {
    parts.push(
      ` Your balance is ${balance.toLocaleString()}: autopilot pauses when it runs short, and you`,
      " can then add credits or go on by hand.",
    );
  }
  costLine.classList.toggle("short", short);
  costLine.replaceChildren(...parts);
}

for (const opener of document.querySelectorAll("[data-open-new-video]")) {
  opener.addEventListener("click", () => {
    announce(formError, "");
    form.reset();
    tried = false;
    serverSaid = {};
    showProblems({});
    briefCount.textContent = "0";
    showCost();
    loadPrices();
    dialog.showModal();
  });
}
document.getElementById("new-video-cancel").addEventListener("click", () => dialog.close());

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = form.querySelector('[type="submit"]');
  const draft = draftOf(new FormData(form));
  tried = true;
  serverSaid = {};
  announce(formError, "");
  const problems = problemsOf(draft);
  showProblems(problems);
  if (Object.keys(problems).length) {
    focusFirst(problems);
    return;
  }
  submit.disabled = true;
  try {
    const card = await api("/api/projects", { method: "POST", body: draft });
    dialog.close();
    upsert(card);
    render();
    feed.refresh();
    flash(messages, `“${card.title}” was created.`, "ok");
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && error.fields) {
      const { problems: fromServer, rest } = serverProblems(error);
      serverSaid = fromServer;
      showProblems(fromServer);
      focusFirst(fromServer);
      if (rest.length) announce(formError, `Please check the form. ${rest.join(" ")}`);
    } else {
      announce(formError, explain(error));
    }
  } finally {
    submit.disabled = false;
  }
});

// ---- search and sort ----------------------------------------------------------------------

let typing = null;
search.addEventListener("input", () => {
  clearTimeout(typing);
  query = search.value.trim();
  render();
  typing = setTimeout(writeUrl, 300); // one history entry per pause, not per key
});
search.addEventListener("change", () => {
  clearTimeout(typing);
  writeUrl();
});
sortSelect.addEventListener("change", () => {
  sort = sortSelect.value;
  writeUrl();
  render();
});
window.addEventListener("popstate", () => {
  clearTimeout(typing);
  readUrl();
  render();
});

// ---- the card menu: rename, download, delete --------------------------------------------

const renameDialog = document.getElementById("rename-dialog");
const renameForm = document.getElementById("rename-form");
const renameInput = document.getElementById("rename-input");
const renameError = document.getElementById("rename-error");
let renaming = null;

for (const closer of document.querySelectorAll("[data-close-dialog]")) {
  closer.addEventListener("click", () => closer.closest("dialog").close());
}

function showFieldError(message) {
  renameError.textContent = message || "";
  renameError.hidden = !message;
  if (message) renameInput.setAttribute("aria-invalid", "true");
  else renameInput.removeAttribute("aria-invalid");
}

function titleProblem(title) {
  if (!title) return "Enter a title.";
  if (title.length > 200) return "At most 200 characters.";
  // The server's rules (domain/storable.py): no control or direction characters, valid Unicode.
  if (/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]|\p{Cs}/u.test(title)) {
    return "Remove the characters that cannot be stored.";
  }
  return null;
}

function openRename(card) {
  renaming = card;
  showFieldError("");
  renameInput.value = card.title;
  renameDialog.showModal();
  renameInput.select();
}

renameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const title = renameInput.value.trim();
  const problem = titleProblem(title);
  if (problem) {
    showFieldError(problem);
    renameInput.focus();
    return;
  }
  const submit = renameForm.querySelector('[type="submit"]');
  submit.disabled = true;
  try {
    const card = await api(`/api/projects/${encodeURIComponent(renaming.id)}`, {
      method: "PATCH",
      body: { title },
    });
    renameDialog.close();
    upsert(card);
    render();
    toast(toasts, `Renamed to “${card.title}”`);
  } catch (error) {
    const why = error instanceof ApiError && error.fields && error.fields.title;
    showFieldError(why ? String(why) : explain(error));
    renameInput.focus();
  } finally {
    submit.disabled = false;
  }
});

async function openDelete(card) {
  if (!(await confirmDelete(card.title))) return;
  try {
    await api(`/api/projects/${encodeURIComponent(card.id)}`, { method: "DELETE" });
    remove(card.id);
    render();
    toast(toasts, `Deleted “${card.title}”`);
  } catch (error) {
    toast(toasts, explain(error), { kind: "error" });
  }
}

async function downloadVideo(card) {
  try {
    const view = await api(`/api/projects/${encodeURIComponent(card.id)}`);
    const video = (view.assets || []).find((asset) => asset.kind === "final_video");
    if (!video) throw new Error("The final video is not ready yet.");
    const link = el("a", { href: downloadUrl(video), download: "", hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    toast(toasts, explain(error), { kind: "error" });
  }
}

// ---- notifications ----------------------------------------------------------------------

function showNotifyState() {
  const on = notificationsOn();
  notifyToggle.setAttribute("aria-pressed", String(on));
  notifyToggle.querySelector(".notify-label").textContent = on ? "Notifications on" : "Notify me";
}

notifyToggle.addEventListener("click", async () => {
  const { message } = await toggleNotifications();
  showNotifyState();
  toast(toasts, message, { kind: "" });
});

readUrl();
showNotifyState();
feed.start();
