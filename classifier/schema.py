"""The model's view of a decision tree: answers as one flat output vector, questions as
contiguous index groups, and which answer leads to which question.

Always built from :class:`classifier.tree.DecisionTree` (the platform's single definition)
and stored in every checkpoint as the tree document, so a checkpoint can never be read
against a different tree by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from classifier.tree import DecisionTree


class SchemaMismatchError(ValueError):
    """A checkpoint, catalog or array does not match the expected schema."""


@dataclass(frozen=True)
class Dependency:
    """``question`` is asked when ``parent`` was answered with answer index ``answer_index``
    (a global index into the answer vector)."""

    question: int
    parent: int
    answer_index: int


class Schema:
    """Index bookkeeping for the flat answer vector of a :class:`DecisionTree`."""

    def __init__(self, tree: DecisionTree):
        self.tree = tree
        self.question_keys: tuple[str, ...] = tree.question_keys
        self.answer_columns: tuple[str, ...] = tree.answer_columns
        self.question_slices: tuple[tuple[int, int], ...] = tree.question_slices
        q_index = {k: i for i, k in enumerate(self.question_keys)}
        deps = []
        for qi, question in enumerate(tree.questions):
            start = self.question_slices[qi][0]
            for ai, answer in enumerate(question.answers):
                if answer.next:
                    deps.append(Dependency(q_index[answer.next], qi, start + ai))
        self.dependencies: tuple[Dependency, ...] = tuple(deps)
        self.topological_indices: tuple[int, ...] = tuple(q_index[k] for k in tree.topological_order)
        self.first_index: int = q_index[tree.first]

    @classmethod
    def from_tree(cls, tree: DecisionTree) -> Schema:
        return cls(tree)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict`; accepts the tree document itself too."""
        return cls(DecisionTree.from_dict(data.get("tree", data)))

    def to_dict(self) -> dict[str, Any]:
        return {"tree": self.tree.to_dict(), "version_hash": self.version_hash,
                "answer_columns": list(self.answer_columns)}

    @property
    def name(self) -> str:
        return self.tree.name

    @property
    def version_hash(self) -> str:
        return self.tree.version_hash

    @property
    def n_questions(self) -> int:
        return len(self.question_keys)

    @property
    def n_answers(self) -> int:
        return len(self.answer_columns)

    @cached_property
    def question_index_groups(self) -> tuple[tuple[int, ...], ...]:
        """Answer indices of each question, e.g. ``((0, 1, 2), (3, 4), ...)``."""
        return tuple(tuple(range(start, stop)) for start, stop in self.question_slices)

    @cached_property
    def answer_question(self) -> np.ndarray:
        """Question index of every answer (length ``n_answers``)."""
        out = np.empty(self.n_answers, dtype=np.int64)
        for qi, (start, stop) in enumerate(self.question_slices):
            out[start:stop] = qi
        return out

    @cached_property
    def question_answer_counts(self) -> tuple[int, ...]:
        return tuple(stop - start for start, stop in self.question_slices)

    def fraction_columns(self) -> list[str]:
        return [f"{c}_fraction" for c in self.answer_columns]

    def reach_probabilities(self, fractions: np.ndarray,
                            always_reached: frozenset[int] = frozenset()) -> np.ndarray:
        """Probability of reaching each question, ``(..., A)`` conditional answer fractions
        -> ``(..., Q)``; the array version of :meth:`DecisionTree.reach_probabilities`.

        ``always_reached`` lists question indices forced to probability 1 (used for the
        Kaggle convention, where everybody is counted as reaching "odd").
        """
        fractions = np.asarray(fractions, dtype=np.float64)
        reach = np.zeros(fractions.shape[:-1] + (self.n_questions,), dtype=np.float64)
        reach[..., self.first_index] = 1.0
        for qi in always_reached:
            reach[..., qi] = 1.0
        incoming = {}
        for dep in self.dependencies:
            incoming.setdefault(dep.question, []).append(dep)
        for qi in self.topological_indices:
            if qi == self.first_index or qi in always_reached:
                continue
            reach[..., qi] = sum(reach[..., d.parent] * fractions[..., d.answer_index]
                                 for d in incoming.get(qi, []))
        return reach

    def check_compatible(self, other: Schema) -> None:
        if other.version_hash != self.version_hash:
            raise SchemaMismatchError(
                f"schema mismatch: '{other.name}' ({other.version_hash}) vs '{self.name}' ({self.version_hash})")

    def __repr__(self) -> str:
        return f"Schema({self.name!r}, {self.n_questions} questions, {self.n_answers} answers)"


def resolve_schema(name_or_path: str | DecisionTree | Schema) -> Schema:
    """A schema from a shipped tree name, a tree JSON path, a tree or a schema."""
    if isinstance(name_or_path, Schema):
        return name_or_path
    if isinstance(name_or_path, DecisionTree):
        return Schema.from_tree(name_or_path)
    return Schema.from_tree(DecisionTree.load(name_or_path))
