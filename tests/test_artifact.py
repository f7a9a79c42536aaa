"""Saved versions: round trip across processes, refusal of anything tampered with, atomic saves, the card."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import platform
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.metrics import brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

import model.registry.store as artifact
from model import ModelIntegrityError, load_model
from model.core.metrics import fingerprint
from model.registry.store import (
    activate_version,
    active_version,
    default_model_dir,
    list_versions,
    load_holdout,
    save_version,
)
from model.training.data import generate_applicants, split_target
from model.training.train import train, train_builtin
from model.training.workflows import copy_with_threshold, ensure_model

from .conftest import EXAMPLE, ROOT
from .test_data import user_applicants


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """Gradient boosting on a shared, busy machine: one OpenMP thread is many times faster than two."""
    with threadpool_limits(1, user_api="openmp"):
        yield


def _version_dir(registry: Path) -> Path:
    return registry / "versions" / active_version(registry)


def _card(registry: Path) -> dict:
    return json.loads((_version_dir(registry) / "model_card.json").read_text())


def _write_card(registry: Path, card: dict) -> None:
    (_version_dir(registry) / "model_card.json").write_text(json.dumps(card, indent=2))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small():
    """A second, different trained model (small and quick), to save as a new version."""
    return train_builtin(rows=800, seed=3, model="gbm")


@pytest.fixture(scope="module")
def other_version(small, tmp_path_factory) -> Path:
    """The small model in its own registry: a valid pipeline file to swap in."""
    registry = tmp_path_factory.mktemp("other") / "model"
    save_version(registry, small.pipeline, small.card, small.holdout)
    return registry


@pytest.fixture
def unpickled(monkeypatch) -> list:
    """Records every attempt to unpickle a pipeline (it still happens, so a wrong load shows up)."""
    calls: list = []
    real = artifact.unpickling.loads

    def spy(data, *args, **kwargs):
        calls.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(artifact.unpickling, "loads", spy)
    return calls


# --- round trip ------------------------------------------------------------------------------
ROUND_TRIP = """
import sys
import numpy as np
from model import load_model
from model.training.data import generate_applicants

model = load_model(sys.argv[1])
applicants = generate_applicants(300, seed=99).drop(columns="approved")
np.save(sys.argv[2], model.predict_proba(applicants)[:, 1])
print(model.version, model.sha256)
"""


def test_round_trip_across_processes_gives_identical_probabilities(model, trained, tmp_path):
    out = tmp_path / "probabilities.npy"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(trained), str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [model.version, model.sha256]
    theirs = np.load(out)
    ours = model.predict_proba(generate_applicants(300, seed=99).drop(columns="approved"))[:, 1]
    assert theirs.shape == (300,) and 0 < theirs.mean() < 1
    np.testing.assert_array_equal(theirs, ours)


def test_a_version_folder_loads_as_well_as_its_registry(model, trained):
    again = load_model(trained / "versions" / model.version)
    assert (again.version, again.sha256) == (model.version, model.sha256)
    np.testing.assert_array_equal(again.predict_proba(EXAMPLE), model.predict_proba(EXAMPLE))


# --- tampering: refused before anything is unpickled -----------------------------------------
def _alter(folder: Path) -> None:
    path = folder / "pipeline.joblib"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(folder: Path) -> None:
    path = folder / "pipeline.joblib"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(folder: Path) -> None:
    (folder / "pipeline.joblib").write_bytes(b"")


def _delete(folder: Path) -> None:
    (folder / "pipeline.joblib").unlink()


@pytest.mark.parametrize("tamper", [_alter, _truncate, _empty, _delete], ids=["altered", "truncated", "empty",
                                                                              "deleted"])
def test_damaged_pipeline_file_is_refused_unread(registry, unpickled, tamper):
    tamper(_version_dir(registry))
    with pytest.raises(ModelIntegrityError, match=r"pipeline\.joblib"):
        load_model(registry)
    assert unpickled == []


def test_pipeline_swapped_for_another_valid_one_is_refused(registry, other_version, unpickled):
    swapped = other_version / "versions" / active_version(other_version) / "pipeline.joblib"
    assert _sha256(swapped) != _card(registry)["pipeline_sha256"]
    (_version_dir(registry) / "pipeline.joblib").write_bytes(swapped.read_bytes())
    with pytest.raises(ModelIntegrityError, match="does not match its model card"):
        load_model(registry)
    assert unpickled == []
    load_model(other_version)  # the swapped-in file itself is a fine model where it belongs


class _CreatesFile:
    """Unpickling this object opens (creates) a file: a stand-in for arbitrary code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_crafted_pickle_never_runs(registry, tmp_path, unpickled):
    # The payload works: loaded directly, it does create its file.
    control = tmp_path / "control-was-created"
    (tmp_path / "control.joblib").write_bytes(pickle.dumps(_CreatesFile(control)))
    joblib.load(tmp_path / "control.joblib").close()
    assert control.exists()
    unpickled.clear()

    marker = tmp_path / "payload-was-run"
    (_version_dir(registry) / "pipeline.joblib").write_bytes(pickle.dumps(_CreatesFile(marker)))
    with pytest.raises(ModelIntegrityError):
        load_model(registry)
    assert not marker.exists()
    assert unpickled == []


def test_a_crafted_pickle_whose_card_was_rewritten_to_match_is_refused_by_the_allow_list(registry, tmp_path):
    import hashlib

    from model.core.errors import UnsafePickleError

    marker = tmp_path / "payload-was-run"
    data = pickle.dumps(_CreatesFile(marker))
    (_version_dir(registry) / "pipeline.joblib").write_bytes(data)
    card = _card(registry)
    card["files"]["pipeline.joblib"] = card["pipeline_sha256"] = hashlib.sha256(data).hexdigest()
    _write_card(registry, card)  # the checksum now matches: only the allow-list stands in the way
    with pytest.raises(UnsafePickleError, match="both were replaced") as info:
        load_model(registry)
    assert info.value.refused == [("io", "open")]
    assert not marker.exists()


def test_pipeline_swapped_after_its_check_never_runs(registry, tmp_path, monkeypatch):
    """The bytes unpickled are the bytes checked, not whatever the file holds a moment later."""
    marker = tmp_path / "payload-was-run"
    real_verify = artifact.verify

    def verify_then_swap(folder, card, **kwargs):
        real_verify(folder, card, **kwargs)
        (folder / "pipeline.joblib").write_bytes(pickle.dumps(_CreatesFile(marker)))

    monkeypatch.setattr(artifact, "verify", verify_then_swap)
    with contextlib.suppress(ModelIntegrityError):  # refusing or loading the checked bytes: both safe
        load_model(registry)
    assert not marker.exists()


def _drop_key(key):
    def change(card):
        del card[key]
    return change


def _set(key, value):
    def change(card):
        card[key] = value
    return change


def _wrong_file_checksum(card):
    card["files"]["pipeline.joblib"] = hashlib.sha256(b"something else").hexdigest()


def _wrong_pipeline_checksum(card):
    card["pipeline_sha256"] = hashlib.sha256(b"something else").hexdigest()


def _both_checksums_wrong(card):
    _wrong_file_checksum(card)
    card["pipeline_sha256"] = card["files"]["pipeline.joblib"]


def _escaping_file_name(card):
    card["files"]["../../ACTIVE"] = "0" * 64


@pytest.mark.parametrize("change", [
    pytest.param(_drop_key("files"), id="no-files"),
    pytest.param(_drop_key("libraries"), id="no-libraries"),
    pytest.param(_drop_key("schema"), id="no-schema"),
    pytest.param(_drop_key("threshold"), id="no-threshold"),
    pytest.param(_drop_key("pipeline_sha256"), id="no-pipeline-sha256"),
    pytest.param(_drop_key("card_format"), id="no-card-format"),
    pytest.param(_set("card_format", 99), id="unknown-card-format"),
    pytest.param(_set("files", {}), id="files-empty"),
    pytest.param(_set("files", ["pipeline.joblib"]), id="files-not-an-object"),
    pytest.param(_set("libraries", ["scikit-learn"]), id="libraries-not-an-object"),
    pytest.param(_set("threshold", "high"), id="threshold-text"),
    pytest.param(_set("threshold", 1.5), id="threshold-above-one"),
    pytest.param(_set("schema", {"fields": [{"nme": "age"}]}), id="schema-malformed"),
    pytest.param(_set("schema", "age,income"), id="schema-not-an-object"),
    pytest.param(_wrong_file_checksum, id="file-checksum-wrong"),
    pytest.param(_wrong_pipeline_checksum, id="pipeline-sha256-wrong"),
    pytest.param(_both_checksums_wrong, id="both-checksums-wrong"),
    pytest.param(_escaping_file_name, id="file-outside-the-version"),
])
def test_card_lacking_or_contradicting_is_refused_unread(registry, unpickled, change):
    card = _card(registry)
    change(card)
    _write_card(registry, card)
    with pytest.raises(ModelIntegrityError, match=r"model_card\.json|pipeline\.joblib"):
        load_model(registry)
    assert unpickled == []


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2, 3]", b"\xff\xfe\x00{", b'{"card_format": 1'],
                         ids=["empty", "not-json", "not-an-object", "not-utf8", "cut-short"])
def test_malformed_card_is_refused_unread(registry, unpickled, content):
    (_version_dir(registry) / "model_card.json").write_bytes(content)
    with pytest.raises(ModelIntegrityError, match="model card"):
        load_model(registry)
    assert unpickled == []


def test_missing_card_is_refused_unread(registry, unpickled):
    folder = _version_dir(registry)
    (folder / "model_card.json").unlink()
    for path in (registry, folder):
        with pytest.raises(ModelIntegrityError):
            load_model(path)
    assert unpickled == []


def test_missing_model_says_how_to_make_one(tmp_path):
    with pytest.raises(ModelIntegrityError, match=r"train\.py"):
        load_model(tmp_path / "nothing-here")


def test_tampered_holdout_is_refused(registry):
    loaded = load_model(registry)
    path = _version_dir(registry) / "holdout.parquet"
    holdout = pd.read_parquet(path)
    holdout.loc[0, "label"] = 1 - holdout.loc[0, "label"]
    holdout.to_parquet(path, index=False)
    with pytest.raises(ModelIntegrityError, match=r"holdout\.parquet"):
        load_model(registry)
    with pytest.raises(ModelIntegrityError, match=r"holdout\.parquet"):
        load_holdout(loaded)  # a model loaded before the change refuses the changed file too


# --- library versions ------------------------------------------------------------------------
def test_other_scikit_learn_version_is_refused_naming_both(registry, model, unpickled):
    card = _card(registry)
    card["libraries"]["scikit-learn"] = "1.0.2"
    _write_card(registry, card)  # the card is not checksummed: the pipeline check still passes
    with pytest.raises(ModelIntegrityError) as info:
        load_model(registry)
    assert "1.0.2" in str(info.value) and sklearn.__version__ in str(info.value)
    assert "allow_version_mismatch" in str(info.value)
    assert unpickled == []

    loaded = load_model(registry, allow_version_mismatch=True)
    assert loaded.card["libraries"]["scikit-learn"] == "1.0.2"
    np.testing.assert_array_equal(loaded.predict_proba(EXAMPLE), model.predict_proba(EXAMPLE))


def test_pickle_that_scikit_learn_flags_as_another_version_is_refused(registry, monkeypatch):
    real = artifact.unpickling.loads

    def warning_load(data, *args, **kwargs):
        warnings.warn(InconsistentVersionWarning(estimator_name="Pipeline", current_sklearn_version=sklearn.__version__,
                                                 original_sklearn_version="1.0.2"), stacklevel=1)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(artifact.unpickling, "loads", warning_load)
    with pytest.raises(ModelIntegrityError, match=r"1\.0\.2"):
        load_model(registry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InconsistentVersionWarning)
        assert load_model(registry, allow_version_mismatch=True).version == active_version(registry)


# --- atomic saves ----------------------------------------------------------------------------
def _state(registry: Path):
    return active_version(registry), [v.version for v in list_versions(registry)], sorted(
        p.name for p in (registry / "versions").iterdir())


def _assert_untouched(registry: Path, before, model) -> None:
    assert _state(registry) == before
    loaded = load_model(registry)
    assert loaded.version == before[0]
    np.testing.assert_array_equal(loaded.predict_proba(EXAMPLE), model.predict_proba(EXAMPLE))


def test_crash_while_writing_the_pipeline_keeps_the_previous_version(registry, model, monkeypatch, small):
    before = _state(registry)

    def dump_half(obj, path, *args, **kwargs):
        Path(path).write_bytes(pickle.dumps(obj)[:1000])
        raise OSError("No space left on device")

    monkeypatch.setattr(artifact.joblib, "dump", dump_half)
    with pytest.raises(OSError, match="No space"):
        save_version(registry, small.pipeline, small.card, small.holdout)
    _assert_untouched(registry, before, model)


def test_crash_before_the_rename_keeps_the_previous_version(registry, model, monkeypatch, small):
    before = _state(registry)

    def rename_fails(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(artifact.os, "rename", rename_fails)
    with pytest.raises(OSError, match="power cut"):
        save_version(registry, small.pipeline, small.card, small.holdout)
    monkeypatch.undo()
    _assert_untouched(registry, before, model)


KILLED_MID_SAVE = """
import os, sys
from pathlib import Path
import pandas as pd
import model.registry.store as artifact

def dump_and_die(obj, path, *args, **kwargs):
    Path(path).write_bytes(b"half a pickle")
    os._exit(9)

artifact.joblib.dump = dump_and_die
artifact.save_version(sys.argv[1], object(), {}, pd.DataFrame())
"""


def test_process_killed_mid_save_leaves_nothing_listed_and_the_next_save_cleans_up(registry, model, small):
    before = _state(registry)
    done = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(registry)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 9, done.stderr
    leftovers = [p for p in (registry / "versions").iterdir() if p.name not in before[2]]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".")  # hidden, never a version
    assert active_version(registry) == before[0]
    assert [v.version for v in list_versions(registry)] == before[1]
    assert load_model(registry).version == before[0]

    # A later save removes what a crash left long ago (here: an hour and a half).
    old = leftovers[0].stat().st_mtime - 5400
    os.utime(leftovers[0], (old, old))
    version = save_version(registry, small.pipeline, small.card, small.holdout)
    assert not leftovers[0].exists()
    assert active_version(registry) == version and load_model(registry).version == version


def test_crash_while_activating_keeps_the_previous_version_active(registry, model, monkeypatch, small):
    before = _state(registry)

    def replace_fails(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(artifact.os, "replace", replace_fails)
    with pytest.raises(OSError):
        save_version(registry, small.pipeline, small.card, small.holdout)
    monkeypatch.undo()
    assert active_version(registry) == before[0]
    assert load_model(registry).version == before[0]
    assert not [p for p in registry.iterdir() if p.name.startswith(".ACTIVE")]
    # The new version was complete before activation was attempted: it loads when asked for.
    [new] = [v.version for v in list_versions(registry) if v.version not in before[1]]
    assert load_model(registry, version=new).sha256 == _sha256(registry / "versions" / new / "pipeline.joblib")


# --- versions --------------------------------------------------------------------------------
def test_new_versions_become_active_and_old_ones_can_be_restored(registry, model, small):
    first = active_version(registry)
    second = save_version(registry, small.pipeline, small.card, small.holdout)
    assert active_version(registry) == second != first
    listed = {v.version: v for v in list_versions(registry)}
    assert set(listed) == {first, second}
    assert listed[second].active and not listed[first].active
    assert listed[second].model_kind == "gbm"
    created = [v.created_at for v in list_versions(registry)]
    assert created == sorted(created, reverse=True)  # newest first
    activate_version(registry, first)
    assert load_model(registry).version == first
    assert load_model(registry, version=second).version == second
    with pytest.raises(ModelIntegrityError, match=first):
        activate_version(registry, "19990101-000000-deadbeef")
    assert active_version(registry) == first


def test_save_without_activating(registry, small):
    first = active_version(registry)
    second = save_version(registry, small.pipeline, small.card, small.holdout, activate=False)
    assert active_version(registry) == first
    assert second in [v.version for v in list_versions(registry)]


def test_copy_with_threshold_saves_a_new_version_and_leaves_the_old(registry, model):
    first = active_version(registry)
    copy = copy_with_threshold(registry, first, 0.7, activate=True)
    new = load_model(registry)
    assert new.version == copy != first and new.threshold == 0.7
    assert new.card["parent"] == first
    applicants = generate_applicants(200, seed=8).drop(columns="approved")
    p = model.predict_proba(applicants)[:, 1]
    np.testing.assert_array_equal(new.predict_proba(applicants)[:, 1], p)
    np.testing.assert_array_equal(new.predict(applicants), (p >= 0.7).astype(int))
    assert load_model(registry, version=first).threshold == model.threshold
    for bad in (0, 1, 1.2, -0.1):
        with pytest.raises(ValueError):
            copy_with_threshold(registry, first, bad)


def test_ensure_model_trains_only_when_there_is_none(tmp_path, monkeypatch, small):
    trainings = []
    monkeypatch.setattr("model.training.workflows.train_builtin", lambda *a, **k: trainings.append(1) or small)
    registry = tmp_path / "fresh"
    first = ensure_model(registry)
    assert active_version(registry) == first.version and trainings == [1]
    assert ensure_model(registry).version == first.version and trainings == [1]


def test_default_model_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(tmp_path / "elsewhere"))
    assert default_model_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("LOANDESK_MODEL_DIR")
    assert default_model_dir() == ROOT / "artifacts" / "loan_approval_model"  # beside the project, from any folder


# --- the model card --------------------------------------------------------------------------
def test_model_card_holds_what_requirement_5_lists(model, trained):
    card = model.card
    folder = trained / "versions" / model.version
    # schema: ordered names, types, ranges, units, labels, required
    fields = card["schema"]["fields"]
    assert [f["name"] for f in fields] == list(generate_applicants(5, 1).columns[:-1])
    data = generate_applicants(5000, seed=42)
    for f in fields:
        assert f["kind"] == "number" and f["label"] and f["unit"] and f["required"] is True
        assert data[f["name"]].min() <= f["train_min"] <= f["train_max"] <= data[f["name"]].max()
    # target, positive label, threshold
    assert (card["target"], card["positive_label"], card["threshold"]) == ("approved", "1", 0.5)
    # hold-out metrics, Brier included, matching the stored hold-out
    holdout = load_holdout(model)
    assert card["metrics"]["brier"] == pytest.approx(brier_score_loss(holdout["label"], holdout["probability"]))
    assert card["metrics"]["auc"] == pytest.approx(roc_auc_score(holdout["label"], holdout["probability"]))
    assert card["metrics"]["n_test"] == len(holdout) == round(0.2 * 5000)
    # library versions
    assert card["libraries"] == {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                                 "numpy": np.__version__, "pandas": pd.__version__, "joblib": joblib.__version__}
    # data fingerprint and creation time
    assert len(card["data"]["fingerprint"]) == 64 and int(card["data"]["fingerprint"], 16) >= 0
    created = datetime.fromisoformat(card["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert model.version.startswith(created.astimezone(UTC).strftime("%Y%m%d-%H%M%S"))
    # SHA-256 of the files, computed here independently
    assert card["pipeline_sha256"] == _sha256(folder / "pipeline.joblib") == model.sha256
    assert card["files"]["holdout.parquet"] == _sha256(folder / "holdout.parquet")
    assert model.version.endswith(card["pipeline_sha256"][:8])


def test_model_card_of_a_csv_model_lists_categories(tmp_path):
    frame = user_applicants(300, seed=4)
    features, y, positive = split_target(frame, "decision", "yes")
    result = train(features, y, target="decision", positive_label=positive, model="logistic", source="mine.csv")
    version = save_version(tmp_path / "m", result.pipeline, result.card, result.holdout)
    card = json.loads((tmp_path / "m" / "versions" / version / "model_card.json").read_text())
    fields = {f["name"]: f for f in card["schema"]["fields"]}
    assert list(fields) == list(features.columns)
    assert fields["region"]["kind"] == "category"
    assert fields["region"]["categories"] == sorted(frame["region"].dropna().unique())
    assert fields["pay"]["kind"] == "number" and fields["pay"]["train_max"] == frame["pay"].max()
    assert (card["target"], card["positive_label"]) == ("decision", "yes")
    assert card["data"]["source"] == "mine.csv" and card["data"]["rows"] == len(frame)


def test_data_fingerprint_follows_the_data():
    frame = user_applicants(200, seed=6)
    assert fingerprint(frame) == fingerprint(frame.copy())
    changed = frame.copy()
    changed.loc[17, "pay"] += 100
    assert fingerprint(changed) != fingerprint(frame)
    assert fingerprint(frame.iloc[::-1]) != fingerprint(frame)
    assert fingerprint(frame.rename(columns={"pay": "salary"})) != fingerprint(frame)
