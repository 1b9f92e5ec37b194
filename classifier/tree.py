"""Decision trees of single-choice questions: the one definition that the volunteer UI,
annotation validation on the platform and the loss in the classifier all read.

No torch or Django, so every layer can import it; numpy only for :meth:`DecisionTree.counts_vector`.
A tree is a JSON document::

    {"name": "decals_dr5", "title": "...", "first": "smooth-or-featured",
     "questions": [{"key": "...", "text": "...", "help": "...",
                    "answers": [{"key": "...", "label": "...", "next": "<question>|null"}]}]}

The order of ``questions`` (and of the answers inside each) fixes the answer vector: each
:class:`Answer` knows its label column ``{question}_{answer}`` (Zoobot convention) and its
index in the vector, each :class:`Question` its slice of it. Nothing else builds a column
name. ``first`` and the ``next`` pointers fix the order in which volunteers are asked.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

TREES_DIR = Path(__file__).resolve().parent / "trees"
SHIPPED_TREES = ("decals_dr5", "gz2")


class TreeDefinitionError(ValueError):
    """The tree document itself is malformed (duplicate keys, dangling links, cycles...)."""


class AnnotationError(ValueError):
    """A volunteer's sequence of answers does not follow the tree.

    ``index`` is the position in the submitted sequence, ``rule`` a short machine-readable
    name of the rule broken, ``question``/``answer`` the keys involved (when known).
    """

    def __init__(self, message: str, *, rule: str, index: int | None = None,
                 question: str | None = None, answer: str | None = None):
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.index = index
        self.question = question
        self.answer = answer

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "rule": self.rule, "index": self.index,
                "question": self.question, "answer": self.answer}


@dataclass(frozen=True)
class Answer:
    """One answer; ``column`` and ``index`` (its place in the answer vector) are set by the tree."""

    key: str
    label: str
    next: str | None
    help: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    column: str = ""
    index: int = -1


@dataclass(frozen=True)
class Question:
    """One question; ``index`` (its place among the questions) and its answers' range
    ``start:end`` in the answer vector are set by the tree."""

    key: str
    text: str
    answers: tuple[Answer, ...]
    help: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    index: int = -1
    start: int = 0
    end: int = 0

    @property
    def slice(self) -> slice:
        return slice(self.start, self.end)

    def answer(self, key: str) -> Answer | None:
        for answer in self.answers:
            if answer.key == key:
                return answer
        return None

    @property
    def answer_keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.answers)


# Fields read from a document (the rest is kept as ``extra``); start/end and column/index are
# derived from the order, so a served document read back does not carry them as extras.
_QUESTION_FIELDS = {"key", "text", "help", "answers", "start", "end"}
_ANSWER_FIELDS = {"key", "label", "next", "help", "column", "index"}


class DecisionTree:
    """A validated decision tree. Build with :meth:`from_dict`, :meth:`from_file` or :meth:`load`."""

    def __init__(self, *, name: str, title: str, first: str, questions: Sequence[Question],
                 description: str = ""):
        self.name = name
        self.title = title
        self.description = description
        self.first = first
        self.questions: tuple[Question, ...] = _numbered(questions)
        self._by_key = {q.key: q for q in self.questions}
        self._validate()

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionTree:
        if not isinstance(data, Mapping):
            raise TreeDefinitionError("a tree must be a JSON object")
        raw_questions = data.get("questions")
        if not isinstance(raw_questions, list) or not raw_questions:
            raise TreeDefinitionError("'questions' must be a non-empty list")
        questions = []
        for qi, raw_q in enumerate(raw_questions):
            if not isinstance(raw_q, Mapping) or not isinstance(raw_q.get("key"), str) or not raw_q["key"]:
                raise TreeDefinitionError(f"question #{qi} needs a non-empty string 'key'")
            raw_answers = raw_q.get("answers")
            if not isinstance(raw_answers, list) or not raw_answers:
                raise TreeDefinitionError(f"question '{raw_q['key']}' needs a non-empty 'answers' list")
            answers = []
            for ai, raw_a in enumerate(raw_answers):
                if not isinstance(raw_a, Mapping) or not isinstance(raw_a.get("key"), str) or not raw_a["key"]:
                    raise TreeDefinitionError(f"answer #{ai} of question '{raw_q['key']}' needs a non-empty string 'key'")
                nxt = raw_a.get("next")
                if nxt is not None and not isinstance(nxt, str):
                    raise TreeDefinitionError(f"answer '{raw_q['key']}.{raw_a['key']}': 'next' must be a question key or null")
                answers.append(Answer(
                    key=raw_a["key"], label=str(raw_a.get("label", raw_a["key"])), next=nxt or None,
                    help=str(raw_a.get("help", "")),
                    extra={k: v for k, v in raw_a.items() if k not in _ANSWER_FIELDS}))
            questions.append(Question(
                key=raw_q["key"], text=str(raw_q.get("text", raw_q["key"])), answers=tuple(answers),
                help=str(raw_q.get("help", "")),
                extra={k: v for k, v in raw_q.items() if k not in _QUESTION_FIELDS}))
        first = data.get("first") or questions[0].key
        return cls(name=str(data.get("name", "tree")), title=str(data.get("title", data.get("name", "tree"))),
                   description=str(data.get("description", "")), first=first, questions=questions)

    @classmethod
    def from_file(cls, path: str | Path) -> DecisionTree:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TreeDefinitionError(f"{path}: cannot read tree: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, name_or_path: str | Path) -> DecisionTree:
        """A shipped tree by name (``decals_dr5``, ``gz2``) or a JSON file path."""
        if str(name_or_path) in SHIPPED_TREES:
            return cls.from_file(TREES_DIR / f"{name_or_path}.json")
        return cls.from_file(name_or_path)

    def to_dict(self, *, with_columns: bool = False) -> dict[str, Any]:
        """The tree document; ``with_columns`` adds each question's ``start``/``end`` and each
        answer's ``column``/``index`` for clients (derived, so never stored)."""
        def question(q: Question) -> dict[str, Any]:
            out = {"key": q.key, "text": q.text, "help": q.help, **dict(q.extra), "answers": [answer(a) for a in q.answers]}
            return {**out, "start": q.start, "end": q.end} if with_columns else out

        def answer(a: Answer) -> dict[str, Any]:
            out = {"key": a.key, "label": a.label, "next": a.next, "help": a.help, **dict(a.extra)}
            return {**out, "column": a.column, "index": a.index} if with_columns else out

        return {"name": self.name, "title": self.title, "description": self.description, "first": self.first,
                "questions": [question(q) for q in self.questions]}

    # ----------------------------------------------------------------- validation
    def _validate(self) -> None:
        seen: set[str] = set()
        for q in self.questions:
            if q.key in seen:
                raise TreeDefinitionError(f"duplicate question key '{q.key}'")
            seen.add(q.key)
            answer_keys = [a.key for a in q.answers]
            dupes = {k for k in answer_keys if answer_keys.count(k) > 1}
            if dupes:
                raise TreeDefinitionError(f"question '{q.key}' has duplicate answer keys {sorted(dupes)}")
            for a in q.answers:
                if a.next is not None and a.next not in self._by_key:
                    raise TreeDefinitionError(f"answer '{q.key}.{a.key}' leads to unknown question '{a.next}'")
        if self.first not in self._by_key:
            raise TreeDefinitionError(f"first question '{self.first}' is not defined")
        # Cycle detection by depth-first search with colours.
        state: dict[str, int] = {}

        def visit(key: str, trail: list[str]) -> None:
            state[key] = 1
            for nxt in {a.next for a in self._by_key[key].answers if a.next}:
                if state.get(nxt) == 1:
                    raise TreeDefinitionError("cycle in tree: " + " -> ".join(trail + [key, nxt]))
                if nxt not in state:
                    visit(nxt, trail + [key])
            state[key] = 2

        visit(self.first, [])
        unreachable = [q.key for q in self.questions if q.key not in state]
        if unreachable:
            raise TreeDefinitionError(f"questions not reachable from '{self.first}': {unreachable}")

    # ----------------------------------------------------------------- lookups
    def question(self, key: str) -> Question:
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def question_keys(self) -> tuple[str, ...]:
        return tuple(q.key for q in self.questions)

    @cached_property
    def answers(self) -> tuple[Answer, ...]:
        """Every answer in vector order (the model's output order)."""
        return tuple(a for q in self.questions for a in q.answers)

    @cached_property
    def answer_columns(self) -> tuple[str, ...]:
        """Label columns ``{question}_{answer}`` in vector order."""
        return tuple(a.column for a in self.answers)

    @property
    def n_answers(self) -> int:
        return len(self.answers)

    @cached_property
    def question_slices(self) -> tuple[tuple[int, int], ...]:
        """``(start, end)`` answer-index range of each question, in question order."""
        return tuple((q.start, q.end) for q in self.questions)

    def counts_vector(self, vote_counts: Mapping[str, int]) -> np.ndarray:
        """A tally ``{column: votes}`` as a ``(n_answers,)`` vector in column order; columns
        the tree does not have are ignored, missing ones count 0."""
        return np.array(self.counts_list(vote_counts), dtype=np.float64)

    def counts_list(self, vote_counts: Mapping[str, int]) -> list[float]:
        """:meth:`counts_vector` as a list, for callers that index it in Python."""
        return [float(vote_counts.get(column, 0) or 0) for column in self.answer_columns]

    def summary(self, vote_counts: Mapping[str, float]) -> list[dict[str, Any]]:
        """Per question: the total, and per answer its count and share of the question's total
        (None before any vote). Model fractions summarise the same way, as "counts" summing to 1."""
        out = []
        for question in self.questions:
            counts = [vote_counts.get(a.column, 0) or 0 for a in question.answers]
            total = sum(counts)
            out.append({
                "question": question.key, "text": question.text, "total": total,
                "answers": [{"answer": a.key, "label": a.label, "column": a.column, "count": count,
                             "fraction": count / total if total else None}
                            for a, count in zip(question.answers, counts, strict=True)]})
        return out

    @cached_property
    def parents(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """For each question, the ``(question, answer)`` pairs whose answer leads to it."""
        out: dict[str, list[tuple[str, str]]] = {q.key: [] for q in self.questions}
        for q in self.questions:
            for a in q.answers:
                if a.next:
                    out[a.next].append((q.key, a.key))
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        """Question keys such that every question comes after all questions leading to it."""
        indegree = {k: len({p for p, _ in v}) for k, v in self.parents.items()}
        ready = [self.first] + [k for k, d in indegree.items() if d == 0 and k != self.first]
        order: list[str] = []
        while ready:
            key = ready.pop(0)
            order.append(key)
            for nxt in dict.fromkeys(a.next for a in self._by_key[key].answers if a.next):
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        return tuple(order)

    def reach_probabilities(self, answer_fractions: Mapping[str, float] | Sequence[float]) -> dict[str, float]:
        """Probability that a volunteer reaches each question, given per-question answer
        fractions (a mapping by column name, or a sequence in ``answer_columns`` order)."""
        if not isinstance(answer_fractions, Mapping):
            answer_fractions = dict(zip(self.answer_columns, answer_fractions, strict=True))
        reach = {k: 0.0 for k in self.question_keys}
        reach[self.first] = 1.0
        for key in self.topological_order:
            for a in self._by_key[key].answers:
                if a.next:
                    reach[a.next] += reach[key] * float(answer_fractions[a.column])
        return reach

    @cached_property
    def version_hash(self) -> str:
        """Stable hash of the structure (keys and links, not wording): changes only when the
        meaning of stored votes would change."""
        structure = [[q.key, [[a.key, a.next] for a in q.answers]] for q in self.questions]
        blob = json.dumps([self.first, structure], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # ----------------------------------------------------------------- annotations
    def validate_annotations(self, annotations: Iterable[Any]) -> list[tuple[str, str]]:
        """Check a volunteer's ordered answers against the tree; return ``[(question, answer)]``.

        Each item may be a mapping ``{"question": ..., "answer": ...}`` or a pair. The path
        must start at the first question, give a valid answer to each question, move to the
        question that answer leads to, and stop exactly where the tree ends.
        """
        items = list(annotations) if not isinstance(annotations, (str, bytes, Mapping)) else None
        if items is None:
            raise AnnotationError("annotations must be a list of {question, answer} objects", rule="not_a_list")
        path: list[tuple[str, str]] = []
        expected: str | None = self.first
        for index, item in enumerate(items):
            if isinstance(item, Mapping):
                extra = set(item) - {"question", "answer"}
                if extra:
                    raise AnnotationError(f"annotation #{index} has unknown fields {sorted(extra)}",
                                          rule="unknown_field", index=index)
                question, answer = item.get("question"), item.get("answer")
            elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)) and len(item) == 2:
                question, answer = item
            else:
                raise AnnotationError(f"annotation #{index} must be an object with 'question' and 'answer'",
                                      rule="malformed", index=index)
            if not isinstance(question, str) or not isinstance(answer, str):
                raise AnnotationError(f"annotation #{index}: 'question' and 'answer' must be strings",
                                      rule="malformed", index=index,
                                      question=question if isinstance(question, str) else None)
            if expected is None:
                raise AnnotationError(
                    f"annotation #{index} answers '{question}' but the tree ended after "
                    f"'{path[-1][0]}' = '{path[-1][1]}'", rule="after_end", index=index,
                    question=question, answer=answer)
            if question not in self._by_key:
                raise AnnotationError(f"annotation #{index}: unknown question '{question}'",
                                      rule="unknown_question", index=index, question=question, answer=answer)
            if question != expected:
                where = "the first question" if not path else f"the question after '{path[-1][0]}' = '{path[-1][1]}'"
                raise AnnotationError(
                    f"annotation #{index}: expected '{expected}' ({where}), got '{question}'",
                    rule="wrong_question", index=index, question=question, answer=answer)
            chosen = self._by_key[question].answer(answer)
            if chosen is None:
                raise AnnotationError(
                    f"annotation #{index}: '{answer}' is not an answer of '{question}' "
                    f"(valid: {', '.join(self._by_key[question].answer_keys)})",
                    rule="invalid_answer", index=index, question=question, answer=answer)
            path.append((question, answer))
            expected = chosen.next
        if not path:
            raise AnnotationError(f"no annotations: the tree starts at '{self.first}'",
                                  rule="empty", question=self.first)
        if expected is not None:
            raise AnnotationError(
                f"incomplete: '{path[-1][0]}' = '{path[-1][1]}' leads to '{expected}', which was not answered",
                rule="incomplete", index=len(path), question=expected)
        return path

    def random_path(self, rng: random.Random) -> list[dict[str, str]]:
        """A valid annotation sequence with uniformly chosen answers (simulations, load tests)."""
        path, question = [], self.first
        while question is not None:
            answer = rng.choice(self._by_key[question].answers)
            path.append({"question": question, "answer": answer.key})
            question = answer.next
        return path

    def path_columns(self, path: Iterable[tuple[str, str]]) -> list[str]:
        """The columns a validated ``[(question, answer)]`` path votes for."""
        return [self._by_key[q].answer(a).column for q, a in path]

    def __repr__(self) -> str:
        return f"DecisionTree({self.name!r}, {len(self.questions)} questions, {self.n_answers} answers)"


def _numbered(questions: Sequence[Question]) -> tuple[Question, ...]:
    """The questions with their index and slice, their answers with column and vector index."""
    out, start = [], 0
    for qi, question in enumerate(questions):
        answers = tuple(replace(a, column=f"{question.key}_{a.key}", index=start + ai)
                        for ai, a in enumerate(question.answers))
        out.append(replace(question, answers=answers, index=qi, start=start, end=start + len(answers)))
        start += len(answers)
    return tuple(out)


def load_tree(name_or_path: str | Path) -> DecisionTree:
    return DecisionTree.load(name_or_path)
