// Live counts on the landing page.
import { getJSON } from "./api.js";

const list = document.getElementById("stats");
const format = new Intl.NumberFormat();

async function refresh() {
  try {
    const stats = await getJSON(list.dataset.url);
    for (const el of list.querySelectorAll("[data-stat]")) {
      const value = stats[el.dataset.stat];
      el.textContent = typeof value === "number" ? format.format(value) : value || "no model yet";
    }
  } catch { /* keep the numbers the page came with */ }
}

if (list) {
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 15000);
}
