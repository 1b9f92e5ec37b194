"""The live queue's classifier helpers: features and posterior from one pass over the images,
float16 embedding bytes, a head's weights as bytes, moment-matched intervals, head scores."""

import numpy as np
import pytest
import torch

from classifier.acquisition import predictive_entropy, single_vote_bald, tree_bald
from classifier.data import load_images
from classifier.embeddings import FrozenEncoder, encode_images
from classifier.heads import HeadConfig, train_head
from classifier.live_head import (
    BaldPlan,
    embedding_bytes,
    embeddings_from_bytes,
    head_from_bytes,
    head_to_bytes,
    map_chunks,
    moment_matched_intervals,
    plan_bald,
    predict_with_features,
    score_embeddings,
)
from classifier.predict import credible_intervals, load_model, mean_fractions
from classifier.schema import Schema
from classifier.training import TrainConfig, train


@pytest.fixture
def schema(tiny_tree) -> Schema:
    return Schema.from_tree(tiny_tree)


def test_one_pass_gives_the_posterior_and_the_encoders_pooled_features(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    result = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run",
                   config=TrainConfig.fast_cpu(image_size=32, epochs=1, widths=(8, 16, 32), dropout=0.5))
    predictor = load_model(result.checkpoint_path, device="cpu")
    paths = [images / f for f in frame["file_loc"][:6]]
    predictions, features = predict_with_features(predictor, paths, n_samples=4, grid_points=101, batch_size=4)
    assert predictions.concentrations.shape == (6, 4, 5) and features.shape == (6, 32)
    assert np.all(predictions.lower <= predictions.fractions) and np.all(predictions.fractions <= predictions.upper)
    frozen = FrozenEncoder(predictor.model.encoder, predictor.preprocessing, "test")
    expected = encode_images(frozen, load_images([str(p) for p in paths], predictor.preprocessing))
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    # The head's MC samples are those of the full model: same encoder, dropout in the head only.
    torch.manual_seed(0)
    reference = predictor.predict(paths, n_samples=4).concentrations
    assert np.allclose(reference.mean(1), predictions.concentrations.mean(1), rtol=0.3)


def test_embedding_bytes_are_float16_and_round_trip():
    vectors = np.random.default_rng(0).normal(0, 3, size=(5, 7)).astype(np.float32)
    rows = embedding_bytes(vectors)
    assert [len(r) for r in rows] == [14] * 5
    back = embeddings_from_bytes([memoryview(r) for r in rows], 7)  # Postgres returns memoryviews
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, vectors, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="7 dimensions"):
        embeddings_from_bytes(rows[:2] + [b"\0\0"], 7)
    assert embeddings_from_bytes([], 7).shape == (0, 7)


def test_stored_head_predicts_exactly_as_the_trained_one(schema):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    counts = rng.integers(0, 6, size=(40, 5)).astype(np.float32)
    head = train_head(x, counts, schema, HeadConfig(members=3, hidden=8, steps=20))
    restored = head_from_bytes(head_to_bytes(head))
    assert restored.config == head.config and restored.schema.to_dict() == schema.to_dict()
    np.testing.assert_array_equal(restored.sample_concentrations(x), head.sample_concentrations(x))
    with pytest.raises(ValueError, match="not a stored Bayesian head"):
        head_from_bytes(_torch_bytes({"format": "other"}))


def _torch_bytes(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_moment_matched_intervals_agree_with_the_grid_inversion(schema):
    rng = np.random.default_rng(2)
    centre = rng.normal(0, 1.5, size=(200, 1, 5))
    concentrations = 1 + 100 / (1 + np.exp(-centre - rng.normal(0, 0.2, size=(200, 8, 5))))
    lower, upper = moment_matched_intervals(concentrations, schema)
    grid_lower, grid_upper = credible_intervals(concentrations, schema, grid_points=401)
    assert np.abs(lower - grid_lower).mean() < 0.005 and np.abs(upper - grid_upper).mean() < 0.005
    assert np.all(lower < upper) and np.all((lower >= 0) & (upper <= 1))


def test_head_scores_are_tree_bald_entropy_and_fractions_of_the_heads_samples(schema):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    counts = rng.integers(0, 8, size=(60, 5)).astype(np.float32)
    head = train_head(x, counts, schema, HeadConfig(members=6, hidden=16, steps=50))
    scores = score_embeddings(head, x[:30], n_total=10)
    samples = head.sample_concentrations(x[:30])
    assert scores.concentrations.shape == (30, 6, 5) and np.array_equal(scores.concentrations, samples)
    np.testing.assert_allclose(scores.acquisition, tree_bald(samples, schema, n_total=10))
    np.testing.assert_allclose(scores.entropy, predictive_entropy(samples, schema))
    np.testing.assert_allclose(scores.fractions, mean_fractions(samples, schema))
    assert scores.acquisition.std() > 0
    assert np.all(scores.lower <= scores.fractions + 1e-9) and np.all(scores.fractions <= scores.upper + 1e-9)


def test_bald_plan_gives_the_top_candidates_precise_tree_bald_and_the_rest_the_screen(schema):
    rng = np.random.default_rng(4)
    centre = rng.normal(0, 1.5, size=(80, 1, 5))
    concentrations = 1 + 100 / (1 + np.exp(-centre - rng.normal(0, 0.4, size=(80, 6, 5))))
    scores = plan_bald(concentrations, schema, n_total=20, plan=BaldPlan(precise_top=10))
    screen = single_vote_bald(concentrations, schema)
    top = np.argsort(-screen, kind="stable")[:10]
    np.testing.assert_allclose(scores[top], tree_bald(concentrations[top], schema, n_total=20))
    rest = np.setdiff1d(np.arange(80), top)
    np.testing.assert_allclose(scores[rest], screen[rest])
    assert scores[top].min() > scores[rest].max()  # the precise candidates head the queue
    everything = plan_bald(concentrations, schema, n_total=20, plan=BaldPlan(precise_top=0))
    np.testing.assert_allclose(everything, tree_bald(concentrations, schema, n_total=20))


def test_map_chunks_returns_every_slice_in_order_on_threads():
    values = np.arange(23)
    for workers in (1, 3):
        parts = map_chunks(lambda part: part * 2, values, chunk=5, workers=workers)
        assert [len(p) for p in parts] == [5, 5, 5, 5, 3]
        np.testing.assert_array_equal(np.concatenate(parts), values * 2)
    assert map_chunks(len, values[:0], chunk=5, workers=2) == []


def test_chunked_threaded_scores_equal_the_per_chunk_computation(schema):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(70, 4)).astype(np.float32)
    counts = rng.integers(0, 8, size=(70, 5)).astype(np.float32)
    head = train_head(x, counts, schema, HeadConfig(members=6, hidden=16, steps=50))
    whole = score_embeddings(head, x, n_total=10)
    chunked = score_embeddings(head, x, n_total=10, chunk=16, workers=2)
    # Fractions, intervals and entropy are per galaxy; exact tree BALD (10 votes: every question
    # enumerated) too, so chunks on threads change nothing.
    for name in ("fractions", "lower", "upper", "entropy", "acquisition", "concentrations"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), err_msg=name)
    # Monte-Carlo tree BALD (exact_limit 2: every question of 2+ answers) draws per call, so each
    # chunk's scores are tree BALD of that chunk.
    chunked = np.concatenate(map_chunks(lambda part: tree_bald(part, schema, n_total=20, exact_limit=2, mc_samples=16),
                                        whole.concentrations, chunk=16, workers=2))
    per_chunk = np.concatenate([tree_bald(whole.concentrations[s:s + 16], schema, n_total=20, exact_limit=2,
                                          mc_samples=16) for s in range(0, 70, 16)])
    np.testing.assert_allclose(chunked, per_chunk)
    screened = plan_bald(whole.concentrations, schema, n_total=10, plan=BaldPlan(precise_top=5), chunk=16, workers=2)
    np.testing.assert_allclose(screened, plan_bald(whole.concentrations, schema, n_total=10, plan=BaldPlan(precise_top=5)))
