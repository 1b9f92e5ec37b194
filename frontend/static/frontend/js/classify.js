// The classify page: one galaxy at a time through the workflow's decision tree.

import { getJSON, randomKey, sendJSON } from "./api.js";
import { h, percent } from "./dom.js";
import { Outbox } from "./outbox.js";
import { TreeWalk } from "./tree.js";
import { Viewer } from "./viewer.js";

const QUEUE_TARGET = 6;
const REFILL_BELOW = 3;
const SEEN_KEY = "gz-seen-v1";
const SEEN_MAX = 2000;

const app = document.getElementById("classify-app");
const cfg = app.dataset;
const stepEl = document.getElementById("step");
const bannersEl = document.getElementById("banners");
const progressEl = document.getElementById("progress");
const imageEl = document.getElementById("galaxy-image");
const stageEl = document.getElementById("stage");
const metaEl = document.getElementById("galaxy-meta");
const guideDialog = document.getElementById("field-guide");
const guideBody = document.getElementById("field-guide-body");

const viewer = new Viewer({
  stage: stageEl,
  image: imageEl,
  toolbar: document.querySelector(".viewer-toolbar"),
  adjust: document.getElementById("adjust"),
  brightness: document.getElementById("brightness"),
  contrast: document.getElementById("contrast"),
});

const state = {
  workflow: null,
  guide: null,
  walk: null,
  item: null,
  queue: [],
  fetching: null,
  exhausted: false,
  mode: "loading", // question | review | sending | feedback | done | error
  startedAt: null,
  helpOpen: false,
  classification: null,
};

// ------------------------------------------------------------------ seen galaxies (this browser)
function seenMap() {
  try { return JSON.parse(localStorage.getItem(`${SEEN_KEY}:${cfg.user}`) || "{}"); } catch { return {}; }
}
function markSeen(galaxyId) {
  const seen = seenMap();
  seen[galaxyId] = Date.now();
  const ids = Object.keys(seen);
  if (ids.length > SEEN_MAX) ids.sort((a, b) => seen[a] - seen[b]).slice(0, ids.length - SEEN_MAX).forEach((id) => delete seen[id]);
  localStorage.setItem(`${SEEN_KEY}:${cfg.user}`, JSON.stringify(seen));
}

// ------------------------------------------------------------------ outbox
const outbox = new Outbox({
  send: (payload) => sendJSON("POST", cfg.submitUrl, payload),
  sendBatch: (payloads) => sendJSON("POST", cfg.batchSubmitUrl, { classifications: payloads }),
  onChange: (items) => { app.dataset.pending = String(items.length); },
});
app.dataset.pending = String(outbox.items().length);

// ------------------------------------------------------------------ banners
function banner(kind, text, { id } = {}) {
  if (id) bannersEl.querySelector(`[data-banner="${id}"]`)?.remove();
  const el = h("div", { class: `banner banner-${kind}`, role: kind === "warn" ? "alert" : "status", dataset: { banner: id || kind } },
    h("p", {}, text));
  bannersEl.append(el);
  return el;
}
function clearBanners() { bannersEl.replaceChildren(); }

// ------------------------------------------------------------------ queue
function pendingGalaxyIds() {
  return outbox.items().map((i) => i.galaxyId).filter(Boolean);
}

function preload(url) {
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  return img.decode().then(() => img, () => img);
}

async function refill() {
  if (state.fetching) return state.fetching;
  if (state.queue.length >= REFILL_BELOW || state.exhausted) return null;
  const exclude = new Set([...state.queue.map((i) => i.galaxy.id), ...pendingGalaxyIds()]);
  if (state.item) exclude.add(state.item.galaxy.id);
  const url = `${cfg.nextUrl}?limit=${QUEUE_TARGET - state.queue.length}&exclude=${[...exclude].join(",")}`;
  state.fetching = (async () => {
    try {
      const data = await getJSON(url);
      if (!data.workflow_active) state.inactive = true;
      const seen = seenMap();
      const fresh = data.results.filter((r) => !exclude.has(r.galaxy.id) && !seen[r.galaxy.id]);
      if (!data.results.length) state.exhausted = true;
      for (const result of fresh) {
        const item = { ...result, ready: preload(result.galaxy.image_url) };
        state.queue.push(item);
      }
      app.dataset.queued = String(state.queue.length);
    } catch (error) {
      state.fetchError = error;
    } finally {
      state.fetching = null;
    }
  })();
  return state.fetching;
}

async function showNext({ keepBanners = false } = {}) {
  if (!keepBanners) clearBanners();
  state.classification = null;
  while (!state.queue.length) {
    state.fetchError = null;
    state.exhausted = false;
    await refill();
    if (state.queue.length) break;
    if (state.fetchError) return renderError("We could not reach the server to fetch the next galaxy.", () => showNext());
    return renderAllDone();
  }
  const item = state.queue.shift();
  if (seenMap()[item.galaxy.id]) {
    banner("info", `You have already classified ${item.galaxy.id_str}, so we skipped it.`, { id: "seen" });
    return showNext({ keepBanners: true });
  }
  state.item = item;
  await display(item);
  refill();
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
    const detail = await getJSON(`${cfg.galaxyUrl}${encodeURIComponent(item.galaxy.id_str)}/?workflow=${cfg.workflow}`);
    const status = detail.workflows?.[0];
    if (status?.retired_at && state.item === item && state.mode !== "feedback") {
      clearBanners();
      banner("info", `${item.galaxy.id_str} was retired meanwhile: other volunteers finished it. Here is the next one.`, { id: "retired" });
      await showNext({ keepBanners: true });
    }
  } catch { /* offline: the submission will tell */ } finally {
    app.dataset.checked = item.galaxy.id_str; // lets tests know the check has settled
  }
}

// ------------------------------------------------------------------ rendering the tree
function thumbFor(questionKey, answer, index) {
  const examples = state.guide?.byAnswer.get(`${questionKey}_${answer.key}`) || [];
  if (examples.length) return h("span", { class: "answer-thumb" }, h("img", { src: examples[0].image_url, alt: "", loading: "lazy" }));
  return h("span", { class: "answer-thumb", "aria-hidden": "true" }, h("span", { class: "glyph" }, answer.label.trim().charAt(0) || index + 1));
}

function renderProgress() {
  const { done, total, fraction } = state.walk.progress();
  progressEl.hidden = false;
  const bar = progressEl.querySelector(".progress-bar");
  bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  bar.setAttribute("aria-valuetext", state.walk.finished ? "All questions answered" : `Question ${done + 1}, at most ${total} in all`);
  bar.querySelector("span").style.width = `${Math.max(4, fraction * 100)}%`;
  const trail = progressEl.querySelector(".trail");
  trail.replaceChildren(...state.walk.steps.map((s) => h("li", {}, h("strong", {}, state.walk.label(s.question, s.answer)))));
}

function renderQuestion(previous = null) {
  state.mode = "question";
  const walk = state.walk;
  const question = walk.question;
  renderProgress();
  const number = walk.steps.length + 1;
  const helpId = `help-${question.key}`;
  const answers = question.answers.map((answer, index) => {
    const key = index < 9 ? String(index + 1) : null;
    return h("button", {
      type: "button", class: "answer", dataset: { answer: answer.key },
      "aria-pressed": previous === answer.key ? "true" : "false",
      "aria-keyshortcuts": key, "aria-describedby": answer.help ? `ah-${question.key}-${answer.key}` : null,
      onclick: () => choose(answer.key),
    },
    thumbFor(question.key, answer, index),
    h("span", {}, h("span", { class: "answer-label" }, answer.label),
      answer.help ? h("span", { class: "answer-help", id: `ah-${question.key}-${answer.key}` }, answer.help) : null),
    key ? h("kbd", { "aria-hidden": "true" }, key) : h("span"));
  });
  const fieldset = h("fieldset", { class: "question", dataset: { question: question.key } },
    h("legend", { tabindex: "-1" }, h("span", { class: "question-step" }, `Question ${number}`), question.text),
    h("div", { class: "question-tools" },
      question.help ? h("button", {
        type: "button", class: "linkish", "aria-expanded": String(state.helpOpen), "aria-controls": helpId,
        "aria-keyshortcuts": "H", onclick: toggleHelp,
      }, "Help with this question") : null,
      h("button", { type: "button", class: "linkish", "aria-keyshortcuts": "G", onclick: () => openGuide(question.key) }, "Field guide")),
    question.help ? h("p", { class: "question-help", id: helpId, hidden: !state.helpOpen }, question.help) : null,
    h("div", { class: `answers${question.answers.length > 4 ? " compact" : ""}` }, answers));
  const nav = h("div", { class: "nav-row" },
    h("button", { type: "button", class: "btn", onclick: back, disabled: walk.steps.length === 0, "aria-keyshortcuts": "Backspace" },
      "← Back ", h("kbd", { "aria-hidden": "true" }, "⌫")),
    h("span", { class: "spacer" }),
    h("span", { class: "hint", style: "color:var(--muted);font-size:.85rem" }, "Keys 1–", Math.min(9, question.answers.length)));
  stepEl.replaceChildren(fieldset, nav);
  focusHeading();
}

// Move focus to the new step's heading, unless the volunteer is working the image with keys.
function focusHeading() {
  const heading = stepEl.querySelector("legend, h2");
  if (heading && document.activeElement !== stageEl) heading.focus({ preventScroll: true });
}

function toggleHelp() {
  state.helpOpen = !state.helpOpen;
  const help = stepEl.querySelector(".question-help");
  if (!help) return;
  help.hidden = !state.helpOpen;
  stepEl.querySelector("[aria-controls^='help-']")?.setAttribute("aria-expanded", String(state.helpOpen));
}

function choose(answerKey) {
  if (state.mode !== "question") return;
  state.walk.choose(answerKey);
  if (state.walk.finished) renderReview();
  else renderQuestion();
}

function back() {
  if (state.mode !== "question" && state.mode !== "review") return;
  const previous = state.walk.back();
  if (previous !== null) renderQuestion(previous);
}

function renderReview() {
  state.mode = "review";
  renderProgress();
  const walk = state.walk;
  const list = h("ul", { class: "review-list" }, walk.steps.map((s) =>
    h("li", {}, h("span", {}, walk.byKey.get(s.question).text), h("strong", {}, walk.label(s.question, s.answer)))));
  stepEl.replaceChildren(
    h("div", { class: "card review" },
      h("h2", { tabindex: "-1" }, "That's all the questions"),
      h("p", { style: "color:var(--muted)" }, "Press Done to send your answers, or go back to change one."),
      h("div", { class: "nav-row" },
        h("button", { type: "button", class: "btn", onclick: back }, "← Back ", h("kbd", { "aria-hidden": "true" }, "⌫")),
        h("span", { class: "spacer" }),
        h("button", { type: "button", class: "btn btn-primary btn-big", id: "done", onclick: submit }, "Done ", h("kbd", { "aria-hidden": "true" }, "Enter"))),
      list));
  stepEl.querySelector("#done").focus({ preventScroll: true });
}

// ------------------------------------------------------------------ submitting
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
  markSeen(item.galaxy.id);
  stepEl.querySelector("#done")?.setAttribute("disabled", "");
  const settled = (await outbox.flush())[key] || { offline: true };
  renderFeedback(item, annotations, settled);
}

async function renderFeedback(item, annotations, outcome) {
  state.mode = "feedback";
  progressEl.hidden = true;
  const body = outcome.body || {};
  if (outcome.offline || outcome.retrying) {
    banner("warn", "You seem to be offline. Your classification is saved on this device and will be sent automatically when the connection is back.", { id: "offline" });
  } else if (outcome.status === 409 && body.code === "subject_retired") {
    banner("info", "Other volunteers finished this galaxy while you were looking at it, so it was retired and your answers were not needed. Thank you all the same!", { id: "retired" });
  } else if (outcome.status === 409 && body.code === "workflow_inactive") {
    banner("warn", "This project has just been paused, so your classification could not be stored.", { id: "inactive" });
    state.exhausted = true;
  } else if (outcome.status >= 400) {
    banner("warn", `The server did not accept this classification: ${body.message || outcome.status}.`, { id: "rejected" });
  } else if (body.counted === false) {
    banner("info", "You had already classified this galaxy, so this answer is kept in your history but not counted twice.", { id: "seen" });
  }
  state.classification = outcome.status < 300 ? body : null;

  const favourite = h("button", {
    type: "button", class: "btn", id: "favourite", "aria-pressed": "false", "aria-keyshortcuts": "F",
    disabled: !state.classification, onclick: toggleFavourite,
    title: state.classification ? "Keep this galaxy in your favourites" : "Available once the classification is stored",
  }, "☆ Favourite");
  const next = h("button", { type: "button", class: "btn btn-primary btn-big", id: "next", onclick: () => showNext(), "aria-keyshortcuts": "N" },
    "Next galaxy → ", h("kbd", { "aria-hidden": "true" }, "N"));
  const results = h("div", { class: "feedback-results" }, h("p", { style: "color:var(--muted)" }, "Loading what others said…"));
  stepEl.replaceChildren(
    h("section", { class: "card feedback", "aria-labelledby": "feedback-title" },
      h("h2", { id: "feedback-title", tabindex: "-1" },
        outcome.offline || outcome.retrying ? "Saved on this device" : outcome.status >= 400 ? "Thank you!" : "Thanks! Here's how others see it"),
      h("div", { class: "nav-row", style: "margin-bottom:1rem" }, favourite, h("span", { class: "spacer" }), next),
      results));
  next.focus({ preventScroll: true });

  if (outcome.offline || outcome.retrying) {
    results.replaceChildren(h("p", {}, "The comparison with other volunteers will be available once you are back online."));
    return;
  }
  try {
    const detail = await getJSON(`${cfg.galaxyUrl}${encodeURIComponent(item.galaxy.id_str)}/?workflow=${cfg.workflow}`);
    if (state.item === item && state.mode === "feedback") results.replaceChildren(...feedbackBody(detail, annotations));
  } catch {
    results.replaceChildren(h("p", {}, "We could not load the other volunteers' answers."));
  }
}

function feedbackBody(detail, annotations) {
  const status = detail.workflows?.[0] || {};
  const prediction = status.prediction || null;
  const byQuestion = new Map((status.questions || []).map((q) => [q.key || q.question, q]));
  const mine = new Map(annotations.map((a) => [a.question, a.answer]));
  const modelAnswers = new Map((prediction?.questions || []).flatMap((q) => q.answers.map((a) => [`${q.question}_${a.answer}`, a])));
  const interval = prediction?.interval ? `${Math.round(prediction.interval * 100)}% interval` : "interval";
  const out = [
    h("p", { class: "legend-row" },
      h("span", {}, h("span", { class: "swatch", style: "background:var(--cyan)" }), `Volunteers (${status.classification_count ?? 0} so far)`),
      prediction
        ? h("span", {}, h("span", { class: "swatch", style: "background:#b9a2ff" }), `Model v${prediction.model_version} (bar: ${interval})`)
        : h("span", { class: "no-model" }, "No model yet: the network has not been trained on this project.")),
  ];
  for (const { question } of annotations) {
    const summary = byQuestion.get(question);
    if (!summary) continue;
    const rows = summary.answers.map((a) => {
      const predicted = modelAnswers.get(`${question}_${a.answer}`);
      const modelValue = predicted?.fraction;
      const lower = predicted?.lower;
      const upper = predicted?.upper;
      const model = modelValue === undefined ? null : h("div", { class: "bar", title: `Model: ${percent(modelValue)}` },
        h("span", { class: "fill model", style: { width: `${modelValue * 100}%` } }),
        lower !== undefined && upper !== undefined
          ? h("span", { class: "interval", style: { left: `${lower * 100}%`, width: `${Math.max(0.5, (upper - lower) * 100)}%` } }) : null);
      return h("li", { class: mine.get(question) === a.answer ? "mine" : "" },
        h("span", { class: "label" }, a.label, mine.get(question) === a.answer ? h("span", { class: "visually-hidden" }, " (your answer)") : null),
        h("div", { style: "display:grid;gap:4px" },
          h("div", { class: "bar", title: `Volunteers: ${a.count} of ${summary.total}` },
            h("span", { class: "fill", style: { width: `${(a.fraction || 0) * 100}%` } })),
          model),
        h("span", { class: "value" }, percent(a.fraction),
          modelValue !== undefined ? h("span", { style: "display:block;color:#cbbcff" }, percent(modelValue)) : null));
    });
    out.push(h("div", { class: "feedback-q" }, h("h3", {}, summary.text), h("ul", { class: "bars" }, rows)));
  }
  return out;
}

async function toggleFavourite() {
  const button = document.getElementById("favourite");
  if (!state.classification || !button) return;
  const want = button.getAttribute("aria-pressed") !== "true";
  button.disabled = true;
  try {
    const result = await sendJSON("PUT", `/api/me/classifications/${state.classification.id}/favourite/`, { is_favourite: want });
    if (result.status === 200) {
      button.setAttribute("aria-pressed", String(want));
      button.textContent = want ? "★ Favourite" : "☆ Favourite";
    }
  } catch {
    banner("warn", "Could not save the favourite: you seem to be offline.", { id: "fav" });
  } finally {
    button.disabled = false;
  }
}

function renderAllDone() {
  state.mode = "done";
  state.item = null;
  progressEl.hidden = true;
  imageEl.removeAttribute("src");
  imageEl.alt = "";
  imageEl.hidden = true;
  metaEl.textContent = "";
  stageEl.setAttribute("aria-label", "No galaxy to show");
  const paused = state.inactive;
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

// ------------------------------------------------------------------ field guide
function renderGuide() {
  if (!state.guide) { guideBody.replaceChildren(h("p", {}, "The field guide could not be loaded.")); return; }
  guideBody.replaceChildren(
    h("p", { style: "color:var(--muted)" }, "Real galaxies showing each answer. When unsure, pick the answer that fits best: many volunteers see every galaxy, and together you get it right."),
    ...state.guide.questions.map((q) => h("section", { class: "guide-q", id: `guide-${q.key}`, dataset: { question: q.key } },
      h("h3", {}, q.text), q.help ? h("p", {}, q.help) : null,
      ...q.answers.map((a) => h("div", { class: "guide-a" },
        h("h4", {}, a.label), a.help ? h("p", {}, a.help) : null,
        a.examples.length ? h("ul", { class: "guide-examples" }, a.examples.slice(0, 6).map((e) => h("li", {},
          h("figure", { style: "margin:0" }, h("img", { src: e.image_url, alt: `Example of “${a.label}”${e.galaxy ? `: galaxy ${e.galaxy}` : ""}`, loading: "lazy" }),
            e.caption ? h("figcaption", {}, e.caption) : null)))) : null)))));
}

function openGuide(questionKey = state.walk?.question?.key) {
  guideBody.querySelectorAll(".guide-q").forEach((s) => s.classList.toggle("current", s.dataset.question === questionKey));
  guideDialog.showModal();
  const section = questionKey && guideBody.querySelector(`#guide-${CSS.escape(questionKey)}`);
  if (section) section.scrollIntoView({ block: "start" });
}
guideDialog.querySelector("[data-close]").addEventListener("click", () => guideDialog.close());
guideDialog.addEventListener("click", (event) => { if (event.target === guideDialog) guideDialog.close(); });
document.querySelector('[data-action="guide"]').addEventListener("click", () => openGuide());

// ------------------------------------------------------------------ keyboard
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || guideDialog.open) return;
  const target = event.target;
  if (target.matches("input, textarea, select")) return;
  const onControl = target.matches("button, a[href]");
  const key = event.key;
  if (state.mode === "question" && /^[1-9]$/.test(key)) {
    const button = stepEl.querySelectorAll(".answer")[Number(key) - 1];
    if (button) { event.preventDefault(); button.click(); }
    return;
  }
  if ((key === "Backspace" || key === "u") && (state.mode === "question" || state.mode === "review")) {
    event.preventDefault(); back(); return;
  }
  if (key === "Enter" && !onControl) {
    if (state.mode === "review") { event.preventDefault(); submit(); return; }
    if (state.mode === "feedback") { event.preventDefault(); showNext(); return; }
  }
  if (state.mode === "feedback" && (key === "n" || key === "N")) { event.preventDefault(); showNext(); return; }
  if (state.mode === "feedback" && (key === "f" || key === "F")) { event.preventDefault(); toggleFavourite(); return; }
  if ((key === "h" || key === "?") && state.mode === "question") { event.preventDefault(); toggleHelp(); return; }
  if (key === "g" || key === "G") { event.preventDefault(); openGuide(); return; }
  if (viewer.handleKey(event)) event.preventDefault();
});

// ------------------------------------------------------------------ start
async function start() {
  try {
    const [workflow, guide] = await Promise.all([getJSON(cfg.workflowUrl), getJSON(cfg.fieldGuideUrl).catch(() => null)]);
    state.workflow = workflow;
    if (guide) {
      guide.byAnswer = new Map(guide.questions.flatMap((q) => q.answers.map((a) => [`${q.key}_${a.key}`, a.examples])));
      state.guide = guide;
    }
  } catch {
    return renderError("We could not load this project's questions.", start);
  }
  renderGuide();
  if (outbox.items().length) {
    const sent = Object.values(await outbox.flush()).filter((r) => r.status && r.status < 300).length;
    if (sent) banner("ok", `${sent} classification${sent > 1 ? "s" : ""} saved while offline ${sent > 1 ? "have" : "has"} now been sent.`, { id: "outbox" });
  }
  await showNext({ keepBanners: true });
  app.dataset.ready = "true";
}

start();
