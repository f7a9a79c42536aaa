"""A logistic pipeline compiled to its arithmetic: one dot product and two sigmoids.

For a single applicant scikit-learn spends nearly all of its time on input checks and dispatch
(about 0.8 ms for five numbers); the arithmetic itself takes microseconds. LoanDesk's logistic
pipeline is affine per column (median fill, standard scaling, one-hot weights) followed by a
logistic regression and a sigmoid calibration, so it folds into per-field weights. The compiled
form is built from the fitted steps themselves and checked against `Pipeline.predict_proba` before
it is used; any other shape (gradient boosting, a custom step) is left to scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from model.core.schema import Schema

log = logging.getLogger("loandesk.compiled")

TOLERANCE = 1e-9  # largest difference from Pipeline.predict_proba the compiled form may show
CHECK_ROWS = 512  # synthetic applicants it is checked on when a model is loaded


@dataclass(frozen=True)
class _Number:
    name: str
    fill: float  # the imputer's median, for a gap
    mean: float
    weight: float  # coefficient / scale: the weight of the raw value


@dataclass(frozen=True)
class _Category:
    name: str
    fill: str  # the imputer's most frequent category, for a gap
    weights: dict[str, float]  # one-hot coefficient per known category; unknown ones weigh 0


class CompiledLogistic:
    """`predict_proba(...)[:, 1]` of a fitted LoanDesk logistic pipeline, as plain arithmetic."""

    def __init__(self, numbers: list[_Number], categories: list[_Category], intercept: float,
                 calibration: tuple[float, float] | None):
        self.numbers, self.categories = numbers, categories
        self.intercept, self.calibration = intercept, calibration

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        return expit(self.log_odds(columns))  # scikit-learn's own sigmoid: no overflow at extreme scores

    def log_odds(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The calibrated log-odds of approval: exact even where the probability rounds to 0 or 1."""
        return self._calibrated(self.margin(columns))

    def swapped_log_odds(self, columns: Mapping[str, np.ndarray], names: list[str], reference: Mapping) -> np.ndarray:
        """Log-odds with each named field in turn set to its reference value: shape (fields, rows).

        A field's term is swapped in the sum, so the rest of each row is not scored again.
        """
        terms = self._terms(columns)
        margin = self._sum(terms, len(columns[names[0]]))
        out = np.empty((len(names), len(margin)))
        for k, name in enumerate(names):
            out[k] = margin - terms[name] + self._term(name, np.array([reference[name]]))
        return self._calibrated(out)

    def _term(self, name: str, values: np.ndarray) -> np.ndarray:
        for f in self.numbers:
            if f.name == name:
                x = np.asarray(values, dtype=float)
                return f.weight * (np.where(np.isnan(x), f.fill, x) - f.mean)
        for c in self.categories:
            if c.name == name:
                return np.array([c.weights.get(_category(v, c.fill), 0.0) for v in values])
        raise KeyError(name)

    def _calibrated(self, margin: np.ndarray) -> np.ndarray:
        if self.calibration is None:
            return margin
        a, b = self.calibration
        return -(a * margin + b)

    def margin(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The logistic regression's decision function for each row.

        Summed field by field in a fixed order, so a row's score does not depend on how many rows
        it is scored with (a matrix product may sum in another order for another batch size).
        """
        return self._sum(self._terms(columns), len(next(iter(columns.values()))))

    def _terms(self, columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each field's term of the margin, numbers first: the fixed order `_sum` adds them in."""
        names = [f.name for f in self.numbers] + [c.name for c in self.categories]
        return {name: self._term(name, columns[name]) for name in names}

    def _sum(self, terms: dict[str, np.ndarray], n: int) -> np.ndarray:
        score = np.full(n, self.intercept)
        for term in terms.values():
            score += term
        return score


def _category(value, fill: str):
    return fill if value is None or (isinstance(value, float) and value != value) else value


def compile_pipeline(pipeline: Pipeline, schema: Schema) -> CompiledLogistic | None:
    """The compiled form of `pipeline`, or None when it is not a shape LoanDesk knows how to fold.

    Checked against the pipeline on synthetic applicants (gaps and unknown categories included);
    a form that differs by more than TOLERANCE is never used.
    """
    try:
        compiled = _fold(pipeline)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        compiled = None
    if compiled is None:
        return None
    frame = probe_applicants(schema, CHECK_ROWS, seed=0)
    expected = pipeline.predict_proba(frame)[:, 1]
    got = compiled({name: frame[name].to_numpy() for name in schema.names})
    gap = float(np.max(np.abs(got - expected))) if len(frame) else 0.0
    if not gap <= TOLERANCE:
        log.warning("compiled form differs from the pipeline by %.3g; using scikit-learn instead", gap)
        return None
    return compiled


def _fold(pipeline: Pipeline) -> CompiledLogistic | None:
    steps = dict(pipeline.steps)
    pre, model = steps.get("preprocess"), steps.get("model")
    if list(steps) != ["preprocess", "model"] or not isinstance(pre, ColumnTransformer):
        return None
    calibration = None
    if isinstance(model, CalibratedClassifierCV):
        if len(model.calibrated_classifiers_) != 1 or model.method != "sigmoid":
            return None
        inner = model.calibrated_classifiers_[0]
        estimator, (calibrator,) = inner.estimator, inner.calibrators
        calibration = (float(calibrator.a_), float(calibrator.b_))
        if list(inner.classes) != list(estimator.classes_):
            return None
    else:
        estimator = model
    if not isinstance(estimator, LogisticRegression) or estimator.coef_.shape[0] != 1:
        return None
    coef = estimator.coef_[0]
    names = list(pre.get_feature_names_out())
    numbers: list[_Number] = []
    categories: list[_Category] = []
    at = 0
    for name, transformer, columns in pre.transformers_:
        if name == "remainder":
            if transformer != "drop":
                return None
            continue
        parts = dict(transformer.steps) if isinstance(transformer, Pipeline) else {}
        if name == "numbers" and list(parts) == ["impute", "scale"]:
            impute, scale = parts["impute"], parts["scale"]
            if not isinstance(impute, SimpleImputer) or not isinstance(scale, StandardScaler):
                return None
            means = scale.mean_ if scale.with_mean else np.zeros(len(columns))
            scales = scale.scale_ if scale.with_std else np.ones(len(columns))
            for j, column in enumerate(columns):
                numbers.append(_Number(column, float(impute.statistics_[j]), float(means[j]),
                                       float(coef[at + j] / scales[j])))
            at += len(columns)
        elif name == "categories" and list(parts) == ["blanks", "impute", "encode"]:
            impute, encode = parts["impute"], parts["encode"]
            if (not isinstance(parts["blanks"], FunctionTransformer) or not isinstance(impute, SimpleImputer)
                    or not isinstance(encode, OneHotEncoder) or encode.drop is not None
                    or encode.handle_unknown != "ignore"):
                return None
            for j, column in enumerate(columns):
                known = [str(c) for c in encode.categories_[j]]
                weights = {c: float(coef[at + k]) for k, c in enumerate(known)}
                categories.append(_Category(column, str(impute.statistics_[j]), weights))
                at += len(known)
        else:
            return None
    if at != len(names) or at != len(coef):
        return None
    return CompiledLogistic(numbers, categories, float(estimator.intercept_[0]), calibration)


def probe_applicants(schema: Schema, n: int, seed: int = 0) -> pd.DataFrame:
    """Random applicants across (and a little beyond) the training ranges, with gaps and unknown
    categories mixed in: the inputs on which two scoring paths are compared."""
    rng = np.random.default_rng(seed)
    data = {}
    for f in schema.fields:
        if f.is_number:
            lo, hi = float(f.train_min or 0), float(f.train_max or 1)
            pad = (hi - lo) * 0.1
            values = rng.uniform(lo - pad, hi + pad, n)
            values[rng.random(n) < 0.05] = np.nan
            data[f.name] = values
        else:
            choices = np.array([*f.categories, "never-seen", None], dtype=object)
            data[f.name] = rng.choice(choices, n)
    return pd.DataFrame(data, columns=schema.names)
