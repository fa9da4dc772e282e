// My Scripts: every script of the user's projects, with a copy button.

import { api, explain } from "./api.js";
import { announce, el, icon, timeElement } from "./ui.js";

const list = document.getElementById("scripts");
const empty = document.getElementById("scripts-empty");
const loading = document.getElementById("scripts-loading");
const summary = document.getElementById("scripts-summary");
const messages = document.getElementById("scripts-messages");

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // clipboard API refused (permissions, insecure context): select-and-copy fallback
    const area = el("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.querySelector(".label");
  label.textContent = "Copied";
  button.dataset.copied = "";
  setTimeout(() => {
    label.textContent = "Copy";
    delete button.dataset.copied;
  }, 2000);
}

function scriptCard(script, index) {
  const titleId = `script-${index}`;
  const text = script.text || "";
  const button = el(
    "button",
    { type: "button", class: "btn", "data-copy": "", "aria-describedby": titleId },
    icon("copy"),
    el("span", { class: "label" }, "Copy"),
  );
  button.addEventListener("click", () => copy(text, button));
  const words = script.words || text.split(/\s+/).filter(Boolean).length;
  return el(
    "li",
    {
      class: "script-card",
      "data-script-id": script.id || null,
      "data-project-id": script.project_id,
      "aria-labelledby": titleId,
    },
    el("h2", { id: titleId }, script.title || "Untitled script"),
    el(
      "div",
      { class: "card-meta" },
      el("a", { href: `/studio/${encodeURIComponent(script.project_id)}` }, script.project_title || "Project"),
      script.format ? [el("span", { class: "sep", "aria-hidden": "true" }, "·"), script.format] : null,
      el("span", { class: "sep", "aria-hidden": "true" }, "·"),
      script.created_at ? timeElement(script.created_at) : null,
    ),
    el("blockquote", { class: "script-text" }, text),
    el("footer", {}, el("span", { class: "muted" }, `${words} words`), button),
  );
}

async function load() {
  try {
    const data = await api("/api/scripts");
    const scripts = Array.isArray(data) ? data : data.scripts || [];
    list.replaceChildren(...scripts.map(scriptCard));
    list.hidden = scripts.length === 0;
    empty.hidden = scripts.length > 0;
    summary.textContent = scripts.length === 1 ? "1 script" : `${scripts.length} scripts`;
  } catch (error) {
    announce(messages, explain(error), "error");
  } finally {
    loading.hidden = true;
  }
}

load();
