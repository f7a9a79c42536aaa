"""The model-file loader: what it costs against plain joblib.load, and what it refuses against fickling.

    python bench/bench_import.py            # prints load times (ratio to joblib.load) and a refusal table

Load time: the built-in pipeline and a gradient-boosting one, each loaded 30 times by joblib.load and
by LoanDesk's restricted loader (both run the same pure-Python unpickler; ours checks every global).
Refusals: crafted files that each try to run code another way, and legitimate fitted pipelines,
judged by our loader and, when it is installed, by fickling's `is_likely_safe` (a static analysis of
the pickle's opcodes). A good loader refuses every crafted file and accepts every real one.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import sys
import tempfile
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.core.errors import UnsafePickleError
from model.registry.unpickling import dump_bytes, loads
from model.training.train import train_builtin

REPEATS = 30


def _timed(load, data: bytes) -> float:
    best = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        load(data)
        best.append(time.perf_counter() - start)
    return float(np.median(best))


class _Open:
    def __reduce__(self):
        return (open, ("/tmp/loandesk-bench-pwned", "w"))


class _System:
    def __reduce__(self):
        return (os.system, ("true",))


class _NumpyLoad:  # a library function that unpickles again without a check
    def __reduce__(self):
        return (np.load, ("/nonexistent.npy", None, True))


class _PandasPickle:
    def __reduce__(self):
        return (pd.read_pickle, ("/nonexistent.pkl",))


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def crafted() -> dict[str, bytes]:
    return {
        "open() via __reduce__": pickle.dumps(_Open()),
        "os.system via __reduce__": pickle.dumps(_System()),
        "eval via __reduce__": pickle.dumps(_Eval()),
        "numpy.load(allow_pickle=True)": pickle.dumps(_NumpyLoad()),
        "pandas.read_pickle": pickle.dumps(_PandasPickle()),
        "os.system inside an object array": dump_bytes({"x": np.array([1, _System()], dtype=object)}),
        "open() inside a pipeline-like list": dump_bytes([np.arange(3.0), _Open()]),
    }


def legitimate() -> dict[str, bytes]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    frame = train_builtin(rows=1500).holdout
    x, y = frame[["age", "income", "credit_score", "loan_amount", "employment_years"]], frame["label"]
    lesson = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    return {
        "built-in logistic": dump_bytes(train_builtin(rows=1500).pipeline),
        "built-in gradient boosting": dump_bytes(train_builtin(rows=1500, model="gbm").pipeline),
        "scaler + logistic (the lesson)": dump_bytes(lesson),
        "the same, by pickle.dump": pickle.dumps(lesson),
        "log1p + random forest": dump_bytes(make_pipeline(FunctionTransformer(np.log1p),
                                                          RandomForestClassifier(20, random_state=0)).fit(x, y)),
    }


def _ours(data: bytes) -> bool:
    try:
        loads(data)
    except UnsafePickleError:
        return False
    return True


def _fickling(data: bytes) -> bool | None:
    try:
        import fickling
    except ImportError:
        return None
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        fh.write(data)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return bool(fickling.is_likely_safe(fh.name))
    except Exception:
        return False
    finally:
        os.unlink(fh.name)


def main() -> None:
    real = legitimate()
    print("Load time, median of", REPEATS)
    for name in ("built-in logistic", "built-in gradient boosting"):
        data = real[name]
        plain = _timed(lambda d: joblib.load(io.BytesIO(d)), data)
        ours = _timed(loads, data)
        print(f"  {name:28s} joblib.load {plain * 1e3:7.2f} ms   restricted {ours * 1e3:7.2f} ms   "
              f"ratio {ours / plain:.2f}x")
    print("\nAccepted (True) or refused (False); a good loader refuses every crafted file, accepts every real one")
    print(f"  {'file':38s} {'ours':>6s} {'fickling':>9s}")
    score = {"ours": 0, "fickling": 0}
    cases = [(n, d, False) for n, d in crafted().items()] + [(n, d, True) for n, d in real.items()]
    for name, data, should in cases:
        ours, theirs = _ours(data), _fickling(data)
        score["ours"] += ours == should
        score["fickling"] += theirs == should
        print(f"  {name:38s} {ours!s:>6s} {'n/a' if theirs is None else str(theirs):>9s}   "
              f"({'real' if should else 'crafted'})")
    print(f"\nRight: ours {score['ours']}/{len(cases)}, fickling {score['fickling']}/{len(cases)}")
    assert not Path("/tmp/loandesk-bench-pwned").exists(), "a payload ran"


if __name__ == "__main__":
    main()
