// The delete confirmation of My Videos and the Studio: a styled dialog that says what is kept.

import { el } from "./ui.js";

let dialog = null;

function build() {
  const name = el("strong", { class: "delete-name" });
  const node = el(
    "dialog",
    { id: "delete-dialog", role: "alertdialog", "aria-labelledby": "delete-title", "aria-describedby": "delete-what" },
    el(
      "form",
      { method: "dialog" },
      el("h2", { id: "delete-title" }, "Delete project?"),
      el(
        "div",
        { id: "delete-what" },
        el("p", {}, "“", name, "” leaves My Videos, My Scripts and My Images."),
        el(
          "ul",
          { class: "kept" },
          el("li", {}, "Nothing is lost: support can restore it for you."),
          el("li", {}, "Its history and credits are kept for audits."),
        ),
      ),
      el(
        "div",
        { class: "dialog-actions" },
        el("button", { type: "submit", class: "btn", value: "cancel", autofocus: true }, "Cancel"),
        el("button", { type: "submit", class: "btn btn-danger-solid", value: "delete" }, "Delete"),
      ),
    ),
  );
  document.body.append(node);
  return node;
}

/** Ask before a soft delete; resolves true when the person chose Delete. */
export function confirmDelete(title) {
  dialog = dialog || build();
  dialog.querySelector(".delete-name").textContent = title;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
    dialog.showModal();
  });
}
