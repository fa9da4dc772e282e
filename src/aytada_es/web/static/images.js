// My Images: every generated image of the user's projects, in its own shape, with a preview.

import { api, explain } from "./api.js";
import { announce, assetUrl, downloadUrl, el, humanize, icon, timeElement } from "./ui.js";

const grid = document.getElementById("images");
const empty = document.getElementById("images-empty");
const loading = document.getElementById("images-loading");
const summary = document.getElementById("images-summary");
const messages = document.getElementById("images-messages");
const preview = document.getElementById("image-preview");

function studioLink(image, title) {
  return el("a", { href: `/studio/${encodeURIComponent(image.project_id)}` }, title);
}

function downloadButton(image, kind, label = null) {
  return el(
    "a",
    {
      class: label ? "btn btn-primary" : "btn",
      href: downloadUrl(image),
      download: "",
      "data-download": image.kind,
      "aria-label": label ? null : `Download ${kind}`,
    },
    icon("download"),
    label,
  );
}

function openPreview(image, title) {
  const kind = humanize(image.kind);
  const picture = el("img", { src: assetUrl(image), alt: `${kind} of ${title}` });
  preview.querySelector(".preview-picture").replaceChildren(picture);
  preview.querySelector(".preview-kind").textContent = kind;
  preview.querySelector(".preview-project").replaceChildren(studioLink(image, title));
  preview.querySelector(".preview-date").replaceChildren(image.created_at ? timeElement(image.created_at) : "");
  preview.querySelector(".preview-download").replaceChildren(downloadButton(image, kind, "Download"));
  preview.dataset.imageId = image.id;
  preview.showModal();
}

function imageCard(image, titles) {
  const kind = humanize(image.kind);
  const title = titles.get(image.project_id) || "Project";
  const picture = el("img", { src: assetUrl(image), alt: kind, loading: "lazy", decoding: "async" });
  // Each picture keeps its own shape: the box takes the image's ratio once it is known.
  picture.addEventListener("load", () => {
    if (picture.naturalWidth && picture.naturalHeight) {
      picture.parentElement.style.aspectRatio = `${picture.naturalWidth} / ${picture.naturalHeight}`;
    }
  });
  return el(
    "li",
    { class: "image-card", "data-image-id": image.id, "data-project-id": image.project_id, "data-kind": image.kind },
    el(
      "button",
      { type: "button", class: "pic", "aria-label": `Preview ${kind} of ${title}`, onclick: () => openPreview(image, title) },
      picture,
    ),
    el(
      "div",
      { class: "meta" },
      el(
        "div",
        {},
        el("strong", {}, kind),
        el("div", { class: "muted" }, studioLink(image, title), " · ", image.created_at ? timeElement(image.created_at) : null),
      ),
      downloadButton(image, kind),
    ),
  );
}

preview.querySelector("[data-close-preview]").addEventListener("click", () => preview.close());
preview.addEventListener("click", (event) => {
  if (event.target === preview) preview.close(); // a click on the backdrop
});

async function load() {
  try {
    const [data, videos] = await Promise.all([
      api("/api/images"),
      api("/api/videos").catch(() => ({ videos: [] })),
    ]);
    const images = Array.isArray(data) ? data : data.images || [];
    const titles = new Map((videos.videos || []).map((card) => [card.id, card.title]));
    grid.replaceChildren(...images.map((image) => imageCard(image, titles)));
    grid.hidden = images.length === 0;
    empty.hidden = images.length > 0;
    summary.textContent = images.length === 1 ? "1 image" : `${images.length} images`;
  } catch (error) {
    announce(messages, explain(error), "error");
  } finally {
    loading.hidden = true;
  }
}

load();
