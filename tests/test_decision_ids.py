"""Every decision has an id, whichever face made it, and the log keeps the same id."""

from __future__ import annotations

import re

import pandas as pd

from model.batch.files import score_file
from model.monitoring.report import log_simulated_sample
from model.records.log import DecisionLog, decision_id_array, new_decision_ids
from model.training.data import generate_applicants

HEX_ID = re.compile(r"[0-9a-f]{32}")
FEATURES = ["age", "income", "credit_score", "loan_amount", "employment_years"]


def test_batch_ids_are_unique_and_the_logs_ids(model, tmp_path):
    frame = generate_applicants(120, seed=3)[FEATURES].astype(object)
    frame.loc[7, "income"] = "lots"
    frame.to_csv(tmp_path / "in.csv", index=False)
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    score_file(model, tmp_path / "in.csv", tmp_path / "out.csv", log=log, block_size=2_000)  # several chunks
    out = pd.read_csv(tmp_path / "out.csv", dtype={"decision_id": str})
    assert pd.isna(out.loc[7, "decision_id"])  # not decided: no id
    ids = out["decision_id"].drop(index=7)
    assert ids.is_unique and all(HEX_ID.fullmatch(i) for i in ids)
    logged = log.read().set_index("decision_id")
    assert set(logged.index) == set(ids)
    for i in (0, 50, 119):
        assert float(logged.loc[out.loc[i, "decision_id"], "probability"]) == float(out.loc[i, "probability"])
        assert logged.loc[out.loc[i, "decision_id"], "reason_codes"] == out.loc[i, "reason_codes"]


def test_the_simulated_sample_gets_ids_too(model, tmp_path):
    log = DecisionLog(f"sqlite:///{tmp_path / 'log.db'}")
    assert log_simulated_sample(model, log, n=50).ok
    ids = log.read()["decision_id"]
    assert len(ids) == 50 and ids.is_unique and all(HEX_ID.fullmatch(i) for i in ids)


def test_the_arrow_ids_are_the_same_kind_as_the_list_ids():
    [a, b] = [decision_id_array(70_000).to_pylist(), new_decision_ids(70_000)]
    assert len(set(a)) == 70_000 and all(HEX_ID.fullmatch(i) for i in a[::997])
    assert a[-1].endswith(f"{69_999:08x}") and b[-1].endswith(f"{69_999:08x}")
    assert a[0][:16] <= b[0][:16]  # time first: later ids sort after earlier ones
