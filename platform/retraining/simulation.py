"""Simulated volunteers for the demo, so its first model has votes to learn from.

A simulated galaxy carries its true parameters and the answers they imply
(``metadata["simulation"]``, ``metadata["expected_answers"][workflow]``): simulated volunteers
give those answers, each with their own noise level. Elsewhere a galaxy's *appearance* (how
featured, edge-on, spiral, barred, bulgy, round, disturbed it looks) comes from the known
parameters or, for real cutouts such as the Hubble XDF ones, from simple image measurements
(light concentration, ellipticity from second moments, 180° asymmetry), and volunteers answer
from it. Every classification is stored
through the normal submit service with ``is_simulated=True``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from classifications.services import Submission, submit_classification
from classifications.volunteers import Volunteer
from classifier.tree import DecisionTree
from galaxies.models import Galaxy
from workflows.models import Workflow

SIMULATED_VOLUNTEER_PREFIX = "sim"


@dataclass(frozen=True)
class Appearance:
    """Probabilities (0–1) a careful volunteer would give each feature."""

    featured: float = 0.5
    edge_on: float = 0.2
    spiral: float = 0.5
    bar: float = 0.3
    bulge: float = 0.5  # prominence: 0 none … 1 dominant
    roundness: float = 0.7  # 1 round … 0 cigar-shaped
    disturbed: float = 0.1
    artifact: float = 0.02


def _clip(value: Any) -> float:
    return float(min(max(float(value), 0.0), 1.0))


METADATA_KEYS = {"featured": "featured", "p_featured": "featured", "edge_on": "edge_on", "spiral": "spiral",
                 "arms": "spiral", "spiral_arms": "spiral", "bar": "bar", "bar_strength": "bar", "bulge": "bulge",
                 "bulge_fraction": "bulge", "disturbed": "disturbed", "merger": "disturbed", "artifact": "artifact"}
KIND_APPEARANCE = {"elliptical": {"featured": 0.08, "spiral": 0.0, "edge_on": 0.0},
                   "spiral": {"featured": 0.92, "edge_on": 0.05}, "barred-spiral": {"featured": 0.95, "edge_on": 0.05},
                   "edge-on": {"featured": 0.9, "edge_on": 0.95}}


def appearance_from_metadata(metadata: Mapping[str, Any]) -> Appearance | None:
    """Known parameters of a simulated galaxy (top level or under ``simulation``/``truth``)."""
    source = metadata.get("simulation") or metadata.get("truth") or metadata
    if not isinstance(source, Mapping):
        return None
    values: dict[str, float] = dict(KIND_APPEARANCE.get(str(source.get("kind")), {}))
    for key, name in METADATA_KEYS.items():
        if isinstance(source.get(key), (int, float, bool)):
            values[name] = _clip(source[key])
    if isinstance(source.get("n_arms"), (int, float)):
        values.setdefault("spiral", 1.0 if source["n_arms"] > 0 else 0.0)
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


def appearance_of(galaxy: Galaxy) -> Appearance:
    return appearance_from_metadata(galaxy.metadata or {}) or appearance_from_image(galaxy.image.path)


def _peaked(n: int, position: float, sharpness: float = 3.0) -> list[float]:
    """Weights over ``n`` ordered answers peaking at ``position`` in [0, 1]."""
    weights = [np.exp(-sharpness * abs(i / max(n - 1, 1) - position)) for i in range(n)]
    return [w / sum(weights) for w in weights]


def _binary(p: float) -> list[float]:
    return [p, 1 - p]


def _bar(a: Appearance, n: int) -> list[float]:
    """'strong'/'weak'/…/'no': the bar probability shared by every 'yes' grade, 'no' last."""
    return [a.bar / (n - 1)] * (n - 1) + [1 - a.bar]


# Answer weights per question key of the shipped trees (answers in tree order).
ANSWER_WEIGHTS: dict[str, Callable[[Appearance], list[float]]] = {
    "smooth-or-featured": lambda a: [(1 - a.featured) * (1 - a.artifact), a.featured * (1 - a.artifact), a.artifact],
    "smooth-or-features": lambda a: [(1 - a.featured) * (1 - a.artifact), a.featured * (1 - a.artifact), a.artifact],
    "disk-edge-on": lambda a: _binary(a.edge_on),
    "edge-on": lambda a: _binary(a.edge_on),
    "has-spiral-arms": lambda a: _binary(a.spiral),
    "spiral": lambda a: _binary(a.spiral),
    "bulge-size": lambda a: _peaked(5, 1 - a.bulge),
    "bulge-prominence": lambda a: _peaked(4, a.bulge),
    "how-rounded": lambda a: _peaked(3, 1 - a.roundness),
    "edge-on-bulge": lambda a: [0.15, 1 - a.bulge, a.bulge],
    "bulge-shape": lambda a: [a.bulge, 0.15, 1 - a.bulge],
    "spiral-winding": lambda a: [0.3, 0.4, 0.3],
    "arm-winding": lambda a: [0.3, 0.4, 0.3],
    "spiral-arm-count": lambda a: [0.08, 0.5, 0.12, 0.05, 0.05, 0.2],
    "arm-count": lambda a: [0.08, 0.5, 0.12, 0.05, 0.05, 0.2],
    "merging": lambda a: _peaked(4, a.disturbed, 4.0),
    "odd": lambda a: _binary(_clip(0.05 + a.disturbed)),
    "odd-feature": lambda a: [0.15, 0.05, a.disturbed + 0.05, a.disturbed / 2 + 0.05, 0.1, a.disturbed / 2, 0.05],
}


def expected_answers(galaxy: Galaxy, workflow: Workflow) -> dict[str, str]:
    """The answers a simulated galaxy's known parameters imply for this workflow, if stored."""
    path = ((galaxy.metadata or {}).get("expected_answers") or {}).get(workflow.slug) or []
    return {step["question"]: step["answer"] for step in path if isinstance(step, Mapping) and "question" in step}


def simulated_annotations(tree: DecisionTree, appearance: Appearance, rng: random.Random, noise: float,
                          expected: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """One volunteer's walk down the tree: the expected answer where one is known, otherwise
    drawn from the appearance; with probability ``noise`` an answer is a guess instead."""
    annotations, key = [], tree.first
    while key is not None:
        question = tree.question(key)
        n = len(question.answers)
        known = question.answer((expected or {}).get(key, ""))
        if known is not None:
            weights = [1.0 if a.key == known.key else 0.0 for a in question.answers]
        else:
            weights = _bar(appearance, n) if key == "bar" else ANSWER_WEIGHTS.get(key, lambda a: [1.0] * n)(appearance)
        if len(weights) != n or rng.random() < noise:
            weights = [1.0] * n
        answer = rng.choices(question.answers, weights=weights)[0]
        annotations.append({"question": key, "answer": answer.key})
        key = answer.next
    return annotations


def seed_simulated_votes(*, workflow: Workflow, galaxies: Iterable[Galaxy], votes_per_galaxy: tuple[int, int] = (3, 8),
                         seed: int = 0) -> int:
    """Simulated volunteers classify each galaxy (a random number of them within the range,
    each with their own noise level); returns how many classifications were stored."""
    rng = random.Random(seed)
    tree = workflow.decision_tree
    noise = [rng.uniform(0.05, 0.3) for _ in range(votes_per_galaxy[1])]
    stored = 0
    for galaxy in galaxies:
        appearance, expected = appearance_of(galaxy), expected_answers(galaxy, workflow)
        for volunteer in rng.sample(range(len(noise)), rng.randint(*votes_per_galaxy)):
            result = submit_classification(
                submission=Submission(
                    workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                    annotations=simulated_annotations(tree, appearance, rng, noise[volunteer], expected),
                    idempotency_key=f"sim-{uuid.uuid4().hex}"),
                volunteer=Volunteer(key=f"{SIMULATED_VOLUNTEER_PREFIX}:{volunteer}"), is_simulated=True)
            stored += result.created
    return stored

