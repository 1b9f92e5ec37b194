"""Simulated volunteers: how a galaxy looks, and the answers a volunteer gives it.

A galaxy's *appearance* (how featured, edge-on, spiral, barred, bulgy, round, disturbed it
looks, how tightly wound and how many arms) comes from known parameters of a simulated
galaxy or, for real cutouts, from simple image measurements (light concentration,
ellipticity from second moments, 180° asymmetry). Each answer of a tree says how its weight
follows the appearance, in the tree document itself (``"simulate"`` on the answer), so no
tree is written out a second time here:

* linear: ``{"bias": 1, "featured": -1}`` weighs ``1 − featured`` (clipped at 0);
* ordinal: ``{"near": {"bulge": 0.7}, "sharpness": 3}`` weighs ``exp(−3·|0.7 − bulge|)``,
  for graded answers (bulge size, roundness...), peaking at the answer's level.

A question without hints is answered uniformly. A galaxy with real published votes (the demo
pack's Galaxy Zoo 2 counts) is answered from them instead: :func:`annotations_from_counts`
draws each answer from the votes of the question reached. Pure numpy and Pillow: the
platform's demo stores the simulated votes through its own services.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from PIL import Image

from classifier.tree import Answer, DecisionTree, Question

HINT_FIELD = "simulate"
DEFAULT_SHARPNESS = 3.0


@dataclass(frozen=True)
class Appearance:
    """Probabilities or levels (0–1) a careful volunteer would give each feature."""

    featured: float = 0.5
    edge_on: float = 0.2
    spiral: float = 0.5
    bar: float = 0.3
    bulge: float = 0.5  # prominence: 0 none … 1 dominant
    roundness: float = 0.7  # 1 round … 0 cigar-shaped
    disturbed: float = 0.1
    artifact: float = 0.02
    winding: float = 0.5  # 1 tight … 0 loose spiral arms
    arms: float = 0.4  # number of spiral arms / 5 (0.4: two arms)


FEATURES = frozenset(f.name for f in fields(Appearance))


def _clip(value: Any) -> float:
    return float(min(max(float(value), 0.0), 1.0))


METADATA_KEYS = {"featured": "featured", "p_featured": "featured", "edge_on": "edge_on", "spiral": "spiral",
                 "arms": "spiral", "spiral_arms": "spiral", "bar": "bar", "bar_strength": "bar", "bulge": "bulge",
                 "bulge_fraction": "bulge", "disturbed": "disturbed", "merger": "disturbed", "artifact": "artifact"}
KIND_APPEARANCE = {"elliptical": {"featured": 0.08, "spiral": 0.0, "edge_on": 0.0},
                   "spiral": {"featured": 0.92, "edge_on": 0.05}, "barred-spiral": {"featured": 0.95, "edge_on": 0.05},
                   "edge-on": {"featured": 0.9, "edge_on": 0.95}}
ARMS_SCALE = 5  # "more than 4" arms is the top of the scale


def appearance_from_metadata(metadata: Mapping[str, Any]) -> Appearance | None:
    """Known parameters of a simulated galaxy (top level or under ``simulation``/``truth``)."""
    source = metadata.get("simulation") or metadata.get("truth") or metadata
    if not isinstance(source, Mapping):
        return None
    values: dict[str, float] = dict(KIND_APPEARANCE.get(str(source.get("kind")), {}))
    for key, name in METADATA_KEYS.items():
        if isinstance(source.get(key), (int, float, bool)):
            values[name] = _clip(source[key])
    for key in ("n_arms", "spiral_arms"):
        if isinstance(source.get(key), (int, float)) and not isinstance(source[key], bool):
            values.setdefault("spiral", 1.0 if source[key] > 0 else 0.0)
            if source[key] > 0:
                values["arms"] = _clip(source[key] / ARMS_SCALE)
    if isinstance(source.get("pitch_angle_deg"), (int, float)):
        values["winding"] = _clip((30 - source["pitch_angle_deg"]) / 20)  # 10° tight … 30° loose
    if isinstance(source.get("ellipticity"), (int, float)):
        values["roundness"] = _clip(1 - source["ellipticity"])
        values.setdefault("edge_on", _clip((source["ellipticity"] - 0.5) * 3))
    elif isinstance(source.get("axis_ratio"), (int, float)):
        values["roundness"] = _clip(source["axis_ratio"])
    if isinstance(source.get("sersic_n"), (int, float)):
        values.setdefault("bulge", _clip((source["sersic_n"] - 1) / 3))
        values.setdefault("featured", _clip(1.2 - source["sersic_n"] / 3))
    return Appearance(**values) if values else None


def image_measurements(path: str) -> dict[str, float]:
    """Concentration r80/r20, ellipticity (second moments) and asymmetry of the light."""
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L").resize((96, 96)), dtype=np.float64)
    light = np.clip(grey - np.median(grey), 0, None)
    total = light.sum()
    if total <= 0:
        return {"concentration": 2.5, "ellipticity": 0.0, "asymmetry": 0.0}
    y, x = np.mgrid[:light.shape[0], :light.shape[1]]
    cy, cx = (light * y).sum() / total, (light * x).sum() / total
    dy, dx = y - cy, x - cx
    cov = np.array([[(light * dx * dx).sum(), (light * dx * dy).sum()],
                    [(light * dx * dy).sum(), (light * dy * dy).sum()]]) / total
    small, large = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 1e-9, None))
    order = np.argsort(np.hypot(dy, dx).ravel())
    cumulative = np.cumsum(light.ravel()[order]) / total
    radii = np.hypot(dy, dx).ravel()[order]
    r20, r80 = radii[np.searchsorted(cumulative, 0.2)], radii[np.searchsorted(cumulative, 0.8)]
    asymmetry = np.abs(light - light[::-1, ::-1]).sum() / (2 * total)
    return {"concentration": float(r80 / max(r20, 0.5)), "ellipticity": float(1 - small / large),
            "asymmetry": float(asymmetry)}


def appearance_from_image(path: str) -> Appearance:
    """Concentrated, symmetric light reads as smooth; flat as edge-on; lopsided as disturbed."""
    m = image_measurements(path)
    concentrated = _clip((m["concentration"] - 2.0) / 2.5)
    featured = _clip(0.15 + 1.4 * m["asymmetry"] + 0.5 * (1 - concentrated) * (m["ellipticity"] < 0.5))
    return Appearance(featured=featured, edge_on=_clip((m["ellipticity"] - 0.45) * 2.5),
                      spiral=_clip(featured * (1 - m["ellipticity"])), bar=0.25, bulge=concentrated,
                      roundness=_clip(1 - m["ellipticity"]), disturbed=_clip(m["asymmetry"] * 1.5 - 0.2),
                      artifact=0.02)


def _answer_weight(question: Question, answer: Answer, appearance: Appearance) -> float:
    hint = answer.extra.get(HINT_FIELD)
    if not isinstance(hint, Mapping):
        raise ValueError(f"answer '{question.key}.{answer.key}': '{HINT_FIELD}' must be an object, got {hint!r}")
    if "near" in hint:
        (feature, level), = dict(hint["near"]).items()
        _check_feature(question, answer, feature)
        sharpness = float(hint.get("sharpness", DEFAULT_SHARPNESS))
        return math.exp(-sharpness * abs(float(level) - getattr(appearance, feature)))
    weight = float(hint.get("bias", 0.0))
    for feature, coefficient in hint.items():
        if feature != "bias":
            _check_feature(question, answer, feature)
            weight += float(coefficient) * getattr(appearance, feature)
    return max(weight, 0.0)


def _check_feature(question: Question, answer: Answer, feature: str) -> None:
    if feature not in FEATURES:
        raise ValueError(f"answer '{question.key}.{answer.key}': unknown feature '{feature}' in '{HINT_FIELD}' "
                         f"(known: {', '.join(sorted(FEATURES))})")


def answer_weights(question: Question, appearance: Appearance) -> list[float]:
    """Relative chance of each answer (tree order) for a careful volunteer; uniform when the
    question carries no hints. Hints on only some answers of a question are an error."""
    hinted = [HINT_FIELD in a.extra for a in question.answers]
    if not any(hinted):
        return [1.0] * len(question.answers)
    if not all(hinted):
        missing = [a.key for a, has in zip(question.answers, hinted) if not has]
        raise ValueError(f"question '{question.key}': answers {missing} have no '{HINT_FIELD}' hint")
    weights = [_answer_weight(question, a, appearance) for a in question.answers]
    return weights if sum(weights) > 0 else [1.0] * len(weights)


def expected_path(tree: DecisionTree, appearance: Appearance) -> list[dict[str, str]]:
    """The answers a careful volunteer gives a galaxy of known appearance: the most likely
    answer of each question along the way."""
    path, key = [], tree.first
    while key is not None:
        question = tree.question(key)
        weights = answer_weights(question, appearance)
        answer = question.answers[weights.index(max(weights))]
        path.append({"question": key, "answer": answer.key})
        key = answer.next
    return path


def simulated_annotations(tree: DecisionTree, appearance: Appearance, rng: random.Random, noise: float,
                          expected: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """One volunteer's walk down the tree: the expected answer where one is known, otherwise
    drawn from the appearance; with probability ``noise`` an answer is a guess instead."""
    annotations, key = [], tree.first
    while key is not None:
        question = tree.question(key)
        known = question.answer((expected or {}).get(key, ""))
        if known is not None:
            weights = [1.0 if a.key == known.key else 0.0 for a in question.answers]
        else:
            weights = answer_weights(question, appearance)
        if rng.random() < noise:
            weights = [1.0] * len(question.answers)
        answer = rng.choices(question.answers, weights=weights)[0]
        annotations.append({"question": key, "answer": answer.key})
        key = answer.next
    return annotations


def annotations_from_counts(tree: DecisionTree, counts: np.ndarray, rng: np.random.Generator) -> list[dict[str, str]]:
    """One simulated volunteer's walk down the tree, drawing each answer from the real votes
    ``counts`` (one per answer column, tree order) of the question reached — branch by branch,
    so the simulated crowd's fractions follow the real crowd's. A question the real volunteers
    never reached (no votes) is answered uniformly."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (tree.n_answers,):
        raise ValueError(f"counts must have one value per answer of '{tree.name}' ({tree.n_answers}), "
                         f"got shape {counts.shape}")
    annotations, key = [], tree.first
    while key is not None:
        question = tree.question(key)
        votes = np.clip(counts[question.slice], 0.0, None)
        weights = votes / votes.sum() if votes.sum() > 0 else np.full(len(question.answers), 1 / len(question.answers))
        answer = question.answers[int(rng.choice(len(question.answers), p=weights))]
        annotations.append({"question": key, "answer": answer.key})
        key = answer.next
    return annotations
