"""Dirichlet–Multinomial likelihood of volunteer vote counts over a decision tree.

Per question with votes n (sum N) and concentrations α (sum A)::

    log p(n | α) = lnΓ(N+1) + lnΓ(A) − lnΓ(N+A) + Σ_k [lnΓ(n_k+α_k) − lnΓ(α_k) − lnΓ(n_k+1)]

With N = 0 every term cancels, so questions nobody reached contribute exactly 0 and need no
mask. Only ``torch.lgamma`` is needed.
"""

from __future__ import annotations

import torch

from classifier.schema import Schema


def _segment_sum(values: torch.Tensor, schema: Schema) -> torch.Tensor:
    """Sum ``(..., A)`` per question -> ``(..., Q)``."""
    index = torch.as_tensor(schema.answer_question, device=values.device)
    out = torch.zeros(values.shape[:-1] + (schema.n_questions,), dtype=values.dtype, device=values.device)
    return out.index_add_(-1, index, values)


def dirichlet_multinomial_log_prob(counts: torch.Tensor, concentrations: torch.Tensor,
                                   schema: Schema) -> torch.Tensor:
    """Log-likelihood per question, ``(B, A)`` counts and concentrations -> ``(B, Q)``."""
    counts = counts.to(concentrations.dtype)
    per_answer = (torch.lgamma(counts + concentrations) - torch.lgamma(concentrations)
                  - torch.lgamma(counts + 1))
    total_votes = _segment_sum(counts, schema)
    total_conc = _segment_sum(concentrations, schema)
    log_prob = (torch.lgamma(total_votes + 1) + torch.lgamma(total_conc)
                - torch.lgamma(total_votes + total_conc) + _segment_sum(per_answer, schema))
    # The terms cancel analytically at N = 0; make it exact rather than a float residue.
    return torch.where(total_votes > 0, log_prob, torch.zeros_like(log_prob))


def dirichlet_multinomial_loss(counts: torch.Tensor, concentrations: torch.Tensor,
                               schema: Schema) -> torch.Tensor:
    """Negative log-likelihood summed over questions, mean over the batch."""
    return -dirichlet_multinomial_log_prob(counts, concentrations, schema).sum(dim=-1).mean()
