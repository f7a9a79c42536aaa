"""Batch scoring (model/batch.py): every input row out in order, bad rows reported, nothing else stopped."""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from model.batch.files import OUTPUT_COLUMNS, BatchError, read_results, score_file, select_rows
from model.records.log import DecisionLog
from model.scoring.reasons import reason_text
from model.training.data import generate_applicants

FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]


def applicants(n: int = 200, seed: int = 5) -> pd.DataFrame:
    return generate_applicants(n, seed=seed)[FEATURES]


def write(path: Path, frame: pd.DataFrame, sep: str = ",", bom: bool = False, quoting: int = csv.QUOTE_MINIMAL) -> Path:
    text = frame.to_csv(index=False, sep=sep, quoting=quoting)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def raw_rows(path: Path) -> list[list[str]]:
    """The output exactly as a spreadsheet would get it, cell by cell, as text."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)


def expected_probabilities(model, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(frame)[:, 1]


def test_a_good_file_is_scored_row_by_row_in_input_order(model, tmp_path):
    frame = applicants(300)
    summary = score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    out = read_output(tmp_path / "out.csv")
    assert list(out.columns) == FEATURES + list(OUTPUT_COLUMNS)
    assert len(out) == len(frame) == summary.rows == summary.scored
    p = out["probability"].astype(float).to_numpy()
    np.testing.assert_allclose(p, expected_probabilities(model, frame), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out["decision"].astype(int), model.predict(frame))
    assert summary.approved == int(model.predict(frame).sum())
    assert summary.rejected == len(frame) - summary.approved
    assert summary.errors == 0 and out["error"].isna().all()
    # The input's cells come back as they were written, in order.
    assert [row[:5] for row in raw_rows(tmp_path / "out.csv")[1:]] == frame.astype(str).values.tolist()


def test_reasons_match_the_single_applicant_decision(model, tmp_path):
    frame = applicants(40, seed=11)
    score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    out = read_output(tmp_path / "out.csv")
    reference = model.card["reference"]
    for i in range(len(frame)):
        decision = model.decide(frame.iloc[i].to_dict())
        expected = "; ".join(reason_text(model.schema[r.field], decision.applicant[r.field], reference[r.field],
                                         with_value=False) for r in decision.reasons)
        assert (out["reasons"][i] if isinstance(out["reasons"][i], str) else "") == expected
        assert int(out["decision"][i]) == decision.decision


def test_out_of_range_names_the_fields_outside_the_training_range(model, tmp_path):
    frame = applicants(5)
    income = model.schema["income"]
    frame.loc[2, "income"] = int(income.train_max * 3)
    score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    out = read_output(tmp_path / "out.csv")
    assert out["out_of_range"][2] == "income"
    assert out["out_of_range"].drop(index=2).fillna("").eq("").all()


def test_shuffled_columns_give_the_same_decisions(model, tmp_path):
    frame = applicants(100)
    shuffled = frame[["loan_amount", "employment_years", "age", "credit_score", "income"]]
    score_file(model, write(tmp_path / "a.csv", frame), tmp_path / "a.out.csv")
    score_file(model, write(tmp_path / "b.csv", shuffled), tmp_path / "b.out.csv")
    a, b = read_output(tmp_path / "a.out.csv"), read_output(tmp_path / "b.out.csv")
    assert list(b.columns[:5]) == list(shuffled.columns)
    same = [c for c in OUTPUT_COLUMNS if c != "decision_id"]  # every decision has an id of its own
    pd.testing.assert_frame_equal(a[same], b[same])
    assert not set(a["decision_id"]) & set(b["decision_id"])


def test_extra_columns_are_carried_through_untouched_in_input_order(model, tmp_path):
    frame = applicants(4)
    frame.insert(0, "application_id", ["007", "A-2", "1.50", "Zoë, \"the\" applicant"])
    frame["note"] = ["", "multi\nline", "  spaced  ", "ünïcode ✓"]
    summary = score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    rows = raw_rows(tmp_path / "out.csv")
    assert rows[0] == ["application_id", *FEATURES, "note", *OUTPUT_COLUMNS]
    assert [r[0] for r in rows[1:]] == ["007", "A-2", "1.50", "Zoë, \"the\" applicant"]
    assert [r[6] for r in rows[1:]] == ["", "multi\nline", "  spaced  ", "ünïcode ✓"]
    assert summary.scored == 4


def test_a_missing_column_is_named_and_nothing_is_written(model, tmp_path):
    frame = applicants(10).drop(columns=["credit_score", "loan_amount"])
    with pytest.raises(BatchError) as caught:
        score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    assert "credit_score" in str(caught.value) and "loan_amount" in str(caught.value)
    assert "income" not in caught.value.reason.split("(")[0]  # only the missing ones are named as missing
    assert not (tmp_path / "out.csv").exists()


def test_bad_rows_are_reported_by_row_number_and_the_rest_is_scored(model, tmp_path):
    frame = applicants(50).astype(object)
    frame.loc[1, "income"] = "lots"  # row 2
    frame.loc[6, "age"] = 150  # row 7
    frame.loc[6, "credit_score"] = 900
    frame.loc[39, "credit_score"] = ""  # row 40: required
    summary = score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    out = read_output(tmp_path / "out.csv")
    bad = [1, 6, 39]
    assert (summary.rows, summary.scored, summary.errors) == (50, 47, 3)
    assert out["error"].notna().to_numpy().nonzero()[0].tolist() == bad
    assert out.loc[bad, ["probability", "decision", "reasons"]].isna().all().all()
    assert out["error"][1] == "income = 'lots': is not a number"
    assert "age = 150" in out["error"][6] and "credit_score = 900" in out["error"][6]
    assert out["error"][39] == "credit_score is required"
    assert [p.split(":")[0] for p in summary.problems] == ["row 2", "row 7", "row 40"]
    good = frame.drop(index=bad).astype(float)
    np.testing.assert_allclose(out.drop(index=bad)["probability"].astype(float),
                               expected_probabilities(model, good), rtol=0, atol=1e-12)


def test_a_row_with_the_wrong_number_of_fields_stops_the_run_naming_its_row_and_line(model, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("age,income,credit_score,loan_amount,employment_years\n"
                    "35,62000,720,18000,6\n"
                    "36,1,2\n"
                    "40,70000,700,20000,8\n")
    with pytest.raises(BatchError) as caught:
        score_file(model, path, tmp_path / "out.csv")
    assert caught.value.reason.startswith("row 2 (line 3): 3 field(s) where the header has 5")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("content, why", [
    (b"", "empty"),
    (b"\n\n", "empty"),
    (b"age,income,credit_score,loan_amount,employment_years\n", "header but no rows"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV"),
    (b"Dear officer,\nplease find the applicants attached.\n", "not a CSV of applicants"),
    (b"age,income,credit_score,loan_amount,employment_years\n35,\xe9,1,2,3\n", "not UTF-8"),
], ids=["empty", "blank lines", "header only", "binary", "prose", "latin-1"])
def test_files_that_cannot_be_scored_raise_one_clear_error(model, tmp_path, content, why):
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    with pytest.raises(BatchError, match=why):
        score_file(model, path, tmp_path / "out.csv")
    assert not list(tmp_path.glob("*out.csv*"))  # no output, not even a partial one


def test_a_missing_file_raises_a_batch_error(model, tmp_path):
    with pytest.raises(BatchError, match="no such file"):
        score_file(model, tmp_path / "nope.csv", tmp_path / "out.csv")


def test_bom_and_semicolons_read_like_a_plain_comma_file(model, tmp_path):
    frame = applicants(60)
    plain = score_file(model, write(tmp_path / "plain.csv", frame), tmp_path / "plain.out.csv")
    assert plain.scored == 60
    expected = read_output(tmp_path / "plain.out.csv").drop(columns="decision_id")
    for name, sep, bom in [("bom", ",", True), ("semicolon", ";", False), ("both", ";", True)]:
        summary = score_file(model, write(tmp_path / f"{name}.csv", frame, sep=sep, bom=bom),
                             tmp_path / f"{name}.out.csv")
        assert summary.scored == 60, name
        pd.testing.assert_frame_equal(read_output(tmp_path / f"{name}.out.csv").drop(columns="decision_id"), expected)


def test_formula_cells_are_neutralized_and_numbers_stay_numbers(model, tmp_path):
    frame = applicants(9).astype(object)
    frame["note"] = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tx", "\rx",
                     "-5", "+1.5e3", "-62,000"]
    frame.loc[0, "income"] = "=1+2"
    frame.loc[1, "income"] = "-5"
    path = write(tmp_path / "in.csv", frame, quoting=csv.QUOTE_ALL)  # a bare carriage return would end the line
    summary = score_file(model, path, tmp_path / "out.csv")
    rows = raw_rows(tmp_path / "out.csv")[1:]
    notes = [r[5] for r in rows]
    assert notes[:6] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx"]
    assert notes[6:] == ["-5", "+1.5e3", "-62,000"]
    assert rows[0][1] == "'=1+2" and rows[1][1] == "-5"
    assert summary.errors == 2  # both bad incomes are reported, not run
    # No cell a spreadsheet would run is left anywhere in the file.
    formula = tuple("=+-@\t\r")
    numeric = pd.to_numeric(pd.Series([c.replace(",", "") for r in rows for c in r]), errors="coerce").notna()
    cells = [c for r in rows for c in r]
    assert not [c for c, n in zip(cells, numeric, strict=True) if c.startswith(formula) and not n]


def test_parquet_output_holds_the_same_results(model, tmp_path):
    frame = applicants(80).astype(object)
    frame.loc[3, "age"] = "young"
    source = write(tmp_path / "in.csv", frame)
    score_file(model, source, tmp_path / "out.csv")
    summary = score_file(model, source, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column_names == FEATURES + list(OUTPUT_COLUMNS)
    assert str(table.schema.field("probability").type) == "double"
    parquet, csv_out = table.to_pandas(), read_output(tmp_path / "out.csv")
    np.testing.assert_allclose(parquet["probability"].to_numpy(dtype=float),
                               csv_out["probability"].astype(float).to_numpy(), rtol=0, atol=1e-15)
    assert parquet["age"].tolist() == frame["age"].astype(str).tolist()
    assert parquet["error"].notna().sum() == summary.errors == 1


def test_every_scored_row_is_recorded_with_its_source_and_officer(model, tmp_path):
    frame = applicants(30).astype(object)
    frame.loc[4, "income"] = "?"
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    summary = score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv",
                         log=log, source="batch page", officer="Ada", block_size=256)
    assert summary.logged == summary.scored == 29 and summary.log_warning is None
    logged = log.read()
    assert set(logged["source"]) == {"batch page"} and set(logged["officer"]) == {"Ada"}
    out = read_output(tmp_path / "out.csv").drop(index=4)
    by_income = logged.assign(income=[i["income"] for i in logged["inputs"]]).sort_values("income")
    np.testing.assert_allclose(np.sort(by_income["probability"].to_numpy()),
                               np.sort(out["probability"].astype(float).to_numpy()), rtol=0, atol=1e-12)


def test_a_log_that_cannot_be_written_leaves_the_output_complete_and_the_run_in_an_unsent_file(model, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    log = DecisionLog(f"sqlite:///{blocker / 'log.db'}")
    frame = applicants(20)
    summary = score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv", log=log)
    assert summary.scored == 20 and summary.logged == 0 and summary.batch_id is None
    assert summary.unsent is not None and summary.unsent.is_file()
    assert str(summary.unsent) in summary.log_warning and "none of them is on record" in summary.log_warning
    assert len(read_output(tmp_path / "out.csv")) == 20


def test_progress_is_reported_chunk_by_chunk_up_to_the_whole_file(model, tmp_path):
    frame = applicants(2000)
    seen = []
    score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv", progress=seen.append,
               block_size=8 << 10)
    assert len(seen) > 3
    assert [p.rows for p in seen] == sorted(p.rows for p in seen) and seen[-1].rows == 2000
    assert all(0 < p.fraction <= 1 for p in seen) and seen[-1].fraction == 1


def test_the_output_never_overwrites_the_input(model, tmp_path):
    path = write(tmp_path / "in.csv", applicants(5))
    before = path.read_bytes()
    with pytest.raises(BatchError, match="overwrite"):
        score_file(model, path, path)
    assert path.read_bytes() == before


def test_results_are_read_back_and_filtered_by_decision_and_errors(model, tmp_path):
    frame = applicants(120).astype(object)
    frame.loc[[3, 50], "income"] = "x"
    summary = score_file(model, write(tmp_path / "in.csv", frame), tmp_path / "out.csv")
    table = read_results(tmp_path / "out.csv")
    approved, n = select_rows(table, "Approved")
    assert n == summary.approved and set(approved["decision"]) == {1}
    rejected, n = select_rows(table, "Rejected", limit=5)
    assert n == summary.rejected and len(rejected) == 5 and set(rejected["decision"]) == {0}
    errors, n = select_rows(table, "Rows with errors")
    assert n == 2 and errors.index.tolist() == [4, 51]  # row numbers: 1 = the first row under the header


def _peak_bytes(model, path: Path, out: Path) -> int:
    tracemalloc.start()
    try:
        score_file(model, path, out, block_size=64 << 10)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_100k_row_file_is_scored_in_bounded_memory(model, tmp_path):
    big = generate_applicants(100_000, seed=9)[FEATURES]
    small_path = write(tmp_path / "small.csv", big.head(10_000))
    big_path = write(tmp_path / "big.csv", big)
    _peak_bytes(model, small_path, tmp_path / "warm.csv")  # first-call caches out of the way
    small = _peak_bytes(model, small_path, tmp_path / "small.out.csv")
    large = _peak_bytes(model, big_path, tmp_path / "big.out.csv")
    # All at once, the same work would hold every row's reasons and probabilities together.
    tracemalloc.start()
    frame = pd.read_csv(big_path)
    clean = model.validate(frame).clean
    model.approval_probability(clean)
    everything = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(read_output(tmp_path / "big.out.csv")) == 100_000
    assert large < 2 * small, (large, small)  # ten times the rows, not ten times the memory
    assert large < everything / 2, (large, everything)

