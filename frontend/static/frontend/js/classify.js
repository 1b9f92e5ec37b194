// The classify page's controller: one galaxy at a time through the workflow's decision tree.
// It owns the page state and moves between modes; the modules draw and fetch.

import { getJSON, randomKey, sendJSON } from "./api.js";
import { Banners } from "./banners.js";
import { h } from "./dom.js";
import { favouriteButton, feedbackBody } from "./feedback.js";
import { FieldGuide } from "./field_guide.js";
import { bindKeys } from "./keys.js";
import { Outbox } from "./outbox.js";
import { questionStep, renderProgress, reviewStep, showHelp } from "./questions.js";
import { GalaxyQueue } from "./queue.js";
import { TreeWalk } from "./tree.js";
import { Viewer } from "./viewer.js";

const app = document.getElementById("classify-app");
const cfg = app.dataset; // every URL the page uses, reversed by the template
const stepEl = document.getElementById("step");
const progressEl = document.getElementById("progress");
const imageEl = document.getElementById("galaxy-image");
const stageEl = document.getElementById("stage");
const metaEl = document.getElementById("galaxy-meta");

const state = {
  workflow: null, // the workflow document; its tree gives each answer's column
  item: null, // the queue item on screen
  walk: null, // the volunteer's way through the tree for that galaxy
  mode: "loading", // loading | question | review | sending | feedback | done | error
  startedAt: null,
  helpOpen: false,
  favourite: null, // the feedback's favourite button
};

const banners = new Banners(document.getElementById("banners"));
const viewer = new Viewer({
  stage: stageEl,
  image: imageEl,
  toolbar: document.querySelector(".viewer-toolbar"),
  adjust: document.getElementById("adjust"),
  brightness: document.getElementById("brightness"),
  contrast: document.getElementById("contrast"),
});
// Anonymous votes count only with an identity the server issued (rate-limited per address);
// signed-in volunteers vote as their account. Resolves true when the page has one.
let identity = null;
function identify() {
  if (cfg.user !== "anon") return Promise.resolve(true);
  identity ??= sendJSON("POST", cfg.volunteerUrl, {})
    .then((r) => r.status === 200 || r.status === 201, () => false)
    .then((ok) => { if (!ok) identity = null; app.dataset.identified = String(ok); return ok; });
  return identity;
}

const outbox = new Outbox({
  send: (payload) => sendJSON("POST", cfg.submitUrl, payload),
  identify,
  sendBatch: (payloads) => sendJSON("POST", cfg.batchSubmitUrl, { classifications: payloads }),
  onChange: (items) => { app.dataset.pending = String(items.length); },
});
const queue = new GalaxyQueue({
  nextUrl: cfg.nextUrl, galaxyUrl: cfg.galaxyUrl, workflow: cfg.workflow, user: cfg.user,
  pendingIds: () => outbox.items().map((i) => i.galaxyId).filter(Boolean),
  onChange: (length) => { app.dataset.queued = String(length); },
});
const guide = new FieldGuide({ dialog: document.getElementById("field-guide"), url: cfg.fieldGuideUrl });

// ------------------------------------------------------------------ galaxies
async function showNext({ keepBanners = false } = {}) {
  if (!keepBanners) banners.clear();
  state.favourite = null;
  let item;
  try {
    item = await queue.take();
  } catch {
    return renderError("We could not reach the server to fetch the next galaxy.", () => showNext());
  }
  if (!item) return renderAllDone();
  if (queue.isSeen(item)) {
    banners.show("info", `You have already classified ${item.galaxy.id_str}, so we skipped it.`, { id: "seen" });
    return showNext({ keepBanners: true });
  }
  state.item = item;
  await display(item);
  queue.refill(item);
  checkStillOpen(item);
}

async function display(item) {
  imageEl.classList.add("loading");
  await item.ready;
  imageEl.hidden = false;
  imageEl.src = item.galaxy.image_url;
  imageEl.alt = `Galaxy ${item.galaxy.id_str}`;
  stageEl.setAttribute("aria-label", `Galaxy ${item.galaxy.id_str}, zoomable image`);
  stageEl.dataset.galaxy = item.galaxy.id_str;
  metaEl.textContent = item.galaxy.id_str;
  imageEl.classList.remove("loading");
  viewer.reset();
  state.walk = new TreeWalk(state.workflow.tree);
  state.startedAt = new Date().toISOString();
  renderQuestion();
}

// A prefetched galaxy may have been retired while it waited in the queue.
async function checkStillOpen(item) {
  try {
    const status = (await queue.detail(item)).workflows?.[0];
    if (status?.retired_at && state.item === item && state.mode !== "feedback") {
      banners.clear();
      banners.show("info", `${item.galaxy.id_str} was retired meanwhile: other volunteers finished it. Here is the next one.`, { id: "retired" });
      await showNext({ keepBanners: true });
    }
  } catch { /* offline: the submission will tell */ } finally {
    app.dataset.checked = item.galaxy.id_str; // lets tests know the check has settled
  }
}

// ------------------------------------------------------------------ questions
const stepActions = {
  choose(answerKey) {
    if (state.mode !== "question") return;
    state.walk.choose(answerKey);
    if (state.walk.finished) renderReview();
    else renderQuestion();
  },
  back() {
    if (state.mode !== "question" && state.mode !== "review") return;
    const previous = state.walk.back();
    if (previous !== null) renderQuestion(previous);
  },
  help() {
    state.helpOpen = !state.helpOpen;
    showHelp(stepEl, state.helpOpen);
  },
  guide: (questionKey = state.walk?.question?.key) => guide.open(questionKey),
  submit,
};

function renderQuestion(previous = null) {
  state.mode = "question";
  renderProgress(progressEl, state.walk);
  stepEl.replaceChildren(...questionStep({
    walk: state.walk, previous, helpOpen: state.helpOpen, examples: (column) => guide.examples(column), on: stepActions,
  }));
  focusHeading();
}

function renderReview() {
  state.mode = "review";
  renderProgress(progressEl, state.walk);
  stepEl.replaceChildren(reviewStep({ walk: state.walk, on: stepActions }));
  stepEl.querySelector("#done").focus({ preventScroll: true });
}

// Move focus to the new step's heading, unless the volunteer is working the image with keys.
function focusHeading() {
  const heading = stepEl.querySelector("legend, h2");
  if (heading && document.activeElement !== stageEl) heading.focus({ preventScroll: true });
}

// ------------------------------------------------------------------ submitting and feedback
async function submit() {
  if (state.mode !== "review") return;
  state.mode = "sending";
  const item = state.item;
  const key = randomKey();
  const annotations = state.walk.annotations();
  const payload = {
    workflow: cfg.workflow, galaxy: item.galaxy.id_str, annotations, idempotency_key: key,
    started_at: state.startedAt, finished_at: new Date().toISOString(), selection: item.selection || "direct",
  };
  outbox.add({ key, payload, galaxyId: item.galaxy.id });
  queue.markSeen(item);
  stepEl.querySelector("#done")?.setAttribute("disabled", "");
  const settled = (await outbox.flush())[key] || { offline: true };
  renderFeedback(item, annotations, settled);
}

function outcomeBanner(outcome) {
  const body = outcome.body || {};
  if (outcome.offline || outcome.retrying) {
    banners.show("warn", "You seem to be offline. Your classification is saved on this device and will be sent automatically when the connection is back.", { id: "offline" });
  } else if (outcome.status === 409 && body.code === "subject_retired") {
    banners.show("info", "Other volunteers finished this galaxy while you were looking at it, so it was retired and your answers were not needed. Thank you all the same!", { id: "retired" });
  } else if (outcome.status === 409 && body.code === "workflow_inactive") {
    banners.show("warn", "This project has just been paused, so your classification could not be stored.", { id: "inactive" });
    queue.exhausted = true;
  } else if (outcome.status >= 400) {
    banners.show("warn", `The server did not accept this classification: ${body.message || outcome.status}.`, { id: "rejected" });
  } else if (body.counted === false) {
    banners.show("info", "You had already classified this galaxy, so this answer is kept in your history but not counted twice.", { id: "seen" });
  }
}

async function renderFeedback(item, annotations, outcome) {
  state.mode = "feedback";
  progressEl.hidden = true;
  outcomeBanner(outcome);
  const offline = outcome.offline || outcome.retrying;
  const classification = outcome.status < 300 ? outcome.body : null;
  state.favourite = favouriteButton({
    classification, urlTemplate: cfg.favouriteUrl,
    onOffline: () => banners.show("warn", "Could not save the favourite: you seem to be offline.", { id: "fav" }),
  });
  const next = h("button", { type: "button", class: "btn btn-primary btn-big", id: "next", onclick: () => showNext(), "aria-keyshortcuts": "N" },
    "Next galaxy → ", h("kbd", { "aria-hidden": "true" }, "N"));
  const results = h("div", { class: "feedback-results" }, h("p", { style: "color:var(--muted)" }, "Loading what others said…"));
  stepEl.replaceChildren(
    h("section", { class: "card feedback", "aria-labelledby": "feedback-title" },
      h("h2", { id: "feedback-title", tabindex: "-1" },
        offline ? "Saved on this device" : outcome.status >= 400 ? "Thank you!" : "Thanks! Here's how others see it"),
      h("div", { class: "nav-row", style: "margin-bottom:1rem" }, state.favourite, h("span", { class: "spacer" }), next),
      results));
  next.focus({ preventScroll: true });

  if (offline) {
    results.replaceChildren(h("p", {}, "The comparison with other volunteers will be available once you are back online."));
    return;
  }
  const walk = state.walk;
  try {
    const detail = await queue.detail(item);
    if (state.item === item && state.mode === "feedback") {
      results.replaceChildren(...feedbackBody({ detail, annotations, walk, counted: classification?.counted === true }));
    }
  } catch {
    results.replaceChildren(h("p", {}, "We could not load the other volunteers' answers."));
  }
}

// ------------------------------------------------------------------ end states
function renderAllDone() {
  state.mode = "done";
  state.item = null;
  progressEl.hidden = true;
  imageEl.removeAttribute("src");
  imageEl.alt = "";
  imageEl.hidden = true;
  metaEl.textContent = "";
  stageEl.setAttribute("aria-label", "No galaxy to show");
  const paused = queue.inactive;
  stepEl.replaceChildren(h("section", { class: "card empty-state", id: "all-done" },
    h("img", { class: "empty-logo", src: cfg.logoUrl, alt: "", width: 72, height: 72 }),
    h("h2", { tabindex: "-1" }, paused ? "This project is paused" : "You've seen every galaxy we have for now"),
    h("p", {}, paused ? "Come back soon." : "Thank you! New galaxies arrive as the model asks for them: check back later."),
    h("p", {}, h("a", { class: "btn", href: cfg.historyUrl }, "See your classifications"))));
  focusHeading();
}

function renderError(message, retry) {
  state.mode = "error";
  stepEl.replaceChildren(h("section", { class: "card" },
    h("h2", { tabindex: "-1" }, "Something went wrong"), h("p", {}, message),
    h("button", { type: "button", class: "btn btn-primary", onclick: retry }, "Try again")));
}

// ------------------------------------------------------------------ start
bindKeys({
  mode: () => state.mode,
  blocked: () => guide.isOpen,
  answerButtons: () => stepEl.querySelectorAll(".answer"),
  on: { ...stepActions, guide: () => stepActions.guide(), next: () => showNext(), favourite: () => state.favourite?.toggle() },
  viewer,
});
document.querySelector('[data-action="guide"]').addEventListener("click", () => stepActions.guide());
app.dataset.pending = String(outbox.items().length);

async function start() {
  if (!(await identify())) {
    banners.show("warn", "We could not register you as a volunteer just now (too many new volunteers from your network, or no connection). Your classifications are kept on this device and sent once that works; signing in avoids it.", { id: "identity" });
  }
  try {
    [state.workflow] = await Promise.all([getJSON(cfg.workflowUrl), guide.load()]);
  } catch {
    return renderError("We could not load this project's questions.", start);
  }
  if (outbox.items().length) {
    const sent = Object.values(await outbox.flush()).filter((r) => r.status && r.status < 300).length;
    if (sent) banners.show("ok", `${sent} classification${sent > 1 ? "s" : ""} saved while offline ${sent > 1 ? "have" : "has"} now been sent.`, { id: "outbox" });
  }
  await showNext({ keepBanners: true });
  app.dataset.ready = "true";
}

start();
