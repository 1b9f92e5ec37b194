"""Server-rendered charts of the dossier (matplotlib, Agg backend: no display, no browser
library). An SVG is drawn once per (prediction, vote tally) and cached, since a 30-answer
chart costs ~100 ms to draw."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from django.core.cache import cache  # noqa: E402

TEXT, MUTED, MODEL, CROWD, GRID, SAMPLES = "#eef2ff", "#b4bfdc", "#ffc857", "#7fd8ff", "#34457a", "#ff9e6d"
CACHE_SECONDS = 24 * 3600


def posterior_svg(*, cache_key: str, prediction: dict[str, Any] | None, votes: list[dict[str, Any]]) -> str:
    """Per question, each answer's model mean with its 90% credible interval, the fraction of
    each posterior (MC-dropout or ensemble) sample as ticks just below, beside the volunteers'
    vote fraction. ``prediction`` is a retraining ``prediction_block`` (or None),
    ``votes`` a ``DecisionTree.summary``."""
    cached = cache.get(cache_key)
    if cached is None:
        cached = _draw(prediction=prediction, votes=votes)
        cache.set(cache_key, cached, CACHE_SECONDS)
    return cached


def _draw(*, prediction: dict[str, Any] | None, votes: list[dict[str, Any]]) -> str:
    predicted = {(q["question"], a["answer"]): a for q in (prediction or {}).get("questions", []) for a in q["answers"]}
    rows: list[tuple[str, str, dict | None, float | None]] = []
    for question in votes:
        for answer in question["answers"]:
            rows.append((question["question"], answer["label"], predicted.get((question["question"], answer["answer"])),
                         answer["fraction"]))
    height = 0.26 * len(rows) + 0.9
    figure, axes = plt.subplots(figsize=(6.4, height), dpi=100)
    figure.patch.set_alpha(0)
    axes.set_facecolor("none")
    previous = None
    for y, (question, _label, model, crowd) in enumerate(rows):
        if question != previous and previous is not None:
            axes.axhline(y - 0.5, color=GRID, linewidth=0.6)
        previous = question
        if model is not None:
            axes.hlines(y, model["lower"], model["upper"], color=MODEL, linewidth=3, alpha=0.55)
            if model.get("samples"):
                axes.plot(model["samples"], [y + 0.28] * len(model["samples"]), "|", color=SAMPLES, markersize=5,
                          markeredgewidth=1.1, alpha=0.9)
            axes.plot(model["fraction"], y, "o", color=MODEL, markersize=5)
        if crowd is not None:
            axes.plot(crowd, y, "D", color=CROWD, markersize=4.5, markerfacecolor="none", markeredgewidth=1.4)
    axes.set_yticks(range(len(rows)), [f"{q} · {label}" for q, label, _, _ in rows], fontsize=7, color=TEXT)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    axes.set_xlim(0, 1)
    axes.set_xlabel("fraction of volunteers", color=MUTED, fontsize=8)
    axes.tick_params(axis="x", colors=MUTED, labelsize=7)
    axes.tick_params(axis="y", length=0)
    axes.grid(axis="x", color=GRID, linewidth=0.4)
    for spine in axes.spines.values():
        spine.set_visible(False)
    handles = [plt.Line2D([], [], color=MODEL, marker="o", linewidth=3, alpha=0.8, label="model mean, 90% interval"),
               plt.Line2D([], [], color=CROWD, marker="D", linestyle="", markerfacecolor="none", label="volunteers")]
    if any(model and model.get("samples") for _, _, model, _ in rows):
        handles.insert(1, plt.Line2D([], [], color=SAMPLES, marker="|", linestyle="", markersize=7,
                                     label="MC-dropout samples"))
    axes.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), frameon=False, fontsize=7,
                labelcolor=TEXT)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", transparent=True)
    plt.close(figure)
    return buffer.getvalue()


def learning_curves_svg(*, cache_key: str, curves: dict[str, list[dict[str, Any]]]) -> str:
    """Training and validation loss per epoch of one or more runs (``{label: run.history}``)."""
    cached = cache.get(cache_key)
    if cached is not None:
        return cached
    figure, axes = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    figure.patch.set_alpha(0)
    axes.set_facecolor("none")
    colours = [MODEL, CROWD, "#7ee2a8", "#ff8a8a"]
    for colour, (label, history) in zip(colours, curves.items()):
        epochs = [h.get("epoch") for h in history]
        for key, style in (("train_loss", "--"), ("val_loss", "-")):
            values = [h.get(key) for h in history]
            points = [(e, v) for e, v in zip(epochs, values) if e is not None and v is not None]
            if points:
                axes.plot(*zip(*points), style, color=colour, marker="o", markersize=3,
                          label=f"{label} {'validation' if key == 'val_loss' else 'training'}")
    axes.set_xlabel("epoch", color=MUTED, fontsize=8)
    axes.set_ylabel("loss (Dirichlet–Multinomial NLL)", color=MUTED, fontsize=8)
    axes.tick_params(colors=MUTED, labelsize=7)
    axes.grid(color=GRID, linewidth=0.4)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(frameon=False, fontsize=7, labelcolor=TEXT)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", transparent=True)
    plt.close(figure)
    svg = buffer.getvalue()
    cache.set(cache_key, svg, CACHE_SECONDS)
    return svg
