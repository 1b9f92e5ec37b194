"""Kaggle Galaxy Challenge format (``GalaxyID``, ``Class1.1`` … ``Class11.6``) for the GZ2 tree.

Each Kaggle value is the share of *all* volunteers who gave that answer, so a question's values
sum to the probability of reaching it. Counts are recovered as ``round(votes × value)`` (GZ2
galaxies had ~40 classifications), and the challenge metric compares predicted shares:
conditional fraction × probability of reaching the question.

Quirk: in the Kaggle data Class6 ("anything odd?") sums to 1 for every galaxy, although
star/artifact ends the GZ2 tree before it. We follow the data: "odd" is treated as reached by
every volunteer when computing shares for the Kaggle metric, and its counts (which then sum to
~40) are used as they are for training — the Dirichlet–Multinomial loss treats each question's
votes separately, so that needs no special case.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from classifier.schema import Schema

KAGGLE_ID_COLUMN = "GalaxyID"
KAGGLE_ALWAYS_REACHED = frozenset({"Class6"})
DEFAULT_VOTES_PER_GALAXY = 40
_KAGGLE_COLUMN = re.compile(r"^Class(\d+)\.(\d+)$")


class KaggleFormatError(ValueError):
    pass


def is_kaggle_catalog(frame: pd.DataFrame) -> bool:
    return KAGGLE_ID_COLUMN in frame.columns and any(_KAGGLE_COLUMN.match(str(c)) for c in frame.columns)


def supports_kaggle(schema: Schema) -> bool:
    return all("kaggle" in q.extra for q in schema.tree.questions)


def kaggle_columns(schema: Schema) -> list[str]:
    """``ClassN.i`` for every answer, in schema order (answers are stored in Kaggle order)."""
    if not supports_kaggle(schema):
        raise KaggleFormatError(f"schema '{schema.name}' has no Kaggle class ids (use the gz2 schema)")
    return [f"{q.extra['kaggle']}.{i + 1}" for q in schema.tree.questions for i in range(len(q.answers))]


def always_reached_questions(schema: Schema) -> frozenset[int]:
    return frozenset(i for i, q in enumerate(schema.tree.questions) if q.extra.get("kaggle") in KAGGLE_ALWAYS_REACHED)


def kaggle_shares(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """``(G, A)`` Kaggle values in schema order, validating the columns."""
    expected = kaggle_columns(schema)
    present = [str(c) for c in frame.columns if _KAGGLE_COLUMN.match(str(c))]
    unknown = sorted(set(present) - set(expected))
    if unknown:
        raise KaggleFormatError(f"count column(s) {', '.join(unknown)} not in schema '{schema.name}'")
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise KaggleFormatError(f"Kaggle catalog lacks column(s) {', '.join(missing[:5])}")
    values = frame[expected].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    return np.clip(values, 0.0, 1.0)


def kaggle_to_counts(frame: pd.DataFrame, schema: Schema,
                     votes_per_galaxy: int = DEFAULT_VOTES_PER_GALAXY) -> pd.DataFrame:
    """A Kaggle catalog as a standard one: ``id_str``, ``file_loc``, ``{question}_{answer}`` counts."""
    shares = kaggle_shares(frame, schema)
    ids = frame[KAGGLE_ID_COLUMN].astype(str)
    file_loc = frame["file_loc"] if "file_loc" in frame.columns else ids + ".jpg"
    counts = pd.DataFrame(np.rint(shares * votes_per_galaxy).astype(np.int64),
                          columns=list(schema.tree.answer_columns), index=frame.index)
    return pd.concat([pd.DataFrame({"id_str": ids, "file_loc": file_loc}, index=frame.index), counts], axis=1)


def predicted_shares(fractions: np.ndarray, schema: Schema) -> np.ndarray:
    """Conditional fractions ``(..., A)`` -> Kaggle shares (fraction × reach probability)."""
    reach = schema.reach_probabilities(fractions, always_reached=always_reached_questions(schema))
    return np.asarray(fractions) * reach[..., schema.answer_question]


def counts_to_shares(counts: np.ndarray, schema: Schema) -> np.ndarray:
    """Kaggle-style shares from counts: votes per answer over the votes for the first question."""
    total = counts[:, schema.question_slices[schema.first_index][0]:schema.question_slices[schema.first_index][1]].sum(1)
    return counts / np.maximum(total, 1)[:, None]
