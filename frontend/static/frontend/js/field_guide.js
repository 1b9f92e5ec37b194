// The field guide: every question's help and example galaxies per answer, in a drawer, and the
// first example of each answer as its button's thumbnail.

import { getJSON } from "./api.js";
import { h } from "./dom.js";

export class FieldGuide {
  constructor({ dialog, url }) {
    this.dialog = dialog;
    this.body = dialog.querySelector(".drawer-body");
    this.url = url;
    this.guide = null;
    this.byColumn = new Map();
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  }

  get isOpen() { return this.dialog.open; }

  // Without a guide the page still works: answers show their initial instead of a picture.
  async load() {
    try {
      this.guide = await getJSON(this.url);
      this.byColumn = new Map(this.guide.questions.flatMap((q) => q.answers.map((a) => [a.column, a.examples])));
    } catch {
      this.guide = null;
    }
    this.render();
  }

  examples(column) { return this.byColumn.get(column) || []; }

  render() {
    if (!this.guide) { this.body.replaceChildren(h("p", {}, "The field guide could not be loaded.")); return; }
    this.body.replaceChildren(
      h("p", { style: "color:var(--muted)" }, "Real galaxies showing each answer. When unsure, pick the answer that fits best: many volunteers see every galaxy, and together you get it right."),
      ...this.guide.questions.map((q) => h("section", { class: "guide-q", id: `guide-${q.key}`, dataset: { question: q.key } },
        h("h3", {}, q.text), q.help ? h("p", {}, q.help) : null,
        ...q.answers.map((a) => h("div", { class: "guide-a" },
          h("h4", {}, a.label), a.help ? h("p", {}, a.help) : null,
          a.examples.length ? h("ul", { class: "guide-examples" }, a.examples.slice(0, 6).map((e) => h("li", {},
            h("figure", { style: "margin:0" }, h("img", { src: e.image_url, alt: `Example of “${a.label}”${e.galaxy ? `: galaxy ${e.galaxy}` : ""}`, loading: "lazy" }),
              e.caption ? h("figcaption", {}, e.caption) : null)))) : null)))));
  }

  // Opens at `questionKey`'s section, marked as the current question.
  open(questionKey) {
    this.body.querySelectorAll(".guide-q").forEach((s) => s.classList.toggle("current", s.dataset.question === questionKey));
    this.dialog.showModal();
    const section = questionKey && this.body.querySelector(`#guide-${CSS.escape(questionKey)}`);
    if (section) section.scrollIntoView({ block: "start" });
  }
}
