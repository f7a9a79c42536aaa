"""`python outcomes.py import FILE.csv` as a subprocess: recorded rows, refused rows named, exit status."""

from __future__ import annotations

import os
import subprocess
import sys

from model.records import access
from model.records.log import DecisionLog, LogEntry, new_decision_ids
from model.records.outcomes import history

from .conftest import ROOT


def _run(*args: str, db: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "outcomes.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "LOANDESK_DB_URL": db}, cwd=ROOT, timeout=120)


def test_import_records_outcomes_reports_refused_rows_and_corrections(tmp_path):
    db = f"sqlite:///{tmp_path / 'decisions.db'}"
    log = DecisionLog(db)
    ids = new_decision_ids(3)
    assert log.record([LogEntry(model_name="m", model_version="v", model_sha256="0" * 64, source="api",
                                inputs={}, probability=0.8, threshold=0.5, decision=1, decision_id=i)
                       for i in ids]).ok
    first = tmp_path / "march.csv"
    first.write_text(f"decision_id,outcome,observed_at\n{ids[0]},good,\n{ids[1]},bad,2026-12-01\n"
                     f"{'f' * 32},good,\n{ids[2]},perhaps,\n")
    done = _run("import", str(first), "--by", "ada@bank.example", db=db)
    assert done.returncode == 1
    assert "Recorded 2 of 4 outcome(s); refused 2 row(s)." in done.stdout
    assert f"row 3, decision_id = '{'f' * 32}': no decision with this id is on record" in done.stdout
    assert "row 4, outcome = 'perhaps': not an outcome: write good or bad (or 1 for good, 0 for bad)" in done.stdout

    later = tmp_path / "april.csv"
    later.write_text(f"decision_id,outcome\n{ids[0]},bad\n{ids[1]},0\n{ids[2]},1\n")
    done = _run("import", str(later), db=db)
    assert "Recorded 2 of 3 outcome(s); 1 of them correction(s) of an earlier outcome; refused 1 row(s)." in done.stdout
    assert "row 2, outcome = 'bad': already on record as bad for this decision (refused as a duplicate)" in done.stdout
    rows = history(log, ids[0])
    assert [(r["outcome"], r["is_current"], r["source"]) for r in rows] == [
        (1, False, "file:march.csv"), (0, True, "file:april.csv")]
    me = access.shell().label  # the OS user who ran the command, as train.py --activate records it
    assert rows[0]["recorded_by"] == f"{me} for ada@bank.example" and rows[1]["recorded_by"] == me
    log.dispose()

    clean = tmp_path / "clean.csv"
    clean.write_text(f"decision_id,outcome\n{ids[2]},bad\n")
    assert _run("import", str(clean), "--dry-run", db=db).returncode == 0
    assert history(DecisionLog(db), ids[2])[-1]["outcome"] == 1  # a dry run records nothing


def test_a_missing_file_is_one_clear_line(tmp_path):
    done = _run("import", str(tmp_path / "nope.csv"), db=f"sqlite:///{tmp_path / 'd.db'}")
    assert done.returncode == 1 and done.stderr.strip() == f"outcomes.py: {tmp_path / 'nope.csv'}: no such file"
    assert _run(db=f"sqlite:///{tmp_path / 'd.db'}").returncode == 2


def test_a_by_name_that_cannot_be_recorded_is_refused_and_nothing_is_recorded(tmp_path):
    db = f"sqlite:///{tmp_path / 'd.db'}"
    log = DecisionLog(db)
    [i] = new_decision_ids(1)
    assert log.record([LogEntry(model_name="m", model_version="v", model_sha256="0" * 64, source="api",
                                inputs={}, probability=0.8, threshold=0.5, decision=1, decision_id=i)]).ok
    f = tmp_path / "o.csv"
    f.write_text(f"decision_id,outcome\n{i},good\n")
    done = _run("import", str(f), "--by", "Chief Credit Officer\x07", db=db)
    assert done.returncode == 2 and "--by: The name holds a control or invisible character" in done.stderr
    done = _run("import", str(f), "--by", "x" * 81, db=db)
    assert done.returncode == 2 and "81 characters long; at most 80" in done.stderr
    assert history(log, i) == []
    log.dispose()
