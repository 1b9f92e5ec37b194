"""Bayesian Dirichlet heads on frozen embeddings (the light tier of the two-tier model).

A head maps an embedding to Dirichlet concentrations over every answer of the tree
(``α = 1 + 100·sigmoid(x)``, as :class:`classifier.models.DirichletHead`) and is trained with
the same Dirichlet–Multinomial loss on vote counts. Its epistemic posterior comes from one of:

* ``ensemble`` — a deep ensemble of small MLPs (Lakshminarayanan et al. 2017), each from its
  own initialisation and its own Bayesian-bootstrap weights on the labelled galaxies
  (Rubin 1981): members agree where the labels pin them down and drift apart elsewhere.
  Dropout regularises training only (without it the members over-fit 100 labels: loss 42.1
  vs 39-40 on E); prediction is deterministic per member. All members train at once as
  batched matrix products.
* ``mc_dropout`` — one MLP with dropout kept on at prediction, ``mc_passes`` passes (Gal &
  Ghahramani 2016), dropout before *both* layers.

Either returns concentration samples ``(G, T, A)`` for :func:`classifier.acquisition.tree_bald`
and :func:`classifier.acquisition.predictive_entropy`. Training is a fixed number of Adam steps on
minibatches (no early stopping: on a few hundred labels a validation split is noise).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from classifier.losses import dirichlet_multinomial_log_prob
from classifier.schema import Schema

HEAD_KINDS = ("ensemble", "mc_dropout")


@contextmanager
def _one_thread() -> Iterator[None]:
    """The head's matrices are tiny: intra-op threads only add synchronisation, and on the
    shared 2-core machine 2 threads made a 300-step fit 10× slower (42 s vs 4 s at load 8)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class HeadConfig:
    kind: str = "ensemble"
    hidden: int = 64
    members: int = 8
    dropout: float = 0.2
    mc_passes: int = 32
    steps: int = 200
    steps_per_label: float = 0.0
    max_steps: int | None = None
    warm_steps: int = 50
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-3
    bootstrap: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head kind must be one of {', '.join(HEAD_KINDS)}, got '{self.kind}'")
        if min(self.members, self.hidden, self.mc_passes, self.batch_size) < 1 or self.steps < 0:
            raise ValueError("members, hidden, mc_passes and batch_size must be positive and steps non-negative")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def steps_for(self, n_labelled: int) -> int:
        """``steps``, or ``steps_per_label`` × labels when that is more, capped at ``max_steps``:
        a few labels over-fit with many steps, thousands under-fit with few (tuned on E)."""
        steps = max(self.steps, round(self.steps_per_label * n_labelled))
        return steps if self.max_steps is None else min(steps, self.max_steps)

    @property
    def n_samples(self) -> int:
        return self.members if self.kind == "ensemble" else self.mc_passes


class BatchedDirichletMLP(nn.Module):
    """``M`` independent two-layer MLPs evaluated together: ``(G, D)`` -> ``(M, G, A)``."""

    def __init__(self, n_members: int, n_features: int, hidden: int, n_outputs: int, dropout: float):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_members, n_features, hidden))
        self.b1 = nn.Parameter(torch.zeros(n_members, 1, hidden))
        self.w2 = nn.Parameter(torch.empty(n_members, hidden, n_outputs))
        self.b2 = nn.Parameter(torch.zeros(n_members, 1, n_outputs))
        for weight in (self.w1, self.w2):
            bound = 1 / math.sqrt(weight.shape[1])  # nn.Linear's default range
            nn.init.uniform_(weight, -bound, bound)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(x.expand(self.w1.shape[0], *x.shape))
        h = self.dropout(torch.relu(torch.baddbmm(self.b1, x, self.w1)))
        return 1.0 + 100.0 * torch.sigmoid(torch.baddbmm(self.b2, h, self.w2))


class BayesianHead:
    """A trained head with the embedding standardisation it was trained with."""

    def __init__(self, network: BatchedDirichletMLP, mean: torch.Tensor, scale: torch.Tensor,
                 schema: Schema, config: HeadConfig, train_seconds: float):
        self.network, self.mean, self.scale = network, mean, scale
        self.schema, self.config, self.train_seconds = schema, config, train_seconds

    def sample_concentrations(self, embeddings: np.ndarray, *, n_samples: int | None = None, seed: int = 0,
                              chunk: int = 8192) -> np.ndarray:
        """``(G, D)`` embeddings -> ``(G, T, A)`` float32 concentration samples: one per
        ensemble member, or ``n_samples`` (default ``mc_passes``) dropout passes."""
        with _one_thread(), torch.no_grad():
            return self._sample(embeddings, n_samples, seed, chunk)

    def _sample(self, embeddings: np.ndarray, n_samples: int | None, seed: int, chunk: int) -> np.ndarray:
        x_all = (torch.as_tensor(np.asarray(embeddings), dtype=torch.float32) - self.mean) / self.scale
        if self.config.kind == "ensemble":
            self.network.eval()
            parts = [self.network(x_all[s:s + chunk]) for s in range(0, len(x_all), chunk)]
            out = torch.cat(parts, dim=1) if parts else torch.zeros(self.config.members, 0, self.schema.n_answers)
        else:
            torch.manual_seed(seed)
            self.network.train()
            passes = n_samples or self.config.mc_passes
            out = torch.cat([torch.cat([self.network(x_all[s:s + chunk]) for s in range(0, len(x_all), chunk)], dim=1)
                             for _ in range(passes)]) if len(x_all) else torch.zeros(passes, 0, self.schema.n_answers)
            self.network.eval()
        return out.permute(1, 0, 2).contiguous().numpy()


def _answer_to_question(schema: Schema) -> torch.Tensor:
    onehot = torch.zeros(schema.n_answers, schema.n_questions)
    onehot[torch.arange(schema.n_answers), torch.as_tensor(schema.answer_question)] = 1.0
    return onehot


def _training_log_likelihood(counts: torch.Tensor, concentrations: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Dirichlet–Multinomial log-likelihood per galaxy up to terms free of α (the
    lnΓ(n+1) terms), with per-question sums as one matrix product: ``(..., A)`` -> ``(...)``.
    Half the lgamma calls of :func:`classifier.losses.dirichlet_multinomial_log_prob`."""
    per_question = (torch.lgamma(counts + concentrations) - torch.lgamma(concentrations)) @ onehot
    total = concentrations @ onehot
    return (per_question + torch.lgamma(total) - torch.lgamma(counts @ onehot + total)).sum(-1)


def train_head(embeddings: np.ndarray, counts: np.ndarray, schema: Schema,
               config: HeadConfig | None = None, *, init: BayesianHead | None = None) -> BayesianHead:
    """Fit a Bayesian Dirichlet head on ``(N, D)`` embeddings and ``(N, A)`` vote counts.

    ``config.steps_for(N)`` Adam steps on minibatches of at most ``config.batch_size``
    galaxies, so the cost per refresh is bounded whatever the number of labels. With ``init``
    (the previous refresh's head, same config) training continues from its weights and
    standardisation for ``config.warm_steps`` steps: the live queue's cheap refresh."""
    with _one_thread():
        return _train_head(embeddings, counts, schema, config or HeadConfig(), init)


def _train_head(embeddings: np.ndarray, counts: np.ndarray, schema: Schema, config: HeadConfig,
                init: BayesianHead | None) -> BayesianHead:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    counts = np.asarray(counts, dtype=np.float32)
    if embeddings.ndim != 2 or counts.shape != (len(embeddings), schema.n_answers):
        raise ValueError(f"need (N, D) embeddings and (N, {schema.n_answers}) counts, "
                         f"got {embeddings.shape} and {counts.shape}")
    if len(embeddings) == 0:
        raise ValueError("need at least one labelled galaxy to train a head")
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    x = torch.from_numpy(embeddings)
    members = config.members if config.kind == "ensemble" else 1
    network = BatchedDirichletMLP(members, x.shape[1], config.hidden, schema.n_answers, config.dropout)
    if init is not None:
        if (init.config.kind, init.config.hidden, init.config.n_samples if init.config.kind == "ensemble" else 1,
                init.mean.shape[0]) != (config.kind, config.hidden, members, x.shape[1]):
            raise ValueError("init head has another kind, size or embedding dimension than this config")
        network.load_state_dict(init.network.state_dict())
        mean, scale = init.mean, init.scale
    else:
        mean = x.mean(0)
        scale = x.std(0, unbiased=False).clamp_min(1e-6) if len(x) > 1 else torch.ones(x.shape[1])
    x = (x - mean) / scale
    y = torch.from_numpy(counts)
    if config.kind == "ensemble" and config.bootstrap and members > 1:
        weights = -torch.log(torch.rand(members, len(x), generator=generator))  # Exp(1): Bayesian bootstrap
        weights = weights / weights.mean(1, keepdim=True)
    else:
        weights = torch.ones(members, len(x))
    onehot = _answer_to_question(schema)
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    batch = min(len(x), config.batch_size)
    network.train()
    for _ in range(config.warm_steps if init is not None else config.steps_for(len(x))):
        rows = torch.randperm(len(x), generator=generator)[:batch] if batch < len(x) else slice(None)
        log_lik = _training_log_likelihood(y[rows], network(x[rows]), onehot)  # (M, B)
        loss = -(log_lik * weights[:, rows]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    network.eval()
    return BayesianHead(network, mean, scale, schema, config, time.perf_counter() - started)


def mixture_nll(concentrations: np.ndarray, counts: np.ndarray, schema: Schema) -> np.ndarray:
    """Per galaxy −log p(all its votes) under the mixture over the T samples of the
    whole-tree Dirichlet–Multinomial: ``(G, T, A)``, ``(G, A)`` -> ``(G,)``."""
    conc = torch.as_tensor(np.asarray(concentrations), dtype=torch.float64)
    votes = torch.as_tensor(np.asarray(counts), dtype=torch.float64)[:, None, :].expand_as(conc)
    n_answers = conc.shape[-1]
    log_p = dirichlet_multinomial_log_prob(votes.reshape(-1, n_answers), conc.reshape(-1, n_answers),
                                           schema).sum(-1).reshape(conc.shape[:2])
    return (-(torch.logsumexp(log_p, dim=1) - math.log(conc.shape[1]))).numpy()
