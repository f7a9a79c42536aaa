"""Importing a saved pipeline under the fair-lending rules: prohibited bases, the column spec, fairness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from model.core.errors import PipelineImportError
from model.evaluation import fairness
from model.registry.store import load_model, save_version
from model.training.data import generate_applicants
from model.training.importing import prepare
from model.training.spec import ColumnSpec

from .conftest import ROOT

FIVE = ["age", "income", "credit_score", "loan_amount", "employment_years"]


@pytest.fixture(scope="module")
def labelled() -> pd.DataFrame:
    frame = generate_applicants(1500, seed=11)
    rng = np.random.default_rng(11)
    frame["race"] = rng.choice(["black", "white", "asian"], len(frame))
    frame["gender"] = rng.choice(["female", "male"], len(frame))
    return frame


def _dump(tmp_path: Path, frame: pd.DataFrame, columns: list[str]) -> Path:
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    numbers = [c for c in columns if c not in text]
    pre = ColumnTransformer([("n", StandardScaler(), numbers), *([("t", OneHotEncoder(), text)] if text else [])])
    pipeline = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(frame[columns], frame["approved"])
    path = tmp_path / "mine.pkl"
    joblib.dump(pipeline, path)
    return path


def test_a_pipeline_that_reads_a_prohibited_basis_is_refused_naming_it_and_the_rule(labelled, tmp_path):
    path = _dump(tmp_path, labelled, [*FIVE, "race"])
    with pytest.raises(PipelineImportError) as info:
        prepare(path, labelled, "approved")
    message = str(info.value)
    assert 'race (race): its name contains "race"' in message
    assert "--allow race --justification" in message and "cannot leave out a column it was fitted on" in message


def test_with_allow_and_a_justification_it_is_imported_and_recorded(labelled, tmp_path):
    path = _dump(tmp_path, labelled, [*FIVE, "race"])
    done = prepare(path, labelled, "approved", allowed={"race": "a disparate-impact study approved by counsel"})
    used = {c["name"]: c for c in done.card["protected"]["columns"]}
    assert used["race"]["used"] and used["race"]["justification"] == "a disparate-impact study approved by counsel"
    assert not used["gender"]["used"]  # in the data, not read by the pipeline: kept aside
    schema_race = next(f for f in done.card["schema"]["fields"] if f["name"] == "race")
    assert schema_race["protected"] and schema_race["basis"] == "race"


def test_protected_columns_the_pipeline_does_not_read_are_kept_beside_the_hold_out_for_fairness(labelled, tmp_path):
    path = _dump(tmp_path, labelled, FIVE)
    done = prepare(path, labelled, "approved")
    assert {"race", "gender"} <= set(done.holdout.columns)
    assert {c["name"]: c["status"] for c in done.card["protected"]["columns"]}["gender"] == "left out of the model"
    assert done.card["label_meaning"].startswith("approved means approved = 1")
    version = save_version(tmp_path / "models", done.pipeline, done.card, done.holdout)
    model = load_model(tmp_path / "models", version=version)
    assert "race" not in model.schema.names and "gender" not in model.schema.names
    report = {f.column for f in fairness(model, n_boot=20)}
    assert {"race", "gender"} <= report


def test_the_spec_labels_the_fields_and_its_directions_are_checked(labelled, tmp_path):
    path = _dump(tmp_path, labelled, FIVE)
    spec = ColumnSpec({"loan_amount": {"label": "Amount asked for", "unit": "$", "description": "Principal."},
                       "employment_years": {"monotone": 1}})
    done = prepare(path, labelled, "approved", spec=spec)
    field = next(f for f in done.card["schema"]["fields"] if f["name"] == "loan_amount")
    assert (field["label"], field["help"]) == ("Amount asked for", "Principal.")
    with pytest.raises(PipelineImportError, match="loan_amount: the spec says approval must never fall"):
        prepare(path, labelled, "approved", spec=ColumnSpec({"loan_amount": {"monotone": 1}}))


def test_train_py_imports_with_allow_and_reports_the_protected_columns(labelled, tmp_path):
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    _dump(tmp_path, labelled, [*FIVE, "race"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, str(ROOT / "train.py"), "--import", "mine.pkl", "--data", "labelled.csv", "--out", "out"]
    done = subprocess.run(base, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--allow race" in done.stderr
    done = subprocess.run([*base, "--allow", "race", "--justification", "court-ordered remediation study"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Protected columns (ECOA / Regulation B):" in done.stdout
    assert "court-ordered remediation study" in done.stdout
    assert "gender (sex)" in done.stdout and "kept beside the hold-out" in done.stdout
