"""Model versions: listing, a new threshold as a new version, and rollback reaching the Decide page."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from streamlit.testing.v1 import AppTest

from model import evaluation
from model.core.formatting import percent
from model.records.log import DecisionLog
from model.registry.store import (
    ModelIntegrityError,
    activate_version,
    active_version,
    list_versions,
    load_holdout,
    load_model,
    save_version,
)
from model.training.train import train_builtin
from model.training.workflows import copy_with_threshold
from train import main as train_cli

from .conftest import APP, EXAMPLE


def _second_version(registry: Path, activate: bool = True) -> str:
    """Another, different model: the built-in data drawn with another seed."""
    trained = train_builtin(seed=7, model="logistic")
    return save_version(registry, trained.pipeline, trained.card, trained.holdout, activate=activate)


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in a version folder with its SHA-256 and modification time."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def test_versions_are_listed_newest_first_with_the_active_one_marked(registry):
    older = active_version(registry)
    newer = _second_version(registry)
    frame = evaluation.versions_frame(registry)
    assert list(frame["version"]) == [newer, older]
    assert list(frame["active"]) == [True, False]
    for row in frame.itertuples():
        holdout = load_holdout(load_model(registry, version=row.version))
        assert row.auc == pytest.approx(roc_auc_score(holdout["label"], holdout["probability"]))
    activate_version(registry, older)
    assert list(evaluation.versions_frame(registry)["active"]) == [False, True]


def test_a_new_threshold_is_a_new_version_and_the_old_one_is_untouched(registry):
    old = active_version(registry)
    before = _files(registry / "versions" / old)
    new = copy_with_threshold(registry, old, 0.62, activate=True)
    assert new != old and active_version(registry) == new
    assert _files(registry / "versions" / old) == before
    reloaded_old, reloaded_new = load_model(registry, version=old), load_model(registry)
    assert reloaded_old.threshold == 0.5 and reloaded_new.threshold == 0.62
    holdout = load_holdout(reloaded_old)
    features = reloaded_old.validate(holdout[reloaded_old.schema.names]).clean
    # Same fitted pipeline, only the threshold differs.
    assert (reloaded_new.approval_probability(features) == reloaded_old.approval_probability(features)).all()
    assert (load_holdout(reloaded_new) == holdout).all().all()
    assert reloaded_new.card["parent"] == old
    frame = evaluation.versions_frame(registry).set_index("version")
    assert frame.loc[new, "parent"] == old and frame.loc[new, "threshold"] == 0.62


def test_the_command_line_rolls_back(registry, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LOANDESK_DB_URL", f"sqlite:///{tmp_path / 'decisions.db'}")
    older = active_version(registry)
    newer = _second_version(registry)
    assert train_cli(["--activate", older, "--out", str(registry)]) == 0
    assert active_version(registry) == older
    assert load_model(registry).version == older
    assert train_cli(["--activate", newer, "--out", str(registry)]) == 0
    assert load_model(registry).version == newer


def test_an_unknown_version_is_refused_and_the_active_one_stays(registry):
    active = active_version(registry)
    with pytest.raises(ModelIntegrityError, match="'nope' is not a version name"):
        activate_version(registry, "nope")
    assert active_version(registry) == active


def test_rollback_makes_the_decide_page_use_the_older_version(app, app_env):
    older = load_model(app_env)
    newer = load_model(app_env, version=_second_version(app_env))
    p_old, p_new = older.predict_proba(EXAMPLE)[0, 1], newer.predict_proba(EXAMPLE)[0, 1]
    assert percent(p_old) != percent(p_new), "the two versions must tell apart on the example"

    at = app.run()
    assert not at.exception
    assert newer.sha256[:8] in at.sidebar.markdown[0].value

    activate_version(app_env, older.version)  # the rollback; the running app is not restarted
    at.run()  # the same session's next rerun
    assert not at.exception
    at.button(key=next(b.key for b in at.button if b.label == "Decide")).click().run()
    assert not at.exception
    assert any(f"**{percent(p_old)}**" in m.value for m in at.markdown)
    logged = DecisionLog(os.environ["LOANDESK_DB_URL"]).read()
    assert list(logged["model_version"]) == [older.version]
    assert logged["probability"].iloc[0] == pytest.approx(p_old, abs=1e-12)

    # AppTest drops the sidebar on reruns of an st.navigation app, so a new session checks it.
    fresh = AppTest.from_file(str(APP), default_timeout=120).run()
    sidebar = fresh.sidebar.markdown[0]
    assert older.sha256[:8] in sidebar.value and older.version in sidebar.help


def test_a_threshold_copy_is_the_same_pipeline_with_metrics_for_its_own_threshold(registry):
    from model.registry.store import load_holdout, load_model

    parent = load_model(registry)
    copy = load_model(registry, version=copy_with_threshold(registry, parent.version, 0.7))
    assert copy.sha256 == parent.sha256  # byte for byte the same pipeline
    holdout = load_holdout(parent)
    approved = holdout["probability"] >= 0.7
    assert copy.card["metrics"]["approval_rate"] == pytest.approx(approved.mean())
    assert copy.card["metrics"]["bad_rate_among_approved"] == pytest.approx((holdout["label"][approved] == 0).mean())
    assert copy.card["metrics"]["auc"] == pytest.approx(parent.card["metrics"]["auc"])


@pytest.mark.parametrize("name", ["../../elsewhere", "/tmp/model", "..", "20261125-103327-ba9fe5bc/../../x",
                                  "20261125-103327-BA9FE5BC"])
def test_a_version_is_a_name_never_a_path(registry, name):
    with pytest.raises(ModelIntegrityError, match="not a version name"):
        activate_version(registry, name)
    with pytest.raises(ModelIntegrityError, match="not a version name"):
        load_model(registry, version=name)


def test_an_active_file_pointing_outside_the_registry_is_refused(registry, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(registry / "versions" / active_version(registry), outside)
    (registry / "ACTIVE").write_text(str(outside) + "\n")
    with pytest.raises(ModelIntegrityError, match="does not hold a version name"):
        load_model(registry)
    (registry / "ACTIVE").write_text("../../outside\n")
    with pytest.raises(ModelIntegrityError, match="does not hold a version name"):
        load_model(registry)


def test_a_version_folder_that_is_a_link_elsewhere_is_not_used(registry, tmp_path):
    version = active_version(registry)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(registry / "versions" / version, elsewhere)
    (registry / "versions" / version).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ModelIntegrityError, match="is a link"):
        load_model(registry)
    assert version not in [v.version for v in list_versions(registry)]


def test_the_hold_out_is_read_once_and_parsed_from_the_bytes_that_were_hashed(registry, monkeypatch):
    """A hold-out swapped between the hash and the read can no longer slip through."""
    model = load_model(registry)
    path = model.path / "holdout.parquet"
    genuine = path.read_bytes()
    forged = load_holdout(model).assign(probability=lambda f: f["label"].astype(float))  # AUC 1.0
    opened = []
    real_read_bytes = Path.read_bytes

    def read_then_swap(self):
        data = real_read_bytes(self)
        if self == path:
            opened.append(self)
            forged.to_parquet(path, index=False)  # the swap, right after the read
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_swap)
    holdout = load_holdout(model)
    assert len(opened) == 1
    assert holdout.equals(pd.read_parquet(io.BytesIO(genuine)))
    monkeypatch.undo()
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_holdout(model)
