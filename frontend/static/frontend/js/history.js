// Favourite toggles on the history page.
import { sendJSON } from "./api.js";
import { withId } from "./urls.js";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.fav[data-id]");
  if (!button) return;
  const want = button.getAttribute("aria-pressed") !== "true";
  button.disabled = true;
  try {
    const url = withId(button.closest("[data-favourite-url]").dataset.favouriteUrl, button.dataset.id);
    const result = await sendJSON("PUT", url, { is_favourite: want });
    if (result.status === 200) {
      button.setAttribute("aria-pressed", String(want));
      button.textContent = want ? "★" : "☆";
    }
  } finally {
    button.disabled = false;
  }
});
