// Keyboard shortcuts of the classify page; what a key does depends on the page's mode.
// Keys go to the image viewer when no shortcut takes them.

export function bindKeys({ mode, blocked, answerButtons, on, viewer }) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || blocked()) return;
    const target = event.target;
    if (target.matches("input, textarea, select")) return;
    const onControl = target.matches("button, a[href]");
    const key = event.key;
    const current = mode();
    const act = (handler) => { event.preventDefault(); handler(); };
    if (current === "question" && /^[1-9]$/.test(key)) {
      const button = answerButtons()[Number(key) - 1];
      if (button) act(() => button.click());
      return;
    }
    if ((key === "Backspace" || key === "u") && (current === "question" || current === "review")) return act(on.back);
    if (key === "Enter" && !onControl) {
      if (current === "review") return act(on.submit);
      if (current === "feedback") return act(on.next);
    }
    if (current === "feedback" && (key === "n" || key === "N")) return act(on.next);
    if (current === "feedback" && (key === "f" || key === "F")) return act(on.favourite);
    if ((key === "h" || key === "?") && current === "question") return act(on.help);
    if (key === "g" || key === "G") return act(on.guide);
    if (viewer.handleKey(event)) event.preventDefault();
  });
}
