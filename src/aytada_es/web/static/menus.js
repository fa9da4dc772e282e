// A menu button (WAI-ARIA menu button pattern): opens on click, Enter, Space or the arrows;
// the arrows, Home and End move between items; Escape closes it and gives focus back.

import { el } from "./ui.js";

let open = null; // { button, menu, close }

/** Close the menu that is open, if any (`restoreFocus` gives the focus back to its button). */
export function closeMenus({ restoreFocus = false } = {}) {
  if (!open) return;
  const { button, menu } = open;
  open = null;
  menu.hidden = true;
  button.setAttribute("aria-expanded", "false");
  if (restoreFocus) button.focus();
}

/**
 * A button and its menu. `items()` is called each time the menu opens and returns
 * [{ label, action, danger }]; `action` runs after the menu closes.
 */
export function menuButton({ id, label, items }) {
  const button = el(
    "button",
    {
      type: "button",
      class: "menu-button",
      id: `${id}-button`,
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": `${id}-menu`,
      "aria-label": label,
    },
    el("span", { "aria-hidden": "true" }, "⋯"),
  );
  const menu = el("ul", { class: "menu", id: `${id}-menu`, role: "menu", "aria-labelledby": `${id}-button`, hidden: true });
  const wrapper = el("div", { class: "menu-wrap" }, button, menu);

  const entries = () => [...menu.querySelectorAll('[role="menuitem"]')];
  const focusAt = (index) => {
    const all = entries();
    if (all.length) all[(index + all.length) % all.length].focus();
  };

  function show(focusIndex = 0) {
    closeMenus();
    menu.replaceChildren(
      ...items().map((item) =>
        el(
          "li",
          { role: "none" },
          el(
            "button",
            {
              type: "button",
              role: "menuitem",
              tabindex: "-1",
              class: item.danger ? "danger" : null,
              "data-menu-item": item.key,
              onclick: () => {
                closeMenus({ restoreFocus: true });
                item.action();
              },
            },
            item.label,
          ),
        ),
      ),
    );
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    open = { button, menu };
    focusAt(focusIndex);
  }

  button.addEventListener("click", () => {
    if (open && open.button === button) closeMenus({ restoreFocus: true });
    else show(0);
  });
  button.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      show(0);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      show(-1);
    }
  });
  menu.addEventListener("keydown", (event) => {
    const all = entries();
    const at = all.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: all.length - 1 };
    if (event.key in moves) {
      event.preventDefault();
      focusAt(moves[event.key]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      closeMenus({ restoreFocus: true });
    } else if (event.key === "Tab") {
      closeMenus();
    }
  });
  return wrapper;
}

document.addEventListener("click", (event) => {
  if (open && !open.button.parentElement.contains(event.target)) closeMenus();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && open) closeMenus({ restoreFocus: true });
});
