"""The layout holds: model/'s layers, no UI import in the core, and artifacts saved before the move."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from model import load_model

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    return str(found) if found.exists() else shutil.which(name) or name


def test_the_import_contracts_in_pyproject_hold():
    done = subprocess.run([_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_a_model_saved_before_the_layers_loads_and_predicts_the_same(tmp_path):
    """Pickles name functions by import path (model.pipeline.blanks_to_nan): the old paths must keep working."""
    registry = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "legacy_model", registry)
    expected = pd.read_csv(FIXTURES / "legacy_expected.csv")
    loaded = load_model(registry)
    assert loaded.schema.categories, "the fixture has a text column"
    rows = expected.drop(columns="expected_probability")
    got = loaded.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(got, expected["expected_probability"].to_numpy(), rtol=0, atol=1e-12)


def test_the_type_checker_passes_on_the_core_and_the_api():
    done = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
