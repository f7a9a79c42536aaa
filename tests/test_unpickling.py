"""The restricted unpickler: what a fitted scikit-learn model is made of loads; nothing else is ever run."""

from __future__ import annotations

import io
import os
import pickle
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, SplineTransformer, StandardScaler

from model.core.errors import ModelIntegrityError, UnsafePickleError
from model.registry.unpickling import Trust, allowed, dump_bytes, load_file, loads


class _CreatesFile:
    """Unpickling this creates a file: the classic payload."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsCommand:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _LoadsAnotherPickle:
    """A library function that unpickles again, with no check: numpy.load(allow_pickle=True)."""

    def __reduce__(self):
        return (np.load, ("/nonexistent.npy", None, True))


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"income": rng.lognormal(10.8, 0.4, 300), "score": rng.normal(680, 60, 300),
                      "purpose": rng.choice(["car", "home", "study"], 300)})
    x.loc[::9, "income"] = np.nan
    y = ((x["score"] - 680) / 60 + rng.normal(0, 1, 300) > 0).astype(int)
    return x, y


def _pipelines():
    numbers = make_pipeline(SimpleImputer(), FunctionTransformer(np.log1p), StandardScaler())
    pre = ColumnTransformer([("n", numbers, ["income", "score"]), ("c", OneHotEncoder(handle_unknown="ignore"),
                                                                   ["purpose"])])
    return {
        "logistic": make_pipeline(pre, LogisticRegression()),
        "calibrated gbm": make_pipeline(pre, CalibratedClassifierCV(HistGradientBoostingClassifier(max_iter=10),
                                                                    cv=3, ensemble=False)),
        "forest": make_pipeline(pre, RandomForestClassifier(10, random_state=np.random.RandomState(0))),
        "knn": make_pipeline(pre, KNeighborsClassifier()),
        "mlp": make_pipeline(pre, MLPClassifier((5,), max_iter=50, random_state=0)),
        "spline": make_pipeline(ColumnTransformer([("s", make_pipeline(SimpleImputer(), SplineTransformer()),
                                                    ["income", "score"])]), LogisticRegression()),
    }


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", list(_pipelines()))
@pytest.mark.parametrize("how", ["joblib", "joblib zlib", "joblib gzip", "pickle", "pickle protocol 2"])
def test_fitted_pipelines_load_and_predict_the_same(frame, kind, how):
    x, y = frame
    pipeline = _pipelines()[kind].fit(x, y)
    buf = io.BytesIO()
    if how == "joblib":
        joblib.dump(pipeline, buf)
    elif how == "joblib zlib":
        joblib.dump(pipeline, buf, compress=3)
    elif how == "joblib gzip":
        joblib.dump(pipeline, buf, compress=("gzip", 3))
    else:
        pickle.dump(pipeline, buf, protocol=2 if how.endswith("2") else pickle.HIGHEST_PROTOCOL)
    loaded = loads(buf.getvalue())
    np.testing.assert_array_equal(loaded.predict_proba(x), pipeline.predict_proba(x))
    assert list(loaded.feature_names_in_) == ["income", "score", "purpose"]  # an object array, checked too


def test_pandas_scipy_and_random_state_load():
    things = [pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}), pd.Series([1, 2]), sparse.csr_matrix(np.eye(3)),
              np.random.RandomState(1), np.random.default_rng(1), np.float32(1.5), {"set": {1, 2}, "slice": slice(1)}]
    for thing, back in zip(things, loads(dump_bytes(things)), strict=True):
        assert type(back) is type(thing)


@pytest.mark.parametrize("payload", [_CreatesFile, _RunsCommand])
@pytest.mark.parametrize("wrapping", ["plain", "inside a pipeline's list", "inside an object array", "compressed"])
def test_a_crafted_payload_is_refused_and_never_runs(tmp_path, payload, wrapping):
    marker = tmp_path / "created-by-the-payload"
    # The payload works: loaded the ordinary way, it does its thing.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(payload(control)))
    assert control.exists()

    evil = payload(marker)
    if wrapping == "plain":
        data = pickle.dumps(evil)
    elif wrapping == "inside a pipeline's list":
        data = dump_bytes([np.arange(5.0), evil, StandardScaler()])
    elif wrapping == "inside an object array":
        data = dump_bytes({"names": np.array(["a", evil], dtype=object)})
    else:
        buf = io.BytesIO()
        joblib.dump([evil], buf, compress=3)
        data = buf.getvalue()
    with pytest.raises(UnsafePickleError) as info:
        loads(data, source="evil.pkl")
    assert not marker.exists()
    wanted = {"_CreatesFile": ("io", "open"), "_RunsCommand": ("posix", "system")}[payload.__name__]
    assert info.value.refused == [wanted]
    message = str(info.value)
    assert f"{wanted[0]}.{wanted[1]}" in message and "evil.pkl" in message
    assert "crafted to run code" in message and "Nothing it names was imported or run" in message
    assert isinstance(info.value, ModelIntegrityError)


def test_every_refused_name_is_reported_at_once(tmp_path):
    data = dump_bytes([_CreatesFile(tmp_path / "a"), _LoadsAnotherPickle(), _RunsCommand(tmp_path / "b")])
    with pytest.raises(UnsafePickleError) as info:
        loads(data)
    assert info.value.refused == [("io", "open"), ("numpy", "load"), ("posix", "system")]
    assert "numpy.load" in str(info.value) and "--trust-module numpy" in str(info.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize(("module", "name"), [
    ("builtins", "eval"), ("builtins", "getattr"), ("builtins", "__import__"), ("os", "system"),
    ("subprocess", "Popen"), ("numpy", "load"), ("pandas", "read_pickle"), ("joblib", "load"),
    ("numpy.testing._private.utils", "runstring"), ("numpy", "os.system"), ("sklearn", "utils.os"),
    ("pandas.io.pytables", "HDFStore"), ("numpy", "memmap"), ("joblib.numpy_pickle", "NDArrayWrapper"),
])
def test_what_can_touch_files_or_run_code_is_not_allowed(module, name):
    assert not allowed(module, name)


def test_a_module_outside_the_libraries_is_never_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "antigravity", raising=False)
    with pytest.raises(UnsafePickleError):
        loads(b"\x80\x04\x8c\x0bantigravity\x94\x8c\x03fly\x94\x93\x94.")  # the global antigravity.fly
    assert "antigravity" not in sys.modules  # importing it would open a browser


FEATURES = textwrap.dedent("""
    import numpy as np

    def log_income(x):
        return np.log1p(x)
""")


def _with_function(frame, func):
    x, y = frame
    return make_pipeline(ColumnTransformer([("n", FunctionTransformer(func), ["income", "score"])]),
                         SimpleImputer(), LogisticRegression()).fit(x, y)


def test_the_users_own_module_is_refused_until_trusted(frame, tmp_path, monkeypatch):
    (tmp_path / "loan_features_a.py").write_text(FEATURES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import loan_features_a

    data = dump_bytes(_with_function(frame, loan_features_a.log_income))
    with pytest.raises(UnsafePickleError) as info:
        loads(data, source="mine.pkl")
    assert info.value.refused == [("loan_features_a", "log_income")]
    assert "--trust-module loan_features_a" in str(info.value)
    loaded = loads(data, Trust.parse(["loan_features_a"]))
    np.testing.assert_array_equal(loaded.predict_proba(frame[0]), _with_function(frame, loan_features_a.log_income)
                                  .predict_proba(frame[0]))


def test_a_function_from_main_is_read_from_the_module_the_user_names(frame, tmp_path, monkeypatch):
    (tmp_path / "loan_features_b.py").write_text(FEATURES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import loan_features_b

    def log_income(x):
        return np.log1p(x)

    log_income.__module__, log_income.__qualname__ = "__main__", "log_income"
    monkeypatch.setattr(sys.modules["__main__"], "log_income", log_income, raising=False)
    data = dump_bytes(_with_function(frame, log_income))
    with pytest.raises(UnsafePickleError) as info:
        loads(data)
    assert info.value.refused == [("__main__", "log_income")]
    assert "--trust-module __main__=my_features" in str(info.value)
    trust = Trust.parse(["__main__=loan_features_b"])
    loaded = loads(data, trust)
    assert loaded.steps[0][1].transformers_[0][1].func is loan_features_b.log_income
    assert trust.to_list() == ["__main__=loan_features_b"]


def test_a_trusted_module_that_cannot_be_imported_says_so(frame):
    data = pickle.dumps(_RunsCommand("x"))
    with pytest.raises(ValueError, match="cannot be imported here"):
        loads(data.replace(b"posix", b"nosch"), Trust.parse(["nosch"]))


@pytest.mark.parametrize("bad", ["", "a b", "__main__", "x=y", "__main__=", "1abc"])
def test_trust_module_names_are_checked(bad):
    with pytest.raises(ValueError, match="--trust-module"):
        Trust.parse([bad])


def test_skops_files_load_through_skops_with_the_same_allow_list(frame, tmp_path, monkeypatch):
    import skops.io as sio

    x, y = frame
    pipeline = _pipelines()["logistic"].fit(x, y)
    sio.dump(pipeline, tmp_path / "model.skops")
    loaded = load_file(tmp_path / "model.skops")
    assert loaded.format == "skops"
    np.testing.assert_array_equal(loaded.obj.predict_proba(x), pipeline.predict_proba(x))

    (tmp_path / "loan_features_c.py").write_text(FEATURES)
    monkeypatch.syspath_prepend(str(tmp_path))
    import loan_features_c

    sio.dump(_with_function(frame, loan_features_c.log_income), tmp_path / "mine.skops")
    with pytest.raises(UnsafePickleError) as info:
        load_file(tmp_path / "mine.skops")
    assert ("loan_features_c", "log_income") in info.value.refused
    assert load_file(tmp_path / "mine.skops", Trust.parse(["loan_features_c"])).obj.predict_proba(x).shape == (300, 2)


def test_a_file_that_is_not_a_pickle_is_a_plain_error(tmp_path):
    with pytest.raises(ValueError, match="could not be read as a pickle"):
        loads(b"age,income\n35,62000\n", source="labelled.csv")


def test_a_pipeline_made_with_another_scikit_learn_is_flagged(frame, tmp_path, monkeypatch):
    import sklearn.base

    x, y = frame
    monkeypatch.setattr(sklearn.base, "__version__", "1.5.0")
    joblib.dump(_pipelines()["logistic"].fit(x, y), tmp_path / "old.pkl")
    monkeypatch.undo()
    assert load_file(tmp_path / "old.pkl").made_with_sklearn == "1.5.0"


def test_a_loandesk_function_missing_from_the_list_is_explained_for_whoever_added_it():
    from model.training import train

    data = pickle.dumps(train.typical_applicant)
    with pytest.raises(UnsafePickleError, match=r"LoanDesk's own code.*_EXACT"):
        loads(data)


@pytest.mark.parametrize("kind", [bytearray, bytes])
def test_a_tiny_file_cannot_make_the_loader_allocate_by_size(kind):
    """`bytearray(500_000_000)` is 46 bytes of pickle: refused before anything is allocated."""
    class Bomb:
        def __reduce__(self):
            return kind, (500_000_000,)

    data = pickle.dumps(Bomb(), protocol=4)
    assert len(data) < 100
    with pytest.raises(ValueError, match=r"asks for \w+\(500,000,000\)"):
        loads(data)
    assert bytes(loads(pickle.dumps(kind(b"kept as written")))) == b"kept as written"  # bytes from data still load
