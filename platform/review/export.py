"""The catalogue export: one row per galaxy with its votes, the volunteers' fractions, the
model's posterior (Zoobot's ``{question}_{answer}_fraction/_lower/_upper`` names), BALD,
retirement, expert labels and flags, as CSV, FITS or Parquet.

Streams: galaxies are read in id order, ``EXPORT_CHUNK_SIZE`` at a time (keyset pagination,
no OFFSET), each chunk's votes, predictions, labels and flags fetched by id range and written
before the next is read, so memory stays flat whatever the catalogue's size. Column names:

- ``{question}_{answer}``: volunteer vote counts; ``{question}_total-votes``;
- ``{question}_{answer}_vote-fraction``: the volunteers' fraction (NaN without votes);
- ``{question}_{answer}_fraction`` / ``_lower`` / ``_upper``: model mean and 90% interval;
- ``bald``, ``retired``, ``retirement_reason``, ``override_reason`` (the newest scientist
  override), ``expert_labels`` (how many), ``expert_annotations`` (newest, ``q=a;…``),
  ``flags`` (open flag kinds, ``;``-separated), ``model_version``, ``workflow_version``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from django.conf import settings

from classifications.models import SubjectStatus
from galaxies.models import Galaxy
from retraining.models import ModelVersion, Prediction
from workflows.models import Workflow

from .errors import InvalidQuery
from .models import ExpertClassification, Flag, RetirementOverride

FORMATS = ("csv", "fits", "parquet")
EXPORT_CONTENT_TYPES = {"csv": "text/csv", "fits": "application/fits", "parquet": "application/vnd.apache.parquet"}
# Fixed widths of the FITS text columns (FITS tables have no variable-length strings here):
# the model's own limits where it has them, else a documented truncation.
TEXT_WIDTHS = {"id_str": 100, "survey": 100, "retirement_reason": 32, "override_reason": 200,
               "expert_annotations": 400, "flags": 120}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CatalogLayout:
    workflow: Workflow
    model_version: ModelVersion | None
    questions: list[tuple[str, list[str]]]  # (question, [answer column])

    @property
    def columns(self) -> list[str]:
        out = ["id_str", "ra", "dec", "survey"]
        for question, answers in self.questions:
            out += [*answers, f"{question}_total-votes"]
        for _, answers in self.questions:
            out += [f"{a}_vote-fraction" for a in answers]
        for _, answers in self.questions:
            for a in answers:
                out += [f"{a}_fraction", f"{a}_lower", f"{a}_upper"]
        return [*out, "bald", "retired", "retirement_reason", "override_reason", "expert_labels",
                "expert_annotations", "flags", "model_version", "workflow_version"]


def catalog_layout(*, workflow: Workflow, model_version: ModelVersion | None) -> CatalogLayout:
    tree = workflow.decision_tree
    return CatalogLayout(workflow=workflow, model_version=model_version, questions=[
        (q.key, [a.column for a in q.answers]) for q in tree.questions])


def catalog_chunks(*, layout: CatalogLayout, chunk_size: int | None = None,
                   until_id: int | None = None) -> Iterator[pd.DataFrame]:
    """The catalogue as DataFrames of at most ``chunk_size`` galaxies, in id order (up to
    ``until_id``, so galaxies imported during an export do not change its row count)."""
    chunk_size = chunk_size or settings.EXPORT_CHUNK_SIZE
    workflow, version = layout.workflow, layout.model_version
    columns = [a for _, answers in layout.questions for a in answers]
    prediction_index = ({c: i for i, c in enumerate(version.answer_columns)} if version else {})
    last = 0
    while True:
        window = Galaxy.objects.filter(id__gt=last, **({"id__lte": until_id} if until_id is not None else {}))
        galaxies = list(window.order_by("id")
                        .values_list("id", "id_str", "ra", "dec", "survey")[:chunk_size])
        if not galaxies:
            return
        first, last = galaxies[0][0], galaxies[-1][0]
        in_chunk = {"galaxy_id__gte": first, "galaxy_id__lte": last}
        statuses = {gid: rest for gid, *rest in SubjectStatus.objects.filter(workflow=workflow, **in_chunk)
                    .values_list("galaxy_id", "vote_counts", "retired_at", "retirement_reason")}
        predictions = ({gid: rest for gid, *rest in Prediction.objects.filter(model_version=version, **in_chunk)
                        .values_list("galaxy_id", "fractions", "lower", "upper", "acquisition")} if version else {})
        overrides: dict[int, str] = {}
        for gid, reason in (RetirementOverride.objects.filter(workflow=workflow, **in_chunk)
                            .order_by("galaxy_id", "-created_at", "-id").values_list("galaxy_id", "reason")):
            overrides.setdefault(gid, reason)
        labels: dict[int, list] = {}
        for gid, answers in (ExpertClassification.objects.filter(workflow=workflow, **in_chunk)
                                 .order_by("galaxy_id", "-updated_at", "-id").values_list("galaxy_id", "annotations")):
            labels.setdefault(gid, []).append(answers)
        open_flags: dict[int, list[str]] = {}
        for gid, kind in (Flag.objects.filter(resolved_at__isnull=True, **in_chunk).order_by("galaxy_id", "kind")
                          .values_list("galaxy_id", "kind").distinct()):
            open_flags.setdefault(gid, []).append(kind)

        ids = [g[0] for g in galaxies]
        frame = {"id_str": [g[1] for g in galaxies], "ra": np.array([g[2] for g in galaxies]),
                 "dec": np.array([g[3] for g in galaxies]), "survey": [g[4] for g in galaxies]}
        tree = workflow.decision_tree
        counts = np.stack([tree.counts_vector((statuses.get(gid, ({},))[0]) or {}) for gid in ids]).astype(np.int64)
        start = 0
        fractions_by_column = {}
        for question, answers in layout.questions:
            block = counts[:, start:start + len(answers)]
            total = block.sum(axis=1)
            for j, answer in enumerate(answers):
                frame[answer] = block[:, j]
                with np.errstate(invalid="ignore", divide="ignore"):
                    fractions_by_column[answer] = np.where(total > 0, block[:, j] / np.maximum(total, 1), np.nan)
            frame[f"{question}_total-votes"] = total
            start += len(answers)
        for answer in columns:
            frame[f"{answer}_vote-fraction"] = fractions_by_column[answer]
        # (fraction, lower, upper) × galaxy × model column, NaN where the model has no prediction.
        predicted = np.full((3, len(ids), len(prediction_index)), np.nan)
        bald = np.full(len(ids), np.nan)
        for row, gid in enumerate(ids):
            if gid in predictions:
                fractions, lower, upper, acquisition = predictions[gid]
                predicted[:, row] = (fractions, lower, upper)
                bald[row] = acquisition
        missing = np.full(len(ids), np.nan)
        for answer in columns:
            i = prediction_index.get(answer)
            for k, name in enumerate(("fraction", "lower", "upper")):
                frame[f"{answer}_{name}"] = predicted[k, :, i] if i is not None else missing
        frame["bald"] = bald
        frame["retired"] = np.array([bool(statuses.get(gid) and statuses[gid][1]) for gid in ids])
        frame["retirement_reason"] = [statuses[gid][2] if gid in statuses and statuses[gid][1] else "" for gid in ids]
        frame["override_reason"] = [overrides.get(gid, "") for gid in ids]
        frame["expert_labels"] = np.array([len(labels.get(gid, [])) for gid in ids], dtype=np.int64)
        frame["expert_annotations"] = [";".join(f"{a['question']}={a['answer']}" for a in labels[gid][0])
                                       if gid in labels else "" for gid in ids]
        frame["flags"] = [";".join(open_flags.get(gid, [])) for gid in ids]
        frame["model_version"] = np.full(len(ids), version.number if version else 0, dtype=np.int64)
        frame["workflow_version"] = np.full(len(ids), workflow.version, dtype=np.int64)
        yield pd.DataFrame(frame, columns=layout.columns)


def escape_formula(value: str) -> str:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP's advice)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


class CsvWriter:
    def __init__(self, handle: IO[str], layout: CatalogLayout):
        self.writer = csv.writer(handle)
        self.writer.writerow(layout.columns)
        self.text = [i for i, c in enumerate(layout.columns) if c in TEXT_WIDTHS]

    def write(self, frame: pd.DataFrame) -> None:
        rows = frame.astype(object).where(frame.notna(), "").values.tolist()
        for row in rows:
            for i in self.text:
                row[i] = escape_formula(row[i])
        self.writer.writerows(rows)

    def close(self) -> None:
        pass


class ParquetWriter:
    def __init__(self, path: Path, layout: CatalogLayout):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.writer = None
        self.path, self.layout = path, layout
        self.pq = pq

    def write(self, frame: pd.DataFrame) -> None:
        table = self.pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            meta = {b"workflow": self.layout.workflow.slug.encode(),
                    b"workflow_version": str(self.layout.workflow.version).encode(),
                    b"model_version": str(self.layout.model_version.number if self.layout.model_version else 0).encode()}
            self.schema = table.schema.with_metadata({**(table.schema.metadata or {}), **meta})
            self.writer = self.pq.ParquetWriter(str(self.path), self.schema)
        self.writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class FitsWriter:
    """A binary-table FITS file written chunk by chunk: the header (built by astropy.table,
    with units and the versions) declares the final row count, then each chunk's rows go out
    as big-endian records and the data is padded to FITS's 2880-byte blocks."""

    BLOCK = 2880

    def __init__(self, handle: IO[bytes], layout: CatalogLayout, n_rows: int):
        from astropy.io import fits

        self.handle, self.layout, self.n_rows, self.written = handle, layout, n_rows, 0
        self.handle.write(fits.PrimaryHDU().header.tostring().encode("ascii"))
        self.header_written = False
        self.fits = fits

    def _table(self, frame: pd.DataFrame):
        import astropy.units as u
        from astropy.table import Table

        table = Table()
        for column in self.layout.columns:
            values = frame[column].to_numpy()
            if column in TEXT_WIDTHS:
                values = np.array([str(v).encode("utf-8")[:TEXT_WIDTHS[column]] for v in values],
                                  dtype=f"S{TEXT_WIDTHS[column]}")
            table[column] = values
        table["ra"].unit = table["dec"].unit = u.deg
        table.meta.update({"WORKFLOW": self.layout.workflow.slug, "WFVER": self.layout.workflow.version,
                           "MODELVER": self.layout.model_version.number if self.layout.model_version else 0})
        return table

    def write(self, frame: pd.DataFrame) -> None:
        table = self._table(frame)
        hdu = self.fits.table_to_hdu(table)
        if not self.header_written:
            header = hdu.header.copy()
            header["NAXIS2"] = self.n_rows
            header["EXTNAME"] = "CATALOG"
            header.comments["MODELVER"] = "model version number the predictions come from"
            header.comments["WFVER"] = "workflow (decision tree) version"
            raw = hdu.data.view(np.ndarray).dtype
            self.dtype = np.dtype([(name, raw.fields[name][0].newbyteorder(">")) for name in raw.names])
            self.handle.write(header.tostring().encode("ascii"))
            self.header_written = True
        # The raw records: FITS encodings (logicals as 'T'/'F') in native byte order.
        records = hdu.data.view(np.ndarray)
        self.handle.write(records.astype(self.dtype, copy=False).tobytes())
        self.written += len(frame)

    def close(self) -> None:
        if self.written != self.n_rows:
            raise RuntimeError(f"FITS header promised {self.n_rows} rows, {self.written} were written")
        size = self.handle.tell()
        self.handle.write(b"\0" * (-size % self.BLOCK))


def export_catalog(*, workflow: Workflow, fmt: str, out: Path, model_version: ModelVersion | None = None,
                   chunk_size: int | None = None, progress=None) -> int:
    """Write the catalogue of every galaxy to ``out``; returns the number of rows. The file
    appears only once complete (written beside it, then renamed)."""
    if fmt not in FORMATS:
        raise InvalidQuery(f"format must be one of {', '.join(FORMATS)}", field="format")
    if model_version is None:
        model_version = ModelVersion.objects.filter(workflow=workflow, is_active=True).first()
    layout = catalog_layout(workflow=workflow, model_version=model_version)
    until_id = Galaxy.objects.order_by("-id").values_list("id", flat=True).first()
    if until_id is None:
        raise InvalidQuery("there are no galaxies to export", field="workflow")
    partial = out.with_name(out.name + ".partial")
    rows = 0
    try:
        if fmt == "csv":
            handle = partial.open("w", newline="", encoding="utf-8")
            writer = CsvWriter(handle, layout)
        elif fmt == "fits":
            handle = partial.open("wb")
            writer = FitsWriter(handle, layout, n_rows=Galaxy.objects.filter(id__lte=until_id).count())
        else:
            handle = None
            writer = ParquetWriter(partial, layout)
        try:
            for frame in catalog_chunks(layout=layout, chunk_size=chunk_size, until_id=until_id):
                writer.write(frame)
                rows += len(frame)
                if progress:
                    progress(rows)
            writer.close()
        finally:
            if handle is not None:
                handle.close()
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return rows
