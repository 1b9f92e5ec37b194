// Status lines above the questions; one per id, so a newer message replaces its predecessor.

import { h } from "./dom.js";

export class Banners {
  constructor(element) { this.element = element; }

  show(kind, text, { id } = {}) {
    if (id) this.element.querySelector(`[data-banner="${id}"]`)?.remove();
    const el = h("div", { class: `banner banner-${kind}`, role: kind === "warn" ? "alert" : "status", dataset: { banner: id || kind } },
      h("p", {}, text));
    this.element.append(el);
    return el;
  }

  clear() { this.element.replaceChildren(); }
}
