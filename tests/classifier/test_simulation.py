"""Simulated volunteers (the demo's seed votes): appearance from parameters or images, and
walks down the trees following each answer's own hints."""

import random

import numpy as np
import pytest
from PIL import Image

from classifier.simulation import (
    Appearance,
    annotations_from_counts,
    answer_weights,
    appearance_from_image,
    appearance_from_metadata,
    expected_path,
    simulated_annotations,
)
from classifier.tree import SHIPPED_TREES, DecisionTree


def blob(tmp_path, name: str, axis_ratio: float, lopsided: bool = False) -> str:
    y, x = np.mgrid[:96, :96] - 47.5
    light = np.exp(-np.hypot(x, y / axis_ratio) / 6)
    if lopsided:
        light += 0.8 * np.exp(-np.hypot(x - 25, y - 20) / 5)
    path = tmp_path / f"{name}.png"
    Image.fromarray((255 * light / light.max()).astype(np.uint8)).save(path)
    return str(path)


def test_image_measurements_drive_the_simulated_answers(tmp_path):
    round_blob = appearance_from_image(blob(tmp_path, "round", 1.0))
    edge_on = appearance_from_image(blob(tmp_path, "flat", 0.25))
    disturbed = appearance_from_image(blob(tmp_path, "pair", 1.0, lopsided=True))
    assert round_blob.roundness > 0.9 > 0.5 > edge_on.roundness
    assert edge_on.edge_on > 0.5 > round_blob.edge_on
    assert disturbed.disturbed > round_blob.disturbed and disturbed.featured > round_blob.featured


def test_known_parameters_of_simulated_galaxies_take_precedence():
    appearance = appearance_from_metadata({"simulation": {"ellipticity": 0.8, "n_arms": 2, "sersic_n": 1.0}})
    assert appearance.roundness == pytest.approx(0.2) and appearance.spiral == 1.0
    assert appearance.edge_on == pytest.approx(0.9) and appearance.bulge == 0.0
    assert appearance_from_metadata({"survey_note": "x"}) is None


def test_simulated_walks_are_valid_for_both_shipped_trees():
    appearance = appearance_from_metadata({"featured": 0.9, "spiral": 1.0, "ellipticity": 0.1})
    rng = random.Random(0)
    for tree in map(DecisionTree.load, SHIPPED_TREES):
        walks = [simulated_annotations(tree, appearance, rng, noise=0.1) for _ in range(200)]
        for walk in walks:
            tree.validate_annotations(walk)  # raises on an invalid path
        featured = sum(w[0]["answer"].startswith("feature") for w in walks) / len(walks)
        assert featured > 0.75


def test_volunteers_follow_the_known_answers_of_simulated_galaxies_with_noise():
    tree = DecisionTree.load("decals_dr5")
    metadata = {"simulation": {"kind": "edge-on", "axis_ratio": 0.15, "bulge_fraction": 0.3},
                "expected_answers": {"gz-decals-dr5": [
                    {"question": "smooth-or-featured", "answer": "featured-or-disk"},
                    {"question": "disk-edge-on", "answer": "yes"}, {"question": "edge-on-bulge", "answer": "rounded"},
                    {"question": "merging", "answer": "none"}]}}
    expected = {s["question"]: s["answer"] for s in metadata["expected_answers"]["gz-decals-dr5"]}
    appearance = appearance_from_metadata(metadata)
    assert appearance.edge_on == 0.95 and appearance.roundness == 0.15
    rng = random.Random(0)
    walks = [simulated_annotations(tree, appearance, rng, noise=0.2, expected=expected) for _ in range(500)]
    exact = sum(w == metadata["expected_answers"]["gz-decals-dr5"] for w in walks) / len(walks)
    assert 0.35 < exact < 0.8  # most follow the truth; noise makes some answers guesses


def test_every_answer_of_the_shipped_trees_carries_a_hint_the_simulation_reads():
    for tree in map(DecisionTree.load, SHIPPED_TREES):
        for question in tree.questions:
            assert all("simulate" in answer.extra for answer in question.answers), question.key
            assert len(answer_weights(question, Appearance())) == len(question.answers)


def test_hints_drive_the_weights_and_the_expected_path():
    tree = DecisionTree.load("decals_dr5")
    smooth = tree.question("smooth-or-featured")
    assert answer_weights(smooth, Appearance(featured=0.2, artifact=0.0)) == pytest.approx([0.8, 0.2, 0.0])
    bulge = tree.question("bulge-size")
    big, none = answer_weights(bulge, Appearance(bulge=0.7)), answer_weights(bulge, Appearance(bulge=0.0))
    assert big.index(max(big)) == 0 and none.index(max(none)) == 4
    spiral = Appearance(featured=0.95, edge_on=0.0, spiral=1.0, bar=0.0, winding=1.0, arms=0.6)
    assert [(s["question"], s["answer"]) for s in expected_path(tree, spiral)][:6] == [
        ("smooth-or-featured", "featured-or-disk"), ("disk-edge-on", "no"), ("bar", "no"),
        ("has-spiral-arms", "yes"), ("spiral-winding", "tight"), ("spiral-arm-count", "3")]


def test_malformed_hints_are_refused_naming_the_answer():
    def tree_with(hints):
        return DecisionTree.from_dict({"first": "q", "questions": [{"key": "q", "answers": [
            {"key": key, "next": None, **({"simulate": hint} if hint is not None else {})}
            for key, hint in hints.items()]}]})

    assert answer_weights(tree_with({"a": None, "b": None}).question("q"), Appearance()) == [1.0, 1.0]
    with pytest.raises(ValueError, match="answers \\['b'\\] have no 'simulate' hint"):
        answer_weights(tree_with({"a": {"bias": 1}, "b": None}).question("q"), Appearance())
    with pytest.raises(ValueError, match="answer 'q.a': unknown feature 'sparkle'"):
        answer_weights(tree_with({"a": {"sparkle": 1}, "b": {"bias": 1}}).question("q"), Appearance())


def test_walks_from_real_counts_follow_each_branch_of_the_real_votes():
    tree = DecisionTree.load("gz2")
    counts = np.zeros(tree.n_answers)
    votes = {"smooth-or-features_smooth": 30, "smooth-or-features_features-or-disk": 10, "how-rounded_completely": 24,
             "how-rounded_in-between": 6, "edge-on_no": 10, "bar_yes": 10, "spiral_no": 10, "odd_no": 40}
    for column, n in votes.items():
        counts[tree.answer_columns.index(column)] = n
    rng = np.random.default_rng(0)
    walks = [annotations_from_counts(tree, counts, rng) for _ in range(2000)]
    for walk in walks:
        tree.validate_annotations(walk)
    first = [w[0]["answer"] for w in walks]
    assert abs(first.count("smooth") / len(walks) - 0.75) < 0.03
    assert "star-or-artifact" not in first  # no real vote for it: never drawn
    rounded = [a["answer"] for w in walks for a in w if a["question"] == "how-rounded"]
    assert abs(rounded.count("completely") / len(rounded) - 0.8) < 0.04  # conditional on reaching it
    bulge = [a["answer"] for w in walks for a in w if a["question"] == "bulge-prominence"]
    assert len(set(bulge)) == 4  # nobody reached it for real: uniform
    with pytest.raises(ValueError, match="one value per answer"):
        annotations_from_counts(tree, counts[:-1], rng)
