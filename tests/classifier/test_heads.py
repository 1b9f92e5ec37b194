"""Bayesian Dirichlet heads on embeddings: they learn vote fractions, and their epistemic
spread grows away from the labelled data, which is what BALD ranks by."""

import numpy as np
import pytest

from classifier.acquisition import predictive_entropy, tree_bald
from classifier.heads import HeadConfig, mixture_nll, train_head
from classifier.predict import mean_fractions
from classifier.schema import Schema

# Two clusters of galaxies with known answer probabilities (shape: round/disk/artifact; arms: yes/no).
TRUE_SHAPE = {0: [0.8, 0.15, 0.05], 1: [0.1, 0.85, 0.05]}
TRUE_ARMS = {0: [0.5, 0.5], 1: [0.7, 0.3]}
DIM = 16
CENTRES = np.zeros((2, DIM), dtype=np.float32)
CENTRES[0, :8], CENTRES[1, :8] = -1.0, 1.0


def synthetic(n: int, seed: int, votes: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 2, size=n)
    x = CENTRES[cluster] + rng.normal(0, 0.5, size=(n, DIM)).astype(np.float32)
    counts = np.zeros((n, 5), dtype=np.float32)
    for i, c in enumerate(cluster):
        shape = rng.multinomial(votes, TRUE_SHAPE[c])
        counts[i, :3] = shape
        counts[i, 3:] = rng.multinomial(shape[1], TRUE_ARMS[c])
    return x.astype(np.float32), counts, cluster


@pytest.fixture
def schema(tiny_tree) -> Schema:
    return Schema.from_tree(tiny_tree)


FAST = {"hidden": 32, "steps": 300, "lr": 1e-2}


@pytest.mark.parametrize("kind", ["ensemble", "mc_dropout"])
def test_head_recovers_known_fractions(schema, kind):
    x, counts, _ = synthetic(400, seed=0)
    head = train_head(x, counts, schema, HeadConfig(kind=kind, **FAST))
    probe = CENTRES + 0.1
    conc = head.sample_concentrations(probe)
    assert conc.shape == (2, head.config.n_samples, 5)
    fractions = mean_fractions(conc, schema)
    for c in (0, 1):
        np.testing.assert_allclose(fractions[c, :3], TRUE_SHAPE[c], atol=0.07)
        np.testing.assert_allclose(fractions[c, 3:], TRUE_ARMS[c], atol=0.12)


def test_trained_head_beats_an_untrained_one_on_held_out_votes(schema):
    x, counts, _ = synthetic(300, seed=1)
    x_test, counts_test, _ = synthetic(200, seed=2)
    trained = train_head(x, counts, schema, HeadConfig(**FAST))
    untrained = train_head(x, counts, schema, HeadConfig(**{**FAST, "steps": 0}))
    assert mixture_nll(trained.sample_concentrations(x_test), counts_test, schema).mean() < \
        mixture_nll(untrained.sample_concentrations(x_test), counts_test, schema).mean() - 5


@pytest.mark.parametrize("kind", ["ensemble", "mc_dropout"])
def test_members_disagree_more_far_from_the_data_and_bald_ranks_it_higher(schema, kind):
    x, counts, _ = synthetic(200, seed=3)
    head = train_head(x, counts, schema, HeadConfig(kind=kind, **FAST))
    near = CENTRES[[0, 1, 0, 1]] + np.random.default_rng(4).normal(0, 0.3, size=(4, DIM)).astype(np.float32)
    far = np.zeros((4, DIM), dtype=np.float32)
    far[np.arange(4), 8 + 2 * np.arange(4)] = [8.0, -8.0, 8.0, -8.0]
    conc = head.sample_concentrations(np.concatenate([near, far]))
    fractions = conc / np.concatenate([conc[..., :3].sum(-1, keepdims=True).repeat(3, -1),
                                       conc[..., 3:].sum(-1, keepdims=True).repeat(2, -1)], -1)
    spread = fractions.std(axis=1).mean(-1)
    assert spread[4:].min() > spread[:4].max()
    bald = tree_bald(conc, schema, n_total=40)
    assert (bald >= 0).all()
    assert bald[4:].mean() > 2 * bald[:4].mean()
    assert predictive_entropy(conc, schema).shape == (8,)


def test_ensemble_members_are_distinct_and_mc_passes_configurable(schema):
    x, counts, _ = synthetic(100, seed=5)
    ensemble = train_head(x, counts, schema, HeadConfig(members=4, **FAST))
    conc = ensemble.sample_concentrations(x[:3])
    assert conc.shape == (3, 4, 5) and conc.dtype == np.float32
    assert np.abs(conc[:, 0] - conc[:, 1]).max() > 1e-3
    dropout = train_head(x, counts, schema, HeadConfig(kind="mc_dropout", mc_passes=7, **FAST))
    assert dropout.sample_concentrations(x[:3]).shape == (3, 7, 5)
    assert dropout.sample_concentrations(x[:3], n_samples=50).shape == (3, 50, 5)


def test_bad_inputs_are_rejected(schema):
    x, counts, _ = synthetic(10, seed=6)
    with pytest.raises(ValueError, match="counts"):
        train_head(x, counts[:, :4], schema)
    with pytest.raises(ValueError, match="at least one"):
        train_head(x[:0], counts[:0], schema)
    with pytest.raises(ValueError, match="kind"):
        HeadConfig(kind="laplace")


def test_warm_start_continues_from_the_previous_head(schema):
    x, counts, _ = synthetic(300, seed=7)
    x_test, counts_test, _ = synthetic(200, seed=8)
    first = train_head(x[:100], counts[:100], schema, HeadConfig(**FAST))
    warm = train_head(x, counts, schema, HeadConfig(**{**FAST, "warm_steps": 0}), init=first)
    np.testing.assert_allclose(warm.sample_concentrations(x_test), first.sample_concentrations(x_test))
    refreshed = train_head(x, counts, schema, HeadConfig(**{**FAST, "warm_steps": 50}), init=first)
    assert mixture_nll(refreshed.sample_concentrations(x_test), counts_test, schema).mean() <= \
        mixture_nll(first.sample_concentrations(x_test), counts_test, schema).mean() + 0.5
    with pytest.raises(ValueError, match="init head"):
        train_head(x, counts, schema, HeadConfig(**{**FAST, "hidden": 16}), init=first)
