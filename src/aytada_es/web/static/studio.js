// Project Studio: one project, its next step, its failure, its final ad; kept live.

import { confirmDelete } from "./delete_dialog.js";
import { ApiError, api, explain, writtenPosition } from "./api.js";
import { LiveFeed } from "./live.js";
import {
  STATUSES,
  announce,
  assetUrl,
  downloadUrl,
  el,
  humanize,
  icon,
  isActive,
  progressBar,
  setProgress,
  statusBadge,
  statusLabel,
  timeElement,
} from "./ui.js";

const root = document.getElementById("studio");
const projectId = root.dataset.projectId;
const messages = document.getElementById("studio-messages");
const connection = document.getElementById("connection");
const slots = Object.fromEntries(
  [...root.querySelectorAll("[data-slot]")].map((node) => [node.dataset.slot, node]),
);
const rendered = new Map(); // slot -> key of what it shows

let project = null;
let gone = false;
let busy = false;

const PIPELINE = [
  ["ideas", "Ideas", "generating_ideas"],
  ["script", "Script", "generating_script"],
  ["scenes", "Scenes", "generating_scenes"],
  ["video", "Video", "generating_video"],
  ["voiceover", "Voiceover", "generating_voiceover"],
  ["stitching", "Final cut", "stitching"],
];
const ORDER = Object.keys(STATUSES);
// The files of the six built-in steps; any other kind is a plug-in's, shown with its add-ons.
const BUILT_IN_KINDS = new Set([
  "scene_still",
  "product_shot",
  "banner",
  "flyer",
  "clip",
  "voiceover",
  "final_video",
  "thumbnail",
]);
const ADD_ON_STATES = {
  requested: "Running…",
  completed: "Done",
  failed: "Failed",
  skipped: "Skipped",
};
const IDEA_STATUSES = new Set(["draft", "ideas_ready", "script_ready"]);

// ---- commands -------------------------------------------------------------------------

const COMMANDS = {
  ideas: { path: "ideas", label: "Generate ideas", working: "Generating ideas…" },
  script: { path: "script", label: "Write script", working: "Writing the script…" },
  scenes: { path: "scenes", label: "Plan scenes", working: "Planning scenes…" },
  render: { path: "render", label: "Render video", working: "Rendering…" },
  retry: { path: "retry", label: "Retry", working: "Retrying…" },
  cancel: { path: "cancel", label: "Cancel", working: "Cancelling…" },
};

/** What a command reserves now, from the studio view (the domain's prices; none in JS). */
function costOf(step) {
  const costs = (project && project.costs) || {};
  return typeof costs[step] === "number" ? costs[step] : null;
}

function credits(n) {
  return n === 1 ? "1 credit" : `${n.toLocaleString()} credits`;
}

function commandButton(step, label, { primary = false } = {}) {
  const cost = costOf(step);
  return el(
    "button",
    {
      type: "button",
      class: primary ? "btn btn-primary" : "btn",
      "data-step": step,
      "data-cost": cost,
      disabled: busy || gone,
    },
    step === "retry" ? icon("retry") : null,
    label,
    cost === null ? null : el("span", { class: "cost" }, credits(cost)),
  );
}

function selectedIdea() {
  const checked = root.querySelector('input[name="idea"]:checked');
  return checked ? Number(checked.value) : null;
}

async function run(step) {
  if (busy || gone) return;
  const command = COMMANDS[step];
  const body = {};
  if (step === "script") {
    const idea = selectedIdea();
    if (idea !== null) body.idea = idea;
  }
  busy = true;
  setButtonsDisabled(true);
  announce(messages, command.working, "");
  try {
    const card = await api(`/api/projects/${encodeURIComponent(projectId)}/${command.path}`, {
      method: "POST",
      body,
    });
    announce(messages, "");
    if (card && card.status) project = { ...project, ...card };
  } catch (error) {
    announce(messages, explain(error), "error");
    if (error instanceof ApiError && error.status === 404) markGone();
  } finally {
    busy = false;
    setButtonsDisabled(gone);
    render();
    feed.refresh();
    refetch();
  }
}

function setButtonsDisabled(disabled) {
  for (const button of root.querySelectorAll("button[data-step], #delete-project")) {
    button.disabled = disabled;
  }
}

root.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-step]");
  if (button && !button.disabled) run(button.dataset.step);
});

document.getElementById("delete-project").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  const title = project ? project.title : "this project";
  if (!(await confirmDelete(title))) return;
  button.disabled = true;
  try {
    await api(`/api/projects/${encodeURIComponent(projectId)}`, { method: "DELETE" });
    feed.stop();
    location.assign("/dashboard/videos");
  } catch (error) {
    announce(messages, explain(error), "error");
    button.disabled = false;
  }
});

// ---- loading ----------------------------------------------------------------------------

let fetching = null;
let again = false;

async function refetch() {
  if (fetching) {
    again = true;
    return fetching;
  }
  fetching = (async () => {
    do {
      again = false;
      const asked = writtenPosition();
      try {
        const fetched = await api(`/api/projects/${encodeURIComponent(projectId)}`);
        // a command answered while this was read: its newer state is read next, never this one
        if (writtenPosition() > asked) {
          again = true;
          continue;
        }
        project = fetched;
        render();
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) markGone();
        else announce(messages, explain(error), "error");
      }
    } while (again && !gone);
  })();
  try {
    await fetching;
  } finally {
    fetching = null;
    feed.refresh();
  }
}

function markGone() {
  gone = true;
  document.getElementById("studio-loading").hidden = true;
  document.getElementById("studio-gone").hidden = false;
  root.hidden = true;
  feed.stop();
}

// ---- rendering ----------------------------------------------------------------------------

function show(slot, key, build) {
  const target = slots[slot];
  if (!target) return;
  if (rendered.get(slot) === key) return;
  rendered.set(slot, key);
  const node = build();
  target.replaceChildren(...(node ? [node] : []));
  target.hidden = !node;
}

function render() {
  if (!project || gone) return;
  document.getElementById("studio-loading").hidden = true;
  root.hidden = false;
  document.title = `${project.title} · Project Studio · Aytada`;
  root.dataset.status = project.status;

  const status = project.status;
  const assets = project.assets || [];
  const ideas = project.ideas || [];
  const scenes = project.scenes || [];

  show("head", JSON.stringify([project.title, status, project.format, project.created_at]), () =>
    renderHead(),
  );
  const pipelineKey = JSON.stringify([status, ideas.length, project.failure && project.failure.step]);
  show("pipeline", pipelineKey, () => renderPipeline());
  updateProgress();
  const costs = project.costs || {};
  show("next", JSON.stringify([status, ideas.length, costs, project.paused || null]), () => renderNext());
  show("failure", JSON.stringify([status, project.failure, costs.retry]), () => renderFailure());
  const final = assets.find((a) => a.kind === "final_video");
  const thumb = assets.find((a) => a.kind === "thumbnail");
  show("final", JSON.stringify([status, final && final.id, thumb && thumb.id]), () =>
    renderFinal(final, thumb),
  );
  const addOns = project.add_ons || [];
  const extras = assets.filter((a) => !BUILT_IN_KINDS.has(a.kind));
  show("addons", JSON.stringify([addOns, extras.map((a) => [a.id, a.label])]), () =>
    renderAddOns(addOns, extras),
  );
  show("ideas", JSON.stringify([ideas, IDEA_STATUSES.has(status)]), () => renderIdeas(ideas));
  show("script", JSON.stringify(project.script || null), () => renderScript(project.script));
  show("scenes", JSON.stringify(scenes), () => renderScenes(scenes));
  show("details", JSON.stringify([project.format, project.created_at, project.updated_at, project.credits, project.autopilot]), () =>
    renderDetails(),
  );
  show("brief", JSON.stringify(project.brief || ""), () => renderBrief());
  show("assets", JSON.stringify(assets.map((a) => [a.id, a.label])), () => renderAssets(assets));
}

function renderHead() {
  document.getElementById("crumb-title").textContent = project.title;
  return el(
    "div",
    { class: "studio-title" },
    el(
      "div",
      {},
      el("h1", { id: "project-title" }, project.title),
      el(
        "p",
        { class: "page-sub" },
        `${project.format} · created `,
        timeElement(project.created_at, { withTime: true }),
      ),
    ),
    statusBadge(project.status),
  );
}

function stepState(index, activeStatus) {
  const status = project.status;
  if (status === "failed" && project.failure) {
    const failedAt = PIPELINE.findIndex(([step]) => step === project.failure.step);
    if (index === failedAt) return "failed";
    return index < failedAt ? "done" : "todo";
  }
  if (status === activeStatus) return "current";
  if (index === 0 && !(project.ideas || []).length) return ORDER.indexOf(status) > 2 ? "skipped" : "todo";
  return ORDER.indexOf(status) > ORDER.indexOf(activeStatus) ? "done" : "todo";
}

function renderPipeline() {
  return el(
    "ol",
    { class: "steps", "aria-label": "Production steps" },
    PIPELINE.map(([, label, activeStatus], index) => {
      const state = stepState(index, activeStatus);
      const said = { done: "done", current: "in progress", failed: "failed", skipped: "skipped", todo: "to do" }[state];
      return el("li", { "data-state": state }, label, el("span", { class: "visually-hidden" }, ` (${said})`));
    }),
  );
}

function updateProgress() {
  const slot = slots.progress;
  const active = isActive(project.status);
  const key = active ? "bar" : "none";
  if (rendered.get("progress") !== key) {
    rendered.set("progress", key);
    slot.replaceChildren();
    slot.hidden = !active;
    if (active) {
      slot.append(
        el(
          "div",
          { class: "progress-label studio-progress-label" },
          el("span", { class: "progress-stage" }),
          el("span", { class: "progress-value" }),
        ),
        progressBar(project.progress, "Project progress", { large: true }),
      );
    }
  }
  if (active) {
    setProgress(slot.querySelector('[role="progressbar"]'), project.progress);
    slot.querySelector(".progress-stage").textContent = `${statusLabel(project.status)}…`;
    slot.querySelector(".progress-value").textContent = `${project.progress}%`;
  }
}

/** Autopilot stopped before a step the balance could not cover: what it needs, what to do. */
function pausedNotice() {
  const paused = project.paused;
  if (!paused) return null;
  const needs = typeof paused.needed === "number" ? `needs ${credits(paused.needed)}` : "needs more credits";
  const balance =
    typeof paused.balance === "number" ? ` Your balance was ${credits(paused.balance)} when it stopped.` : "";
  return el(
    "div",
    { class: "paused-notice", "data-paused": paused.needed ?? "", role: "note" },
    el("strong", {}, `Autopilot paused: ${needs} for the ${humanize(paused.step).toLowerCase()} step.`),
    el(
      "p",
      {},
      `${balance} Ask support to add credits, or go on by hand with the buttons below:`,
      " each shows what it reserves, and autopilot stays off for this project.",
    ),
  );
}

function renderNext() {
  const status = project.status;
  const panel = (text, ...buttons) =>
    el(
      "section",
      { class: "panel", "aria-labelledby": "next-title" },
      el("h2", { id: "next-title" }, "Next step"),
      pausedNotice(),
      el("p", { class: "muted" }, text),
      buttons.length ? el("div", { class: "next-actions" }, buttons) : null,
    );
  const hasIdeas = (project.ideas || []).length > 0;
  switch (status) {
    case "draft":
      return panel(
        "Start by brainstorming ad concepts, or write a script straight from the brief.",
        commandButton("ideas", "Generate ideas", { primary: true }),
        commandButton("script", "Write script from brief"),
      );
    case "ideas_ready":
      return panel(
        "Choose one of the ideas below, then write its script.",
        commandButton("script", "Write script", { primary: true }),
        commandButton("ideas", "Regenerate ideas"),
      );
    case "script_ready":
      return panel(
        "Break the script into visual scenes.",
        commandButton("scenes", "Plan scenes", { primary: true }),
        commandButton("script", hasIdeas ? "Rewrite script from chosen idea" : "Rewrite script"),
      );
    case "scenes_ready":
      return panel(
        "Render a clip per scene, record the voiceover and stitch the final ad.",
        commandButton("render", "Render video", { primary: true }),
        commandButton("scenes", "Re-plan scenes"),
      );
    case "completed":
      return null;
    case "failed":
      return null;
    default:
      return panel(
        `${statusLabel(status)}. You can leave this page: the work goes on, and My Videos shows when it is done.`,
        commandButton("cancel", "Cancel this step"),
      );
  }
}

function renderFailure() {
  if (project.status !== "failed") return null;
  const failure = project.failure || {};
  const step = failure.step || "";
  const cancelled = failure.code === "cancelled";
  // What a person may look up; the provider's own error is for auditors, never shown here.
  const rows = [
    ["step", "Step", humanize(step) || "Unknown"],
    ["code", "Reason code", el("code", {}, failure.code || "internal")],
  ];
  if (!cancelled) rows.push(["attempts", "Attempts", String(failure.attempts ?? "—")]);
  if (failure.failed_at) rows.push(["when", "When", timeElement(failure.failed_at, { withTime: true })]);
  return el(
    "section",
    {
      class: "panel failure",
      "aria-labelledby": "failure-title",
      "data-failure-step": step,
      "data-failure-code": failure.code || "",
    },
    el("h2", { id: "failure-title" }, cancelled ? "This step was cancelled" : "This project failed"),
    el("p", { class: "failure-message" }, failure.message || "The step did not finish."),
    el(
      "details",
      { class: "failure-detail" },
      el("summary", {}, "Technical details"),
      el(
        "dl",
        {},
        rows.map(([key, term, value]) => [el("dt", {}, term), el("dd", { "data-detail": key }, value)]),
      ),
    ),
    el("div", { class: "next-actions" }, commandButton("retry", `Retry ${humanize(step).toLowerCase() || "step"}`, { primary: true })),
  );
}

function renderFinal(final, thumb) {
  if (project.status !== "completed") return null;
  if (!final) {
    return el(
      "section",
      { class: "panel" },
      el("h2", {}, "Your ad"),
      el("p", { class: "muted" }, "The final video is not available."),
    );
  }
  const video = el("video", {
    class: "player",
    controls: true,
    preload: "metadata",
    playsinline: true,
    src: assetUrl(final),
    poster: thumb ? assetUrl(thumb) : null,
    "aria-label": `Final ad: ${project.title}`,
  });
  return el(
    "section",
    { class: "panel", "aria-labelledby": "final-title" },
    el("h2", { id: "final-title" }, "Your ad is ready"),
    video,
    el(
      "div",
      { class: "next-actions" },
      el(
        "a",
        {
          class: "btn btn-primary",
          href: downloadUrl(final),
          download: "",
          "data-download": "final_video",
        },
        icon("download"),
        "Download MP4",
      ),
    ),
  );
}

function labelOf(asset) {
  return asset.label || humanize(asset.kind);
}

function extraFile(asset) {
  const label = labelOf(asset);
  const type = String(asset.content_type || "");
  let preview = null;
  if (type.startsWith("video/")) {
    preview = el("video", {
      class: "player",
      controls: true,
      preload: "metadata",
      playsinline: true,
      src: assetUrl(asset),
      "aria-label": label,
    });
  } else if (type.startsWith("audio/")) {
    preview = el("audio", { controls: true, preload: "metadata", src: assetUrl(asset), "aria-label": label });
  } else if (type.startsWith("image/")) {
    preview = el("img", { class: "extra-image", src: assetUrl(asset), alt: label });
  }
  return el(
    "figure",
    { class: "extra", "data-asset-kind": asset.kind },
    el("figcaption", {}, label),
    preview,
    el(
      "a",
      { class: "btn", href: downloadUrl(asset), download: "", "data-download": asset.kind },
      icon("download"),
      `Download ${label.toLowerCase()}`,
    ),
  );
}

function renderAddOns(addOns, extras) {
  if (!addOns.length && !extras.length) return null;
  return el(
    "section",
    { class: "panel", "aria-labelledby": "addons-title" },
    el("h2", { id: "addons-title" }, "Add-ons"),
    addOns.length
      ? el(
          "ul",
          { class: "addons" },
          addOns.map((addOn) =>
            el(
              "li",
              { "data-addon": addOn.name, "data-state": addOn.state },
              el("strong", {}, humanize(addOn.name)),
              el(
                "span",
                {
                  class: "badge addon-state",
                  "data-state": addOn.state,
                  "data-kind": addOn.state === "requested" ? "active" : null,
                },
                ADD_ON_STATES[addOn.state] || humanize(addOn.state),
              ),
              addOn.message ? el("p", { class: "muted addon-message" }, addOn.message) : null,
            ),
          ),
        )
      : null,
    extras.map((asset) => extraFile(asset)),
  );
}

function renderIdeas(ideas) {
  if (!ideas.length) return null;
  const choosing = IDEA_STATUSES.has(project.status);
  const chosen = project.script && project.script.idea ? JSON.stringify(project.script.idea) : null;
  return el(
    "section",
    { class: "panel", "aria-labelledby": "ideas-title" },
    el(
      "h2",
      { id: "ideas-title" },
      "Ideas ",
      el("span", { class: "count" }, `(${ideas.length})`),
    ),
    el(
      choosing ? "fieldset" : "div",
      { class: "ideas-group" },
      choosing ? el("legend", { class: "visually-hidden" }, "Idea for the script") : null,
      el(
        "ul",
        { class: "ideas" },
        ideas.map((idea, index) => {
          const title = idea.title || idea.headline || `Idea ${index + 1}`;
          const text = idea.pitch || idea.hook || idea.description || "";
          const body = el(
            "div",
            {},
            idea.angle ? el("span", { class: "angle" }, idea.angle) : null,
            el("h3", {}, title),
            text ? el("p", {}, text) : null,
          );
          if (!choosing) return el("li", { class: "idea", "data-idea": index }, body);
          const radio = el("input", {
            type: "radio",
            name: "idea",
            value: index,
            checked: chosen ? JSON.stringify(idea) === chosen : index === 0,
            "aria-label": title,
          });
          return el(
            "li",
            { class: "idea choosable", "data-idea": index },
            el("label", { class: "idea-choice" }, body, radio),
          );
        }),
      ),
    ),
  );
}

function renderScript(script) {
  if (!script || !script.text) return null;
  return el(
    "section",
    { class: "panel", "aria-labelledby": "script-title" },
    el("h2", { id: "script-title" }, "Script ", script.words ? el("span", { class: "count" }, `(${script.words} words)`) : null),
    script.title ? el("p", {}, el("strong", {}, script.title)) : null,
    el("blockquote", { class: "script-text" }, script.text),
  );
}

function renderScenes(scenes) {
  if (!scenes.length) return null;
  return el(
    "section",
    { class: "panel", "aria-labelledby": "scenes-title" },
    el("h2", { id: "scenes-title" }, "Scenes ", el("span", { class: "count" }, `(${scenes.length})`)),
    el(
      "ol",
      { class: "scenes" },
      scenes.map((scene, index) =>
        el(
          "li",
          { class: "scene" },
          el("span", { class: "n", "aria-hidden": "true" }, String((scene.index ?? index) + 1)),
          el(
            "div",
            {},
            el("strong", {}, scene.headline || scene.title || `Scene ${index + 1}`),
            scene.visual ? el("div", { class: "muted" }, scene.visual) : null,
          ),
          scene.duration_s ? el("span", { class: "dur" }, `${scene.duration_s} s`) : null,
        ),
      ),
    ),
  );
}

const CREDIT_ROWS = [
  ["reserved", "Reserved"],
  ["charged", "Charged"],
  ["released", "Released"],
  ["still_reserved", "Still held"],
];

function facts(rows) {
  return el("dl", { class: "facts" }, rows.map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
}

function renderDetails() {
  const rows = [
    ["Format", project.format],
    ["Created", timeElement(project.created_at, { withTime: true })],
    ["Updated", timeElement(project.updated_at, { withTime: true })],
  ];
  if (typeof project.autopilot === "boolean") rows.push(["Autopilot", project.autopilot ? "On" : "Off"]);
  rows.push(["Project ID", el("code", { class: "id" }, project.id)]);
  const credits = project.credits && typeof project.credits === "object" ? project.credits : null;
  const creditRows = credits
    ? CREDIT_ROWS.filter(([key]) => typeof credits[key] === "number").map(([key, label]) => [label, String(credits[key])])
    : [];
  return el(
    "section",
    { class: "panel", "aria-labelledby": "details-title" },
    el("h2", { id: "details-title" }, "Details"),
    facts(rows),
    creditRows.length ? [el("h3", { class: "sub" }, "Credits"), facts(creditRows)] : null,
  );
}

function renderBrief() {
  return el(
    "section",
    { class: "panel", "aria-labelledby": "brief-title" },
    el("h2", { id: "brief-title" }, "Brief"),
    project.brief ? el("p", { class: "brief" }, project.brief) : el("p", { class: "muted" }, "No brief."),
  );
}

function renderAssets(assets) {
  if (!assets.length) return null;
  const perKind = {};
  for (const asset of assets) perKind[asset.kind] = (perKind[asset.kind] || 0) + 1;
  const seen = {};
  return el(
    "section",
    { class: "panel", "aria-labelledby": "assets-title" },
    el("h2", { id: "assets-title" }, "Assets ", el("span", { class: "count" }, `(${assets.length})`)),
    el(
      "ul",
      { class: "assets" },
      assets.map((asset) => {
        seen[asset.kind] = (seen[asset.kind] || 0) + 1;
        const label = perKind[asset.kind] > 1 ? `${labelOf(asset)} ${seen[asset.kind]}` : labelOf(asset);
        return el(
          "li",
          { "data-asset-kind": asset.kind },
          el("a", { href: assetUrl(asset), target: "_blank", rel: "noopener" }, label),
          el("a", { class: "kind", href: downloadUrl(asset), download: "", "aria-label": `Download ${label}` }, "Download"),
        );
      }),
    ),
  );
}

// ---- live ------------------------------------------------------------------------------

const feed = new LiveFeed({
  onSnapshot(videos) {
    const card = videos.find((video) => video.id === projectId);
    if (!card || !project || card.updated_at !== project.updated_at || card.status !== project.status) {
      refetch();
    }
  },
  onUpdate(card) {
    if (card.id === projectId) refetch();
  },
  onRemoved(id) {
    if (id === projectId) markGone();
  },
  poll: () => refetch(),
  isActive: () => Boolean(project && isActive(project.status)),
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

refetch();
feed.start();
