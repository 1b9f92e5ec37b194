// Drawing the decision tree's steps: the progress trail, one question with its answers, and
// the review before sending. The controller passes what happens on each button.

import { h } from "./dom.js";

export function renderProgress(progressEl, walk) {
  const { done, total, fraction } = walk.progress();
  progressEl.hidden = false;
  const bar = progressEl.querySelector(".progress-bar");
  bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  bar.setAttribute("aria-valuetext", walk.finished ? "All questions answered" : `Question ${done + 1}, at most ${total} in all`);
  bar.querySelector("span").style.width = `${Math.max(4, fraction * 100)}%`;
  progressEl.querySelector(".trail").replaceChildren(
    ...walk.steps.map((s) => h("li", {}, h("strong", {}, walk.label(s.question, s.answer)))));
}

function thumb(answer, index, examples) {
  if (examples.length) return h("span", { class: "answer-thumb" }, h("img", { src: examples[0].image_url, alt: "", loading: "lazy" }));
  return h("span", { class: "answer-thumb", "aria-hidden": "true" }, h("span", { class: "glyph" }, answer.label.trim().charAt(0) || index + 1));
}

// `previous`: the answer key to mark as chosen (after Back); `examples(column)`: field-guide pictures.
export function questionStep({ walk, previous, helpOpen, examples, on }) {
  const question = walk.question;
  const helpId = `help-${question.key}`;
  const answers = question.answers.map((answer, index) => {
    const key = index < 9 ? String(index + 1) : null;
    const helpAnswerId = `ah-${question.key}-${answer.key}`;
    return h("button", {
      type: "button", class: "answer", dataset: { answer: answer.key },
      "aria-pressed": previous === answer.key ? "true" : "false",
      "aria-keyshortcuts": key, "aria-describedby": answer.help ? helpAnswerId : null,
      onclick: () => on.choose(answer.key),
    },
    thumb(answer, index, examples(answer.column)),
    h("span", {}, h("span", { class: "answer-label" }, answer.label),
      answer.help ? h("span", { class: "answer-help", id: helpAnswerId }, answer.help) : null),
    key ? h("kbd", { "aria-hidden": "true" }, key) : h("span"));
  });
  const fieldset = h("fieldset", { class: "question", dataset: { question: question.key } },
    h("legend", { tabindex: "-1" }, h("span", { class: "question-step" }, `Question ${walk.steps.length + 1}`), question.text),
    h("div", { class: "question-tools" },
      question.help ? h("button", {
        type: "button", class: "linkish", "aria-expanded": String(helpOpen), "aria-controls": helpId,
        "aria-keyshortcuts": "H", onclick: on.help,
      }, "Help with this question") : null,
      h("button", { type: "button", class: "linkish", "aria-keyshortcuts": "G", onclick: () => on.guide(question.key) }, "Field guide")),
    question.help ? h("p", { class: "question-help", id: helpId, hidden: !helpOpen }, question.help) : null,
    h("div", { class: `answers${question.answers.length > 4 ? " compact" : ""}` }, answers));
  const nav = h("div", { class: "nav-row" },
    h("button", { type: "button", class: "btn", onclick: on.back, disabled: walk.steps.length === 0, "aria-keyshortcuts": "Backspace" },
      "← Back ", h("kbd", { "aria-hidden": "true" }, "⌫")),
    h("span", { class: "spacer" }),
    h("span", { class: "hint", style: "color:var(--muted);font-size:.85rem" }, "Keys 1–", Math.min(9, question.answers.length)));
  return [fieldset, nav];
}

// Shows or hides the current question's help inside `stepEl`.
export function showHelp(stepEl, open) {
  const help = stepEl.querySelector(".question-help");
  if (!help) return;
  help.hidden = !open;
  stepEl.querySelector("[aria-controls^='help-']")?.setAttribute("aria-expanded", String(open));
}

export function reviewStep({ walk, on }) {
  const list = h("ul", { class: "review-list" }, walk.steps.map((s) =>
    h("li", {}, h("span", {}, walk.byKey.get(s.question).text), h("strong", {}, walk.label(s.question, s.answer)))));
  return h("div", { class: "card review" },
    h("h2", { tabindex: "-1" }, "That's all the questions"),
    h("p", { style: "color:var(--muted)" }, "Press Done to send your answers, or go back to change one."),
    h("div", { class: "nav-row" },
      h("button", { type: "button", class: "btn", onclick: on.back }, "← Back ", h("kbd", { "aria-hidden": "true" }, "⌫")),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn btn-primary btn-big", id: "done", onclick: on.submit }, "Done ", h("kbd", { "aria-hidden": "true" }, "Enter"))),
    list);
}
