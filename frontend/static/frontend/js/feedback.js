// After a classification: how the other volunteers and the model answered the questions this
// volunteer saw, and the favourite toggle.

import { sendJSON } from "./api.js";
import { h, percent } from "./dom.js";
import { withId } from "./urls.js";

const RARE = 0.05;

// The galaxy detail is fetched before the vote, so a counted vote is added here.
function tallyWithVote(status, annotations, counted) {
  const questions = (status.questions || []).map((q) => ({ ...q, answers: q.answers.map((a) => ({ ...a })) }));
  if (!counted) return { count: status.classification_count ?? 0, questions };
  for (const { question, answer } of annotations) {
    const summary = questions.find((q) => q.question === question);
    const chosen = summary?.answers.find((a) => a.answer === answer);
    if (!chosen) continue;
    chosen.count += 1;
    summary.total += 1;
    for (const a of summary.answers) a.fraction = a.count / summary.total;
  }
  return { count: (status.classification_count ?? 0) + 1, questions };
}

// `walk` is the finished TreeWalk: its tree gives each answer's column.
export function feedbackBody({ detail, annotations, walk, counted }) {
  const status = detail.workflows?.[0] || {};
  const prediction = status.prediction || null;
  const tally = tallyWithVote(status, annotations, counted);
  const byQuestion = new Map(tally.questions.map((q) => [q.question, q]));
  const mine = new Map(annotations.map((a) => [a.question, a.answer]));
  const modelByColumn = new Map((prediction?.questions || []).flatMap((q) => q.answers
    .map((a) => [walk.answer(q.question, a.answer)?.column, a]).filter(([column]) => column)));
  const interval = prediction?.interval ? `${Math.round(prediction.interval * 100)}% interval` : "interval";
  const out = [
    h("p", { class: "legend-row" },
      h("span", {}, h("span", { class: "swatch", style: "background:var(--cyan)" }), `Volunteers (${tally.count} so far)`),
      prediction
        ? h("span", {}, h("span", { class: "swatch", style: "background:#b9a2ff" }), `Model v${prediction.model_version} (bar: ${interval})`)
        : h("span", { class: "no-model" }, "No model yet: the network has not been trained on this project.")),
  ];
  for (const { question } of annotations) {
    const summary = byQuestion.get(question);
    if (!summary) continue;
    // Rare answers (under RARE of the crowd and of the model, not this volunteer's) fold into
    // one line, so a long branch of the tree still fits beside the image.
    const shown = summary.answers.filter((a) => mine.get(question) === a.answer || (a.fraction || 0) >= RARE
      || (modelByColumn.get(walk.answer(question, a.answer)?.column)?.fraction ?? 1) >= RARE);
    const rows = shown.map((a) => {
      const predicted = modelByColumn.get(walk.answer(question, a.answer)?.column);
      const isMine = mine.get(question) === a.answer;
      return h("li", { class: isMine ? "mine" : "" },
        h("span", { class: "label" }, a.label, isMine ? h("span", { class: "visually-hidden" }, " (your answer)") : null),
        h("div", { class: "bar-pair" },
          h("div", { class: "bar", title: `Volunteers: ${a.count} of ${summary.total}` },
            h("span", { class: "fill", style: { width: `${(a.fraction || 0) * 100}%` } })),
          predicted ? modelBar(predicted) : null),
        h("span", { class: "value" }, h("span", { class: "crowd-value" }, percent(a.fraction)),
          predicted ? h("span", { class: "model-value" }, percent(predicted.fraction)) : null));
    });
    const folded = summary.answers.length - shown.length;
    if (folded) rows.push(h("li", { class: "rare" }, `${folded} more answer${folded > 1 ? "s" : ""} under ${percent(RARE)}`));
    out.push(h("div", { class: "feedback-q" }, h("h3", {}, summary.text), h("ul", { class: "bars" }, rows)));
  }
  return out;
}

function modelBar({ fraction, lower, upper }) {
  return h("div", { class: "bar", title: `Model: ${percent(fraction)}` },
    h("span", { class: "fill model", style: { width: `${fraction * 100}%` } }),
    lower !== undefined && upper !== undefined
      ? h("span", { class: "interval", style: { left: `${lower * 100}%`, width: `${Math.max(0.5, (upper - lower) * 100)}%` } }) : null);
}

// The "Favourite" button of one stored classification (none: disabled).
export function favouriteButton({ classification, urlTemplate, onOffline }) {
  const button = h("button", {
    type: "button", class: "btn", id: "favourite", "aria-pressed": "false", "aria-keyshortcuts": "F",
    disabled: !classification,
    title: classification ? "Keep this galaxy in your favourites" : "Available once the classification is stored",
  }, "☆ Favourite");
  button.toggle = async () => {
    if (!classification || button.disabled) return;
    const want = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    try {
      const result = await sendJSON("PUT", withId(urlTemplate, classification.id), { is_favourite: want });
      if (result.status === 200) {
        button.setAttribute("aria-pressed", String(want));
        button.textContent = want ? "★ Favourite" : "☆ Favourite";
      }
    } catch {
      onOffline();
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener("click", button.toggle);
  return button;
}
