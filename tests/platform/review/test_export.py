"""Catalogue export: the same values come back from CSV (pandas), FITS (astropy) and Parquet
(pandas/pyarrow); spreadsheet formulas are escaped; chunks do not change the result."""

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from django.core.management import call_command
from django.core.management.base import CommandError

from review.export import catalog_chunks, catalog_layout, escape_formula

from .conftest import BAR_STRONG, WORKFLOW

pytestmark = pytest.mark.django_db


def expected_frame(workflow) -> pd.DataFrame:
    from retraining.models import ModelVersion

    layout = catalog_layout(workflow=workflow, model_version=ModelVersion.objects.get(workflow=workflow, is_active=True))
    return pd.concat(list(catalog_chunks(layout=layout, chunk_size=1000)), ignore_index=True)


def test_chunked_rows_are_the_same_as_one_chunk(catalogue, workflow):
    from retraining.models import ModelVersion

    layout = catalog_layout(workflow=workflow, model_version=ModelVersion.objects.get(workflow=workflow))
    small = pd.concat(list(catalog_chunks(layout=layout, chunk_size=5)), ignore_index=True)
    pd.testing.assert_frame_equal(small, expected_frame(workflow))


def test_catalogue_values(catalogue, workflow):
    frame = expected_frame(workflow).set_index("id_str")
    row = frame.loc["JREVIEW00"]
    assert row["smooth-or-featured_smooth"] == 3 and row["smooth-or-featured_total-votes"] == 3
    assert row["smooth-or-featured_smooth_vote-fraction"] == 1.0
    assert np.isnan(frame.loc["JREVIEW05", "smooth-or-featured_smooth_vote-fraction"])
    assert frame.loc["JREVIEW05", f"{BAR_STRONG}_fraction"] == pytest.approx(0.5)
    assert frame.loc["JREVIEW05", f"{BAR_STRONG}_upper"] - frame.loc["JREVIEW05", f"{BAR_STRONG}_lower"] == \
        pytest.approx(0.4)
    assert frame.loc["JREVIEW05", "bald"] == pytest.approx(0.05)
    assert frame.loc["JREVIEW01", "expert_labels"] == 1
    assert frame.loc["JREVIEW01", "expert_annotations"] == "smooth-or-featured=smooth;how-rounded=round;merging=none"
    assert frame.loc["JREVIEW02", "flags"] == "artifact;interesting"
    assert bool(frame.loc["JREVIEW03", "retired"]) and frame.loc["JREVIEW03", "retirement_reason"] == "admin"
    assert frame.loc["JREVIEW03", "override_reason"].startswith("=cmd")
    assert np.isnan(frame.loc["JNOPRED", "bald"]) and np.isnan(frame.loc["JNOPRED", f"{BAR_STRONG}_fraction"])
    assert set(frame["model_version"]) == {1} and set(frame["workflow_version"]) == {workflow.version}


def test_escape_formula():
    assert escape_formula("=1+1") == "'=1+1"
    assert escape_formula("-2") == "'-2"
    assert escape_formula("@x") == "'@x" and escape_formula("+x") == "'+x"
    assert escape_formula("J1234-05") == "J1234-05"


def _compare(read: pd.DataFrame, expected: pd.DataFrame, *, text_escaped: bool = False) -> None:
    assert list(read.columns) == list(expected.columns)
    for column in expected.columns:
        got, want = read[column], expected[column]
        if pd.api.types.is_string_dtype(want) or want.dtype == object:
            want = want.map(escape_formula) if text_escaped else want
            assert got.fillna("").astype(str).tolist() == want.tolist(), column
        elif want.dtype == bool:
            assert got.astype(bool).tolist() == want.tolist(), column
        else:
            np.testing.assert_allclose(got.to_numpy(dtype=float), want.to_numpy(dtype=float), equal_nan=True,
                                       rtol=1e-12, err_msg=column)


def test_csv_round_trip_and_formula_escaping(catalogue, workflow, tmp_path):
    out = tmp_path / "catalogue.csv"
    call_command("export_catalog", WORKFLOW, "--format", "csv", "--out", str(out), "--chunk-size", "4")
    read = pd.read_csv(out, keep_default_na=False, na_values=[""],
                       dtype={c: str for c in ("id_str", "survey", "retirement_reason", "override_reason",
                                               "expert_annotations", "flags")})
    expected = expected_frame(workflow)
    _compare(read, expected, text_escaped=True)
    assert read.set_index("id_str").loc["JNOPRED", "survey"] == "'@SUM(A1)"
    assert not (tmp_path / "catalogue.csv.partial").exists()


def test_fits_round_trip_with_units_and_versions(catalogue, workflow, tmp_path):
    out = tmp_path / "catalogue.fits"
    call_command("export_catalog", WORKFLOW, "--format", "fits", "--out", str(out), "--chunk-size", "5")
    table = Table.read(out, hdu="CATALOG")
    assert str(table["ra"].unit) == "deg" and str(table["dec"].unit) == "deg"
    assert table.meta["MODELVER"] == 1 and table.meta["WFVER"] == workflow.version
    assert table.meta["WORKFLOW"] == WORKFLOW
    frame = table.to_pandas()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: v.decode() if isinstance(v, bytes) else v).astype(str)
    _compare(frame, expected_frame(workflow))
    from astropy.io import fits

    with fits.open(out, checksum=False) as hdus:
        hdus.verify("exception")


def test_parquet_round_trip(catalogue, workflow, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "catalogue.parquet"
    call_command("export_catalog", WORKFLOW, "--format", "parquet", "--out", str(out), "--chunk-size", "3")
    assert pq.ParquetFile(out).metadata.num_row_groups == 5
    assert pq.read_schema(out).metadata[b"model_version"] == b"1"
    _compare(pd.read_parquet(out), expected_frame(workflow))


def test_export_errors_name_the_problem(catalogue, tmp_path):
    with pytest.raises(CommandError, match="no workflow 'nope'"):
        call_command("export_catalog", "nope", "--format", "csv", "--out", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError, match="no such directory"):
        call_command("export_catalog", WORKFLOW, "--format", "csv", "--out", str(tmp_path / "missing" / "x.csv"))
    with pytest.raises(CommandError, match="no model version 7"):
        call_command("export_catalog", WORKFLOW, "--format", "csv", "--model-version", "7",
                     "--out", str(tmp_path / "x.csv"))

