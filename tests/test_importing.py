"""Importing a pipeline fitted and saved elsewhere (the lesson's joblib.dump), then serving it everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from fastapi.testclient import TestClient

from api import create_app
from model.core.errors import PipelineImportError, UnsafePickleError
from model.core.schema import Schema
from model.evaluation.report import feature_effects, report
from model.registry.store import activate_version, list_versions, load_model, save_version
from model.training.data import generate_applicants
from model.training.importing import prepare
from model.training.train import train_builtin
from model.training.workflows import copy_with_threshold

from .conftest import EXAMPLE, ROOT

FIVE = ["age", "income", "credit_score", "loan_amount", "employment_years"]
# The lesson's way: a DataFrame of the five fields, a scaler and a classifier in one pipeline, joblib.dump.
LESSON = textwrap.dedent("""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv("labelled.csv")
    X = df[["age", "income", "credit_score", "loan_amount", "employment_years"]]
    y = df["approved"]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    pipeline = Pipeline([("scaler", StandardScaler()), ("classifier", LogisticRegression())])
    pipeline.fit(X_train, y_train)
    joblib.dump(pipeline, "loan_approval_model.pkl")
""")


def run_script(code: str, cwd: Path, *paths: Path) -> None:
    """A student's script, in its own process and folder (nothing of LoanDesk imported)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr


def train_py(cwd: Path, *args: str, paths: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (ROOT, *paths)))}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def lesson(tmp_path_factory) -> Path:
    """A folder with labelled.csv and loan_approval_model.pkl saved the lesson's way, in another process."""
    folder = tmp_path_factory.mktemp("lesson")
    generate_applicants(3000, seed=7).to_csv(folder / "labelled.csv", index=False)
    run_script(LESSON, folder)
    return folder


@pytest.fixture(scope="module")
def imported(lesson) -> tuple[Path, subprocess.CompletedProcess]:
    """The lesson's file imported with train.py, into a new model folder."""
    done = train_py(lesson, "--import", "loan_approval_model.pkl", "--data", "labelled.csv", "--target", "approved",
                    "--out", "artifacts/my_pipeline")
    assert done.returncode == 0, done.stderr
    return lesson / "artifacts" / "my_pipeline", done


@pytest.fixture(scope="module")
def original(lesson):
    return joblib.load(lesson / "loan_approval_model.pkl")  # our own file, made by the test


@pytest.fixture(scope="module")
def applicants() -> pd.DataFrame:
    return generate_applicants(400, seed=99).drop(columns="approved")


# --- the lesson's pipeline, end to end ------------------------------------------------------------
def test_the_import_is_recorded_in_the_change_history_with_the_os_user(imported):
    from model.records import access
    from model.records.log import DecisionLog
    from model.registry.store import active_version
    from model.training.changes import model_changes

    folder, _ = imported  # train.py ran with the session's throwaway LOANDESK_DB_URL (conftest)
    history = model_changes(DecisionLog(), folder).history()
    row = history.iloc[0]
    assert (row["action"], row["actor"], row["to_version"]) == ("activated", access.shell().label,
                                                                  active_version(folder))
    assert "imported loan_approval_model.pkl with train.py --import" in row["note"]


def test_the_import_reports_what_it_understood_and_checked(imported):
    _, done = imported
    out = done.stdout
    assert "Approved means approved = 1" in out and "of 3,000 labelled rows" in out
    assert "rises with age" in out and "falls with loan amount" in out
    assert "Age: never counts against an older applicant (checked)" in out
    assert "may overlap the rows the pipeline was trained on" in out
    assert "Saved version" in out and "(active)" in out


def test_load_model_gives_the_original_predict_proba(imported, original, applicants):
    folder, _ = imported
    model = load_model(folder)
    np.testing.assert_allclose(model.predict_proba(applicants)[:, 1], original.predict_proba(applicants)[:, 1],
                               rtol=0, atol=1e-9)
    shuffled = applicants[list(reversed(FIVE))]  # by name, in any order
    np.testing.assert_allclose(model.predict_proba(shuffled)[:, 1], original.predict_proba(applicants)[:, 1],
                               rtol=0, atol=1e-9)
    card = model.card
    assert card["imported"]["file"] == "loan_approval_model.pkl"
    assert card["imported"]["made_with_sklearn"] == sklearn.__version__
    assert card["imported"]["version_mismatch_allowed"] is False
    assert card["model_kind"] == "imported" and card["positive_label"] == "1"
    assert card["directions"]["fields"]["age"]["direction"] == "rises"
    assert card["directions"]["fields"]["loan_amount"]["direction"] == "falls"
    assert model.schema.names == FIVE and model.schema["age"].protected


def test_decide_gives_reasons_curves_and_flip_points_through_the_general_path(imported, original):
    model = load_model(imported[0])
    assert not model.compiled  # not LoanDesk's pipeline shape: scored by scikit-learn
    rejected = {**EXAMPLE, "credit_score": 560, "loan_amount": 40_000}
    decision = model.decide(rejected, curve_field="income")
    assert decision.probability == pytest.approx(original.predict_proba(pd.DataFrame([rejected]))[0, 1], abs=1e-9)
    assert decision.label == "Rejected"
    assert decision.reasons and all(r.field != "age" for r in decision.reasons)
    assert any("Credit score" in r.text for r in decision.reasons)
    assert decision.flips["credit_score"].text.startswith("Approved from a credit score of")
    assert decision.flips["loan_amount"].text.startswith("Largest loan amount approvable")
    assert "age" not in decision.flips  # protected: never a flip sentence
    assert decision.curve is not None and len(decision.curve.values) > 10


def test_score_py_gives_the_original_probabilities(imported, original, applicants, tmp_path):
    folder, _ = imported
    applicants.to_csv(tmp_path / "applicants.csv", index=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOANDESK_DB_URL": f"sqlite:///{tmp_path / 'log.db'}"}
    done = subprocess.run([sys.executable, str(ROOT / "score.py"), str(tmp_path / "applicants.csv"), "--model",
                           str(folder), "-o", str(tmp_path / "out.csv")], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(out["probability"], original.predict_proba(applicants)[:, 1], rtol=0, atol=1e-9)
    assert out["reasons"].notna().any()


def test_the_api_gives_the_original_probabilities(imported, original, applicants, tmp_path):
    folder, _ = imported
    app = create_app(folder, f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "unsent")
    key = app.state.services.keys.create("origination")
    body = applicants.head(50).to_dict(orient="records")
    with TestClient(app) as client:
        answer = client.post("/v1/decisions", json=body, headers={"Authorization": f"Bearer {key}"})
        card = client.get("/v1/model", headers={"Authorization": f"Bearer {key}"}).json()
        schema = client.get("/openapi.json").json()
    assert answer.status_code == 200, answer.text
    got = [r["probability"] for r in answer.json()]
    np.testing.assert_allclose(got, original.predict_proba(applicants.head(50))[:, 1], rtol=0, atol=1e-9)
    assert card["model_kind"] == "imported" and card["imported"]["file"] == "loan_approval_model.pkl"
    assert card["directions"]["fields"]["age"]["direction"] == "rises"  # what was checked, for the caller too
    assert "employment_years" in json.dumps(schema)


def test_the_model_page_numbers_come_from_the_labelled_data(imported):
    model = load_model(imported[0])
    r = report(model)
    labelled = pd.read_csv(imported[0].parent.parent / "labelled.csv")
    assert r.rows == len(labelled)
    effects = feature_effects(model)
    assert effects.method == "permutation"  # no standardized coefficients claimed for someone else's pipeline
    assert set(effects.frame["feature"]) == set(FIVE)


def test_an_imported_version_can_be_rolled_back_and_forward(imported, tmp_path):
    import shutil

    folder = tmp_path / "models"
    shutil.copytree(imported[0], folder)
    first = load_model(folder).version
    trained = train_builtin(rows=1500)
    second = save_version(folder, trained.pipeline, trained.card, trained.holdout)
    assert load_model(folder).version == second
    activate_version(folder, first)
    assert load_model(folder).version == first and load_model(folder).card["model_kind"] == "imported"
    copy = copy_with_threshold(folder, first, 0.6, activate=True)  # the Model page's "Use this threshold"
    again = load_model(folder)
    assert again.version == copy and again.threshold == 0.6 and again.sha256 == load_model(folder, version=first).sha256
    assert again.card["imported"] == load_model(folder, version=first).card["imported"]
    assert {v.version for v in list_versions(folder)} == {first, second, copy}


# --- refusals -------------------------------------------------------------------------------------
def test_a_crafted_pickle_is_refused_and_its_payload_never_runs(lesson, tmp_path):
    marker = tmp_path / "created-by-the-payload"
    code = textwrap.dedent(f"""
        import joblib

        class Payload:
            def __reduce__(self):
                return (open, ({str(marker)!r}, "w"))

        joblib.dump({{"model": Payload()}}, "evil.pkl")
    """)
    run_script(code, tmp_path)
    done = train_py(tmp_path, "--import", "evil.pkl", "--data", str(lesson / "labelled.csv"), "--out", "out")
    assert done.returncode == 2
    assert "io.open" in done.stderr and "was not loaded" in done.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


FEATURES = textwrap.dedent("""
    def add_burden(X):
        X = X.copy()
        X["burden"] = X["loan_amount"] / X["income"]
        return X
""")
WITH_FUNCTION = textwrap.dedent("""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    {source}

    df = pd.read_csv({data!r})
    X = df[["age", "income", "credit_score", "loan_amount", "employment_years"]]
    pipeline = make_pipeline(FunctionTransformer(add_burden), StandardScaler(), LogisticRegression())
    pipeline.fit(X, df["approved"])
    joblib.dump(pipeline, "mine.pkl")
    pipeline.predict_proba(X)[:, 1].tofile("expected.bin")  # what the pipeline says, where it was made
""")


def test_a_function_from_main_is_refused_naming_it_and_accepted_with_trust_module(lesson, tmp_path, monkeypatch):
    run_script(WITH_FUNCTION.format(source=FEATURES, data=str(lesson / "labelled.csv")), tmp_path)
    data = str(lesson / "labelled.csv")
    done = train_py(tmp_path, "--import", "mine.pkl", "--data", data, "--out", "out")
    assert done.returncode == 2
    assert "__main__.add_burden" in done.stderr and "--trust-module __main__=my_features" in done.stderr
    assert not (tmp_path / "out").exists()

    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "loan_features.py").write_text(FEATURES)
    done = train_py(tmp_path, "--import", "mine.pkl", "--data", data, "--out", "out",
                    "--trust-module", "__main__=loan_features", paths=(tmp_path / "features",))
    assert done.returncode == 0, done.stderr
    assert "trusted: __main__=loan_features" in done.stdout
    monkeypatch.syspath_prepend(str(tmp_path / "features"))
    model = load_model(tmp_path / "out")
    assert model.card["imported"]["trusted_modules"] == ["__main__=loan_features"]
    import loan_features

    assert model.pipeline.steps[0][1].func is loan_features.add_burden  # read from the module the user named
    expected = np.fromfile(tmp_path / "expected.bin")
    labelled = pd.read_csv(data)[FIVE]
    np.testing.assert_allclose(model.predict_proba(labelled)[:, 1], expected, rtol=0, atol=1e-9)


def test_trust_module_finds_the_users_module_in_the_current_folder_with_train_py_run_by_its_path(lesson, tmp_path):
    """The hint says to run from the module's folder: `python /path/to/train.py` from there, with no
    PYTHONPATH at all, must find my_features (Python puts only train.py's own folder on sys.path)."""
    run_script(WITH_FUNCTION.format(source=FEATURES, data=str(lesson / "labelled.csv")), tmp_path)
    (tmp_path / "my_features.py").write_text(FEATURES)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--import", "mine.pkl", "--data",
                           str(lesson / "labelled.csv"), "--out", "out", "--trust-module", "__main__=my_features"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"trusted: __main__=my_features (it must be importable wherever the model is served; e.g. " \
           f"PYTHONPATH={tmp_path.resolve()})" in done.stdout
    assert (tmp_path / "out" / "ACTIVE").is_file()


def test_an_import_whose_target_reads_as_a_denial_never_takes_1_or_yes_as_approved_unconfirmed(lesson, tmp_path):
    frame = pd.read_csv(lesson / "labelled.csv").rename(columns={"approved": "deny"})
    frame.to_csv(tmp_path / "deny.csv", index=False)
    (tmp_path / "m.pkl").write_bytes((lesson / "loan_approval_model.pkl").read_bytes())
    args = ("--import", "m.pkl", "--data", "deny.csv", "--target", "deny", "--out", "out")
    done = train_py(tmp_path, *args)  # 0/1 is not inferred for a target named like a bad outcome
    assert done.returncode == 2 and "'deny' reads as a bad outcome, so its class 1 may mean rejected" in done.stderr
    for flag in ("--positive-label", "--approved-value"):
        done = train_py(tmp_path, *args, flag, "1")
        assert done.returncode == 2, done.stdout
        assert "so deny = 1 records that outcome, not approval" in done.stderr
        assert "Use --approved-value 0;" in done.stderr and "--confirm-approved-value" in done.stderr
        assert not (tmp_path / "out").exists()
    done = train_py(tmp_path, *args, "--positive-label", "1", "--confirm-approved-value")
    assert done.returncode == 0, done.stderr
    card = load_model(tmp_path / "out").card.raw
    assert card["label_direction_confirmed"].startswith("'deny' reads as a bad outcome")
    assert "confirmed with --confirm-approved-value" in card["label_meaning"]


def test_a_function_from_the_users_module_needs_trust_module(lesson, tmp_path, monkeypatch):
    (tmp_path / "loan_features2.py").write_text(FEATURES)
    run_script(WITH_FUNCTION.format(source="from loan_features2 import add_burden",
                                    data=str(lesson / "labelled.csv")), tmp_path, tmp_path)
    args = ("--import", "mine.pkl", "--data", str(lesson / "labelled.csv"), "--out", "out")
    done = train_py(tmp_path, *args, paths=(tmp_path,))
    assert done.returncode == 2 and "loan_features2.add_burden" in done.stderr
    assert "--trust-module loan_features2" in done.stderr
    done = train_py(tmp_path, *args, "--trust-module", "loan_features2", paths=(tmp_path,))
    assert done.returncode == 0, done.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    import loan_features2  # noqa: F401  (the version's code, importable as it is served)

    mine = joblib.load(tmp_path / "mine.pkl")
    applicants = generate_applicants(200, seed=3).drop(columns="approved")
    np.testing.assert_allclose(load_model(tmp_path / "out").predict_proba(applicants)[:, 1],
                               mine.predict_proba(applicants)[:, 1], rtol=0, atol=1e-9)


def test_a_pipeline_fitted_on_a_bare_array_is_refused_with_the_feature_order_lesson(lesson, tmp_path):
    run_script(LESSON.replace("pipeline.fit(X_train, y_train)", "pipeline.fit(X_train.to_numpy(), y_train)"),
               _copy_labelled(lesson, tmp_path))
    done = train_py(tmp_path, "--import", "loan_approval_model.pkl", "--data", "labelled.csv", "--out", "out")
    assert done.returncode == 2
    assert "bare array" in done.stderr and "changing feature order" in done.stderr
    assert "DataFrame" in done.stderr


def test_a_pipeline_from_another_scikit_learn_is_refused_naming_both_versions(lesson, tmp_path):
    folder = _copy_labelled(lesson, tmp_path)
    run_script("import sklearn.base\nsklearn.base.__version__ = '1.5.0'\n" + LESSON, folder)
    args = ("--import", "loan_approval_model.pkl", "--data", "labelled.csv", "--out", "out")
    done = train_py(tmp_path, *args)
    assert done.returncode == 2
    assert "1.5.0" in done.stderr and sklearn.__version__ in done.stderr and "--allow-version-mismatch" in done.stderr
    assert not (tmp_path / "out").exists()
    done = train_py(tmp_path, *args, "--allow-version-mismatch")
    assert done.returncode == 0, done.stderr
    card = load_model(tmp_path / "out").card
    assert card["imported"]["made_with_sklearn"] == "1.5.0" and card["imported"]["version_mismatch_allowed"]


AGAINST_AGE = textwrap.dedent("""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = pd.read_csv("labelled.csv").rename(columns={"age": "Age"})
    df["Age"] = 93 - df["Age"]  # older applicants now look like the ones who were refused
    df.to_csv("labelled_age.csv", index=False)
    X = df[["Age", "income", "credit_score", "loan_amount", "employment_years"]]
    joblib.dump(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, df["approved"]), "ageist.pkl")
""")


def test_approval_falling_with_age_is_refused_unless_justified(lesson, tmp_path):
    run_script(AGAINST_AGE, _copy_labelled(lesson, tmp_path))
    args = ("--import", "ageist.pkl", "--data", "labelled_age.csv", "--out", "out")
    done = train_py(tmp_path, *args)
    assert done.returncode == 2
    assert "approval falls as age rises" in done.stderr and "Largest fall: labelled row" in done.stderr
    assert "--allow-age-decline" in done.stderr and not (tmp_path / "out").exists()
    done = train_py(tmp_path, *args, "--allow-age-decline")
    assert done.returncode == 2 and "--justification" in done.stderr
    done = train_py(tmp_path, *args, "--allow-age-decline", "--justification", "a court-approved test case")
    assert done.returncode == 0, done.stderr
    model = load_model(tmp_path / "out")
    allowed = model.card["directions"]["age_decline_allowed"]
    assert allowed == {"fields": ["Age"], "justification": "a court-approved test case"}
    assert model.schema["Age"].protected  # found by its name, whatever its case


def test_which_class_means_approved_is_asked_for_unless_it_is_0_1_or_true_false(lesson, tmp_path, applicants):
    folder = _copy_labelled(lesson, tmp_path)
    code = LESSON.replace('y = df["approved"]', 'y = df["approved"].map({1: "approved", 0: "denied"})')
    run_script(code, folder)
    frame = pd.read_csv(folder / "labelled.csv")
    frame["approved"] = frame["approved"].map({1: "approved", 0: "denied"})
    frame.to_csv(folder / "labelled_words.csv", index=False)
    args = ("--import", "loan_approval_model.pkl", "--data", "labelled_words.csv", "--out", "out")
    done = train_py(tmp_path, *args)
    assert done.returncode == 2 and "--approved-value approved" in done.stderr
    done = train_py(tmp_path, *args, "--positive-label", "approved")
    assert done.returncode == 0, done.stderr
    assert "Approved means approved = approved (the model's class approved, column 0 of predict_proba)" in done.stdout
    original = joblib.load(folder / "loan_approval_model.pkl")
    model = load_model(tmp_path / "out")
    np.testing.assert_allclose(model.predict_proba(applicants)[:, 1], original.predict_proba(applicants)[:, 0],
                               rtol=0, atol=1e-9)
    assert model.decide(EXAMPLE).label in {"Approved", "Rejected"}


def _copy_labelled(lesson: Path, folder: Path) -> Path:
    (folder / "labelled.csv").write_bytes((lesson / "labelled.csv").read_bytes())
    return folder


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(("make", "why"), [
    ("from sklearn.linear_model import LogisticRegression\nobj = LogisticRegression()", "never fitted"),
    ("from sklearn.svm import SVC\nobj = SVC().fit(X, y)", "probability=True"),
    ("from sklearn.preprocessing import StandardScaler\nobj = StandardScaler().fit(X)", "not a classifier"),
    ("obj = {'weights': [1, 2]}", "not a scikit-learn pipeline or classifier"),
    ("from sklearn.linear_model import LogisticRegression\nobj = LogisticRegression().fit(X, (y + X['age'] % 2))",
     "3 classes"),
])
def test_what_is_not_a_fitted_two_class_classifier_is_refused(lesson, tmp_path, make, why):
    frame = pd.read_csv(lesson / "labelled.csv")
    x, y = frame[FIVE].head(300), frame["approved"].head(300)
    namespace = {"X": x, "y": y}
    exec(make, namespace)
    joblib.dump(namespace["obj"], tmp_path / "thing.pkl")
    with pytest.raises(PipelineImportError, match=why):
        prepare(tmp_path / "thing.pkl", frame, "approved")


def test_a_bare_classifier_fitted_on_a_dataframe_is_imported(lesson, tmp_path, applicants):
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = pd.read_csv(lesson / "labelled.csv")
    clf = HistGradientBoostingClassifier(max_iter=30, monotonic_cst={"age": 1}).fit(frame[FIVE], frame["approved"])
    joblib.dump(clf, tmp_path / "hgb.pkl")
    done = train_py(tmp_path, "--import", "hgb.pkl", "--data", str(lesson / "labelled.csv"), "--out", "out")
    assert done.returncode == 0, done.stderr
    model = load_model(tmp_path / "out")
    np.testing.assert_allclose(model.predict_proba(applicants)[:, 1], clf.predict_proba(applicants)[:, 1],
                               rtol=0, atol=1e-9)


def test_labelled_data_missing_a_column_the_pipeline_reads_is_named(lesson, tmp_path):
    frame = pd.read_csv(lesson / "labelled.csv").drop(columns="credit_score")
    with pytest.raises(PipelineImportError, match="lacks credit_score"):
        prepare(lesson / "loan_approval_model.pkl", frame, "approved")


def test_prepare_refuses_an_unsafe_file_before_anything_else(lesson, tmp_path):
    (tmp_path / "evil.pkl").write_bytes(b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85R.")
    with pytest.raises(UnsafePickleError, match=r"os\.system"):
        prepare(tmp_path / "evil.pkl", pd.read_csv(lesson / "labelled.csv"), "approved")


def test_train_py_refuses_an_out_folder_that_holds_other_files(lesson, tmp_path):
    (tmp_path / "notes.txt").write_text("my project")
    done = train_py(tmp_path, "--import", str(lesson / "loan_approval_model.pkl"), "--data",
                    str(lesson / "labelled.csv"), "--out", str(tmp_path))
    assert done.returncode == 2 and "already holds other files" in done.stderr
    done = train_py(tmp_path, "--out", "model.pkl")
    assert done.returncode == 2 and "--import" in done.stderr


# --- every page, with no special case ------------------------------------------------------------
@pytest.fixture
def imported_app(imported, tmp_path, monkeypatch):
    """The whole app (AppTest) on a private copy of the imported model folder."""
    import shutil

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    folder = tmp_path / "my_pipeline"
    shutil.copytree(imported[0], folder)
    monkeypatch.setenv("LOANDESK_MODEL_DIR", str(folder))
    monkeypatch.setenv("LOANDESK_DB_URL", f"sqlite:///{tmp_path / 'decisions.db'}")
    st.cache_resource.clear()
    st.cache_data.clear()
    yield AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120), folder
    st.cache_resource.clear()
    st.cache_data.clear()


def _text(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "success", "error", "info", "warning",
                                               "header", "subheader") for e in at.get(kind))


def test_every_page_works_on_the_imported_version(imported_app, original):
    app, folder = imported_app
    at = app.run()
    assert not at.exception, at.exception
    model = load_model(folder)
    assert model.sha256[:8] in at.sidebar.markdown[0].value
    decide = next(b for b in at.button if b.label == "Decide")
    at.button(key=decide.key).click().run()
    assert not at.exception, at.exception
    p = original.predict_proba(pd.DataFrame([EXAMPLE]))[0, 1]
    assert f"{100 * p:.1f}%" in _text(at)

    at.switch_page("app_pages/model.py").run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "Imported pipeline" in text and "may overlap the rows the pipeline was trained on" in text
    assert "Performance on the labelled data" in text and "Directions, measured" in text
    directions = next(d.value for d in at.dataframe if "Direction" in d.value.columns)
    rows = directions.set_index("Field")
    assert rows.loc["Age", "Direction"] == "Approval rises with it"
    assert rows.loc["Age", "Rule"] == "age: may never fall (ECOA), checked"
    assert rows.loc["Loan amount", "Direction"] == "Approval falls as it rises"
    assert "AUC on the labelled data" in at.sidebar.markdown[0].value

    at.switch_page("app_pages/learn.py").run()
    assert not at.exception, at.exception
    text = _text(at)
    assert "A common deployment mistake, shown live" in text and "Deploy the pipeline you saved" in text
    assert "an imported pipeline" in text

    at.switch_page("app_pages/batch.py").run()
    csv = generate_applicants(30, seed=5).drop(columns="approved")
    at.file_uploader(key="batch.upload").set_value(("applicants.csv", csv.to_csv(index=False).encode(),
                                                     "text/csv")).run()
    at.button(key="batch.score").click().run()
    assert not at.exception, at.exception
    approved = int((original.predict_proba(csv)[:, 1] >= 0.5).sum())
    assert {m.label: m.value for m in at.metric}["Approved"] == f"{approved:,}"

    at.switch_page("app_pages/monitoring.py").run()
    next(b for b in at.button if b.label == "Score a simulated sample").click().run()
    assert not at.exception, at.exception
    assert any("simulated decisions scored" in s.value for s in at.success)


# --- the Learn page's "deploy the pipeline you saved", run as shown -------------------------------
def test_the_deploy_steps_run_as_shown(tmp_path, monkeypatch):
    """Each step runs as written, from a project folder (here a scratch one): Python steps in one session,
    commands through the shell with the project's scripts."""
    from model.learn import lessons

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOANDESK_DB_URL", f"sqlite:///{tmp_path / 'log.db'}")
    for script in ("train.py", "score.py", "serve.py", "streamlit_app.py"):
        (tmp_path / script).symlink_to(ROOT / script)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    namespace: dict = {}
    served = []
    for step in lessons.DEPLOY:
        if step.language == "python":
            exec(step.code, namespace)
            continue
        for line in step.code.splitlines():
            if line.startswith("python serve.py"):
                served.append(line)  # a server: started and stopped below
                continue
            if "streamlit run" in line:
                served.append(line)
                continue
            command = line.replace("python ", f"{sys.executable} ", 1)
            done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=300)
            assert done.returncode == 0, (line, done.stderr)
    assert (tmp_path / "decisions.csv").exists()
    assert namespace["mine"].version == load_model(tmp_path / "artifacts" / "my_pipeline").version
    customer = pd.DataFrame([EXAMPLE])
    assert namespace["mine"].predict_proba(EXAMPLE)[0, 1] == pytest.approx(
        namespace["pipeline"].predict_proba(customer)[0, 1], abs=1e-9)
    assert served == ["python serve.py --model artifacts/my_pipeline",
                      "LOANDESK_MODEL_DIR=artifacts/my_pipeline streamlit run streamlit_app.py"]
    _serve_briefly(tmp_path, env)


def _serve_briefly(folder: Path, env: dict[str, str]) -> None:
    """`python serve.py --model artifacts/my_pipeline` (on a free port) answers /readyz, then stops on SIGTERM."""
    import http.client
    import signal
    import time

    from .e2e import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "serve.py", "--model", "artifacts/my_pipeline", "--port", str(port)],
                              cwd=folder, env={**env, "LOANDESK_DB_URL": f"sqlite:///{folder / 'log.db'}",
                                               "LOANDESK_UNSENT_DIR": str(folder / "unsent")},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert status == 200, server.stdout.read() if server.poll() is not None else status
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0


def test_labelled_rows_with_gaps_the_pipeline_cannot_fill_are_explained(lesson):
    frame = pd.read_csv(lesson / "labelled.csv")
    frame.loc[[3, 9], "income"] = np.nan
    with pytest.raises(PipelineImportError, match="gaps in income, which the pipeline cannot fill"):
        prepare(lesson / "loan_approval_model.pkl", frame, "approved")


def test_columns_the_pipeline_does_not_read_are_named_and_ignored(lesson):
    frame = pd.read_csv(lesson / "labelled.csv")
    frame.insert(0, "application_id", [f"A{i}" for i in range(len(frame))])
    done = prepare(lesson / "loan_approval_model.pkl", frame, "approved")
    assert "Columns the pipeline does not read, ignored: application_id." in done.notes
    assert done.pipeline.feature_names_in_.tolist() == FIVE


def test_a_pipeline_with_a_text_column_and_gaps_gets_its_schema_from_the_data(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(4)
    frame = generate_applicants(1500, seed=4)
    frame["savings"] = np.round(rng.lognormal(8, 1, len(frame)), -1)
    frame.loc[rng.random(len(frame)) < 0.1, "savings"] = np.nan
    frame["purpose"] = rng.choice(["car", "home", "study"], len(frame))
    columns = [*FIVE, "savings", "purpose"]
    pre = ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), [*FIVE, "savings"]),
        ("text", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
    ])
    pipeline = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(frame[columns], frame["approved"])
    joblib.dump(pipeline, tmp_path / "mixed.pkl")
    done = prepare(tmp_path / "mixed.pkl", frame, "approved")
    schema = Schema.from_dict(done.card["schema"])
    assert schema.names == columns
    assert schema["purpose"].kind == "category" and schema["purpose"].categories == ("car", "home", "study")
    assert not schema["savings"].required  # the pipeline fills a gap
    assert schema["savings"].train_max == frame["savings"].max()
    version = save_version(tmp_path / "models", done.pipeline, done.card, done.holdout)
    model = load_model(tmp_path / "models", version=version)
    applicant = {**EXAMPLE, "savings": None, "purpose": "home"}
    expected = pipeline.predict_proba(pd.DataFrame([{**applicant, "savings": np.nan}])[columns])[0, 1]
    assert model.predict_proba(applicant)[0, 1] == pytest.approx(expected, abs=1e-9)
    assert model.decide(applicant).imputed == ["savings"]
    with pytest.raises(ValueError, match="not a known category"):
        model.predict_proba({**applicant, "purpose": "boat"})
