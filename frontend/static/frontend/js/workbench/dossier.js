// The dossier's expert actions: the image viewer (the volunteers' controls), an expert
// classification walked through the same tree, flags and retirement overrides.
import { getJSON, sendJSON } from "../api.js";
import { h } from "../dom.js";
import { TreeWalk } from "../tree.js";
import { Viewer } from "../viewer.js";

const root = document.getElementById("dossier");
const $ = (id) => document.getElementById(id);

const image = $("galaxy-image");
if (image) {
  const viewer = new Viewer({
    stage: $("stage"), image, toolbar: document.querySelector(".viewer-toolbar"), adjust: $("adjust"),
    brightness: $("brightness"), contrast: $("contrast"),
  });
  $("stage").addEventListener("keydown", (event) => { if (viewer.handleKey(event)) event.preventDefault(); });
}

function explain(body, fallback) {
  if (!body) return fallback;
  return body.field ? `${body.message} (${body.field})` : body.message || fallback;
}

async function startExpertForm() {
  const workflow = await getJSON(root.dataset.workflowUrl);
  let walk = new TreeWalk(workflow.tree);
  const form = $("expert-form");
  const save = $("expert-save");
  const back = $("expert-back");
  const render = () => {
    form.replaceChildren();
    const trail = walk.steps.map((s) => h("li", {}, `${s.question} → `, h("strong", {}, walk.label(s.question, s.answer))));
    if (trail.length) form.append(h("ol", { class: "trail" }, trail));
    const question = walk.question;
    if (question) {
      form.append(h("fieldset", { class: "question" }, h("legend", {}, question.text),
        h("div", { class: "wb-answers" }, question.answers.map((answer) => h("button", {
          type: "button", class: "btn", dataset: { answer: answer.key },
          onclick: () => { walk.choose(answer.key); render(); },
        }, answer.label)))));
    } else {
      form.append(h("p", {}, "Complete: save the label."));
    }
    save.disabled = !walk.finished;
    back.disabled = walk.steps.length === 0;
  };
  back.addEventListener("click", () => { walk.back(); render(); });
  save.addEventListener("click", async () => {
    save.disabled = true;
    const { status, body } = await sendJSON("POST", root.dataset.expertUrl, {
      annotations: walk.annotations(), comment: $("expert-comment").value,
    });
    if (status === 201) {
      $("expert-status").textContent = "Expert label saved.";
      window.location.reload();
    } else {
      $("expert-status").textContent = explain(body, `Not saved (HTTP ${status}).`);
      walk = new TreeWalk(workflow.tree);
      render();
    }
  });
  render();
}

$("flag-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  const { status, body } = await sendJSON("POST", root.dataset.flagsUrl, { kind: data.get("kind"), comment: data.get("comment") });
  if (status === 201) window.location.reload();
  else $("flag-status").textContent = explain(body, `Not saved (HTTP ${status}).`);
});

document.querySelectorAll("[data-resolve]").forEach((button) => button.addEventListener("click", async () => {
  const url = root.dataset.resolveUrl.replace("/0/", `/${button.dataset.resolve}/`);
  const { status, body } = await sendJSON("POST", url, { resolution: "" });
  if (status === 200) window.location.reload();
  else $("flag-status").textContent = explain(body, `Not resolved (HTTP ${status}).`);
}));

$("retire-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const retire = event.target.dataset.retired !== "true";
  const { status, body } = await sendJSON("POST", root.dataset.retirementUrl, {
    retire, reason: new FormData(event.target).get("reason"),
  });
  if (status === 201) window.location.reload();
  else $("retire-status").textContent = explain(body, `Not changed (HTTP ${status}).`);
});

startExpertForm().catch((error) => { $("expert-status").textContent = `Could not load the tree: ${error.message}`; });
