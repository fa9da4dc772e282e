// Short messages that go away by themselves (after TOAST_MS) and can be dismissed sooner.

import { el } from "./ui.js";

export const TOAST_MS = 5000;

function dismissButton(onDismiss) {
  return el("button", { type: "button", class: "toast-dismiss", "aria-label": "Dismiss", onclick: onDismiss }, "×");
}

/** Show a toast in the region; returns a function that dismisses it. */
export function toast(region, message, { kind = "ok", ms = TOAST_MS } = {}) {
  const node = el("div", { class: `toast ${kind}`, "data-toast": kind }, el("span", {}, message));
  let timer = null;
  const dismiss = () => {
    clearTimeout(timer);
    node.remove();
  };
  node.append(dismissButton(dismiss));
  region.append(node);
  timer = setTimeout(dismiss, ms);
  return dismiss;
}

/** Show a banner (a notice in a live region) that hides itself after `ms`, with a dismiss button. */
export function flash(region, message, kind = "ok", ms = TOAST_MS) {
  clearTimeout(region._flashTimer);
  region.replaceChildren();
  region.hidden = false;
  region.className = kind ? `notice ${kind} dismissible` : "notice dismissible";
  const hide = () => {
    clearTimeout(region._flashTimer);
    region.hidden = true;
    region.replaceChildren();
  };
  region.append(el("span", {}, message), dismissButton(hide));
  region._flashTimer = setTimeout(hide, ms);
}
