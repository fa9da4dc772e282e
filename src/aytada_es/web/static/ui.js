// Small DOM and formatting helpers shared by every page.

export const STATUSES = {
  draft: { label: "Draft", kind: "ready" },
  generating_ideas: { label: "Generating ideas", kind: "active" },
  ideas_ready: { label: "Ideas ready", kind: "ready" },
  generating_script: { label: "Writing script", kind: "active" },
  script_ready: { label: "Script ready", kind: "ready" },
  generating_scenes: { label: "Planning scenes", kind: "active" },
  scenes_ready: { label: "Scenes ready", kind: "ready" },
  generating_video: { label: "Rendering video", kind: "active" },
  generating_voiceover: { label: "Recording voiceover", kind: "active" },
  stitching: { label: "Stitching", kind: "active" },
  completed: { label: "Completed", kind: "terminal" },
  failed: { label: "Failed", kind: "terminal" },
};

export const ACTIONS = {
  continue: "Continue in Studio",
  view: "View Ad",
  retry: "View & Retry",
};

export function statusLabel(status) {
  return (STATUSES[status] && STATUSES[status].label) || status;
}

export function isActive(status) {
  return Boolean(STATUSES[status] && STATUSES[status].kind === "active");
}

/** Build an element: el("a", {href: "/x", class: "btn"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
const ICONS = {
  play: ["M8 5v14l11-7z"],
  download: ["M12 4v11", "M7 10l5 5 5-5", "M5 20h14"],
  arrow: ["M5 12h14", "M13 6l6 6-6 6"],
  retry: ["M4 4v6h6", "M20 20v-6h-6", "M5.5 15a7.5 7.5 0 0 0 13 2.5", "M18.5 9A7.5 7.5 0 0 0 5.5 6.5"],
  copy: ["M9 9h10v10H9z", "M5 15V5h10"],
  trash: ["M4 7h16", "M9 7V4h6v3", "M6 7l1 13h10l1-13"],
  plus: ["M12 5v14", "M5 12h14"],
};

export function icon(name, { filled = false } = {}) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  if (filled) svg.classList.add("filled");
  return svg;
}

export function statusBadge(status) {
  const meta = STATUSES[status] || { label: status, kind: "ready" };
  return el("span", { class: "badge", "data-status": status, "data-kind": meta.kind }, meta.label);
}

export function progressBar(value, label, { large = false } = {}) {
  const now = clamp(Number(value) || 0);
  const fill = el("div", { class: "progress-fill" });
  fill.style.width = `${now}%`;
  return el(
    "div",
    {
      class: large ? "progress large" : "progress",
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": now,
      "aria-label": label,
    },
    fill,
  );
}

export function setProgress(bar, value) {
  const now = clamp(Number(value) || 0);
  bar.setAttribute("aria-valuenow", String(now));
  const fill = bar.querySelector(".progress-fill");
  if (fill) fill.style.width = `${now}%`;
}

function clamp(n) {
  return Math.max(0, Math.min(100, Math.round(n)));
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});

export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : dateFormat.format(date);
}

export function formatDateTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : dateTimeFormat.format(date);
}

export function timeElement(iso, { withTime = false } = {}) {
  return el("time", { datetime: iso, title: iso }, withTime ? formatDateTime(iso) : formatDate(iso));
}

/** A stable, pleasant gradient for a project without a thumbnail. */
export function gradientFor(seed) {
  // FNV-1a, then a multiplicative mix, so ids that differ in one character look different
  let hash = 0x811c9dc5;
  for (const ch of String(seed)) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d) >>> 0;
  const hue = hash % 360;
  const hue2 = (hue + 35 + ((hash >>> 9) % 80)) % 360;
  return `linear-gradient(135deg, hsl(${hue} 75% 62%), hsl(${hue2} 70% 44%))`;
}

export function assetUrl(asset) {
  return asset.url || `/api/assets/${encodeURIComponent(asset.id)}`;
}

export function downloadUrl(asset) {
  return `/api/assets/${encodeURIComponent(asset.id)}?download=1`;
}

export function humanize(text) {
  const s = String(text || "").replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Show a message in a live region: kind is "error", "ok" or "" (notice). */
export function announce(region, message, kind = "error") {
  region.replaceChildren();
  if (!message) {
    region.hidden = true;
    return;
  }
  region.hidden = false;
  region.className = kind ? `notice ${kind}` : "notice";
  region.textContent = message;
}
