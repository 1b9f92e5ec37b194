import numpy as np
import pytest
import torch
from scipy.special import gammaln

from classifier.losses import dirichlet_multinomial_log_prob, dirichlet_multinomial_loss
from classifier.schema import resolve_schema


def reference_log_prob(counts: np.ndarray, alpha: np.ndarray) -> float:
    """The formula evaluated directly in float64 for one question."""
    n, a = counts.sum(), alpha.sum()
    return float(gammaln(n + 1) + gammaln(a) - gammaln(n + a)
                 + np.sum(gammaln(counts + alpha) - gammaln(alpha) - gammaln(counts + 1)))


def random_batch(schema, rng, batch=6):
    counts = rng.integers(0, 30, size=(batch, schema.n_answers)).astype(np.float64)
    alpha = 1 + 100 * rng.random((batch, schema.n_answers))
    return counts, alpha


def test_matches_direct_formula_in_float64_and_float32():
    schema = resolve_schema("gz2")
    counts, alpha = random_batch(schema, np.random.default_rng(0))
    expected = np.array([[reference_log_prob(counts[b, s:e], alpha[b, s:e]) for s, e in schema.question_slices]
                         for b in range(len(counts))])
    got64 = dirichlet_multinomial_log_prob(torch.tensor(counts), torch.tensor(alpha), schema).numpy()
    np.testing.assert_allclose(got64, expected, rtol=1e-10, atol=1e-9)
    got32 = dirichlet_multinomial_log_prob(torch.tensor(counts, dtype=torch.float32),
                                           torch.tensor(alpha, dtype=torch.float32), schema).numpy()
    np.testing.assert_allclose(got32, expected, rtol=1e-4, atol=1e-3)
    loss = dirichlet_multinomial_loss(torch.tensor(counts), torch.tensor(alpha), schema)
    assert float(loss) == pytest.approx(-expected.sum(axis=1).mean(), rel=1e-12)


def test_zero_vote_questions_contribute_exactly_zero():
    schema = resolve_schema("decals_dr5")
    counts, alpha = random_batch(schema, np.random.default_rng(1))
    start, stop = schema.question_slices[3]
    counts[:, start:stop] = 0
    log_prob = dirichlet_multinomial_log_prob(torch.tensor(counts, dtype=torch.float32),
                                              torch.tensor(alpha, dtype=torch.float32), schema)
    assert torch.all(log_prob[:, 3] == 0)
    assert torch.all(log_prob[:, 0] < 0)


def test_gradient_is_finite():
    schema = resolve_schema("gz2")
    counts, alpha = random_batch(schema, np.random.default_rng(2))
    logits = torch.randn(counts.shape, requires_grad=True)
    loss = dirichlet_multinomial_loss(torch.tensor(counts, dtype=torch.float32), 1 + 100 * torch.sigmoid(logits), schema)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_training_on_synthetic_counts_recovers_known_fractions(tiny_tree):
    """Two kinds of galaxy with different true vote fractions; a linear Dirichlet head on a
    one-hot 'image' must learn each kind's fractions from sampled votes."""
    from classifier.schema import Schema

    schema = Schema.from_tree(tiny_tree)
    truth = np.array([[0.7, 0.2, 0.1, 0.6, 0.4], [0.1, 0.85, 0.05, 0.25, 0.75]])
    rng = np.random.default_rng(0)
    kinds = rng.integers(0, 2, 400)
    counts = np.zeros((400, 5))
    for i, kind in enumerate(kinds):
        counts[i, :3] = rng.multinomial(30, truth[kind, :3])
        counts[i, 3:] = rng.multinomial(int(counts[i, 1]), truth[kind, 3:])
    features = torch.nn.functional.one_hot(torch.tensor(kinds), 2).float()
    layer = torch.nn.Linear(2, 5)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    target = torch.tensor(counts, dtype=torch.float32)
    for _ in range(400):
        optimizer.zero_grad()
        dirichlet_multinomial_loss(target, 1 + 100 * torch.sigmoid(layer(features)), schema).backward()
        optimizer.step()
    with torch.no_grad():
        alpha = (1 + 100 * torch.sigmoid(layer(torch.eye(2)))).numpy()
    fractions = np.concatenate([alpha[:, s:e] / alpha[:, s:e].sum(1, keepdims=True) for s, e in schema.question_slices], 1)
    np.testing.assert_allclose(fractions, truth, atol=0.05)
