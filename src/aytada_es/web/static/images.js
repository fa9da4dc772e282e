// My Images: every generated image of the user's projects, each downloadable.

import { api, explain } from "./api.js";
import { announce, assetUrl, downloadUrl, el, humanize, icon, timeElement } from "./ui.js";

const grid = document.getElementById("images");
const empty = document.getElementById("images-empty");
const loading = document.getElementById("images-loading");
const summary = document.getElementById("images-summary");
const messages = document.getElementById("images-messages");

function imageCard(image, titles) {
  const kind = humanize(image.kind);
  const project = titles.get(image.project_id) || "Project";
  return el(
    "li",
    { class: "image-card", "data-image-id": image.id, "data-project-id": image.project_id, "data-kind": image.kind },
    el(
      "a",
      { class: "pic", href: assetUrl(image), target: "_blank", rel: "noopener", "aria-label": `Open ${kind}` },
      el("img", { src: assetUrl(image), alt: kind, loading: "lazy", decoding: "async" }),
    ),
    el(
      "div",
      { class: "meta" },
      el(
        "div",
        {},
        el("strong", {}, kind),
        el("div", { class: "muted" }, el("a", { href: `/studio/${encodeURIComponent(image.project_id)}` }, project), " · ", image.created_at ? timeElement(image.created_at) : null),
      ),
      el(
        "a",
        { class: "btn", href: downloadUrl(image), download: "", "data-download": image.kind, "aria-label": `Download ${kind}` },
        icon("download"),
      ),
    ),
  );
}

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
