"""The model's view of a decision tree as arrays: each question's slice of the flat answer
vector, the question of every answer, and which answer leads to which question.

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
    """The index arrays the loss, acquisition and metrics need, all derived from the tree's
    questions (their slices) and answers (their vector index); names stay on the tree."""

    def __init__(self, tree: DecisionTree):
        self.tree = tree
        self.question_slices: tuple[tuple[int, int], ...] = tree.question_slices
        self.dependencies: tuple[Dependency, ...] = tuple(
            Dependency(tree.question(answer.next).index, question.index, answer.index)
            for question in tree.questions for answer in question.answers if answer.next)
        self.topological_indices: tuple[int, ...] = tuple(tree.question(k).index for k in tree.topological_order)
        self.first_index: int = tree.question(tree.first).index

    @classmethod
    def from_tree(cls, tree: DecisionTree) -> Schema:
        return cls(tree)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Inverse of :meth:`to_dict`; accepts the tree document itself too."""
        return cls(DecisionTree.from_dict(data.get("tree", data)))

    def to_dict(self) -> dict[str, Any]:
        return {"tree": self.tree.to_dict(), "version_hash": self.version_hash,
                "answer_columns": list(self.tree.answer_columns)}

    @property
    def name(self) -> str:
        return self.tree.name

    @property
    def version_hash(self) -> str:
        return self.tree.version_hash

    @property
    def n_questions(self) -> int:
        return len(self.tree.questions)

    @property
    def n_answers(self) -> int:
        return self.tree.n_answers

    @property
    def answer_columns(self) -> tuple[str, ...]:
        """Compatibility alias of ``tree.answer_columns`` for predict.py and retirement.py."""
        return self.tree.answer_columns

    @property
    def question_keys(self) -> tuple[str, ...]:
        """Compatibility alias of ``tree.question_keys`` for retirement.py."""
        return self.tree.question_keys

    @cached_property
    def answer_question(self) -> np.ndarray:
        """Question index of every answer (length ``n_answers``)."""
        out = np.empty(self.n_answers, dtype=np.int64)
        for question in self.tree.questions:
            out[question.slice] = question.index
        return out

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
