"""How well the model's own inputs stand in for a protected column it does not use.

Leaving race out of a model does not keep race out of its decisions when the inputs predict race
well (a postcode, a surname-derived field). So for each protected column we fit a simple, honest
classifier (impute → scale / one-hot → logistic regression) on the inputs alone and report its
cross-validated AUC (one-vs-rest macro AUC for more than two groups), or the cross-validated
correlation for a protected number; each input is also measured alone to name the strongest proxies.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

PROXY_THRESHOLD = 0.70  # above this, the inputs predict the protected column well enough to worry
MAX_ROWS = 20_000  # enough for a stable AUC; the one-input fits use a quarter of this
STRONGEST = 3  # proxies named per protected column
MIN_GROUP = 10  # smaller groups are pooled as "other": a fold needs members of every group
MAX_GROUPS = 20  # a number with at most this many distinct values is read as group codes


@dataclass(frozen=True)
class Proxy:
    """One protected column: how well the inputs predict it, and which inputs do it best."""

    column: str
    measure: str  # "AUC" or "correlation"
    value: float  # cross-validated, over all the inputs together
    strongest: tuple[tuple[str, float], ...]  # (input, the same measure from that input alone)
    threshold: float = PROXY_THRESHOLD
    rows: int = 0

    @property
    def warn(self) -> bool:
        return self.value > self.threshold

    def sentence(self, labels: dict[str, str] | None = None) -> str:
        """'The inputs predict race with a cross-validated AUC of 0.82 (above 0.70); strongest:
        Zip code (0.80), Income (0.61).'"""
        labels = labels or {}
        best = ", ".join(f"{labels.get(n, n)} ({v:.2f})" for n, v in self.strongest)
        side = "above" if self.warn else "not above"
        text = (f"The model's inputs predict {self.column} with a cross-validated {self.measure} of "
                f"{self.value:.2f} ({side} {self.threshold:.2f})")
        return text + (f"; strongest: {best}." if best else ".")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strongest"] = [list(pair) for pair in self.strongest]
        out["warn"] = self.warn
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Proxy:
        return cls(column=data["column"], measure=data["measure"], value=float(data["value"]),
                   strongest=tuple((str(n), float(v)) for n, v in data.get("strongest", [])),
                   threshold=float(data.get("threshold", PROXY_THRESHOLD)), rows=int(data.get("rows", 0)))


def measure_proxies(inputs: pd.DataFrame, protected: pd.DataFrame, threshold: float = PROXY_THRESHOLD,
                    seed: int = 0) -> list[Proxy]:
    """A `Proxy` for each column of `protected` (rows aligned with `inputs`); a column with a
    single group, or too few rows to cross-validate, is skipped."""
    out = []
    for name in protected.columns:
        proxy = measure_proxy(inputs, protected[name], threshold, seed)
        if proxy is not None:
            out.append(proxy)
    return out


def measure_proxy(inputs: pd.DataFrame, column: pd.Series, threshold: float = PROXY_THRESHOLD,
                  seed: int = 0) -> Proxy | None:
    given = column.notna().to_numpy()
    x, target = inputs.loc[given].reset_index(drop=True), column[given].reset_index(drop=True)
    if len(x) > MAX_ROWS:
        keep = np.random.default_rng(seed).choice(len(x), MAX_ROWS, replace=False)
        x, target = x.iloc[keep].reset_index(drop=True), target.iloc[keep].reset_index(drop=True)
    if x.shape[1] == 0:
        return None
    groups = _groups(target)
    if groups is None:  # a protected number: correlation of its cross-validated prediction
        values = target.astype(float).to_numpy()
        if len(values) < 20 or np.std(values) == 0:
            return None
        score = _correlation(x, values, seed)
        alone = [(n, _correlation(x[[n]].iloc[:MAX_ROWS // 4], values[:MAX_ROWS // 4], seed, folds=3))
                 for n in x.columns]
        measure = "correlation"
    else:
        if groups.nunique() < 2:
            return None
        score = _auc(x, groups, seed)
        sub = slice(0, MAX_ROWS // 4)
        alone = [(n, _auc(x[[n]].iloc[sub], groups.iloc[sub], seed, folds=3)) for n in x.columns]
        measure = "AUC"
    if score is None:
        return None
    measured = sorted(((str(n), float(v)) for n, v in alone if v is not None), key=lambda pair: -pair[1])
    return Proxy(str(column.name), measure, round(float(score), 4),
                 tuple((n, round(v, 4)) for n, v in measured[:STRONGEST]), float(threshold), len(x))


def _groups(target: pd.Series) -> pd.Series | None:
    """The protected column as group labels, small groups pooled; None for a continuous number."""
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    if numeric and target.nunique() > MAX_GROUPS:
        return None
    labels = target.astype(str)
    counts = labels.value_counts()
    small = counts[counts < MIN_GROUP].index
    if len(small):
        labels = labels.where(~labels.isin(small), "other")
        if (labels == "other").sum() < MIN_GROUP:  # the pooled group is itself too small: drop it
            labels = labels[labels != "other"]
    return labels


def _simple_model(x: pd.DataFrame, classifier: Any) -> Pipeline:
    numbers = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c])]
    texts = [c for c in x.columns if c not in numbers]
    parts = []
    if numbers:
        parts.append(("numbers", Pipeline([("impute", SimpleImputer(strategy="median")),
                                           ("scale", StandardScaler())]), numbers))
    if texts:
        parts.append(("texts", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="(blank)")),
                                         ("encode", OneHotEncoder(handle_unknown="ignore", min_frequency=5))]),
                      texts))
    return Pipeline([("prepare", ColumnTransformer(parts)), ("model", classifier)])


def _as_text(x: pd.DataFrame) -> pd.DataFrame:
    """Text columns as str objects with NaN for gaps, as SimpleImputer wants them."""
    out = x.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) or pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].map(lambda v: np.nan if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    return out


def _auc(x: pd.DataFrame, groups: pd.Series, seed: int, folds: int = 5) -> float | None:
    x = _as_text(x.loc[groups.index])
    y = groups.to_numpy()
    smallest = pd.Series(y).value_counts().min()
    folds = min(folds, int(smallest))
    if folds < 2:
        return None
    model = _simple_model(x, LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    classes = np.unique(y)
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))


def _correlation(x: pd.DataFrame, values: np.ndarray, seed: int, folds: int = 5) -> float | None:
    x = _as_text(x)
    model = _simple_model(x, Ridge(alpha=1.0))
    predicted = cross_val_predict(model, x, values, cv=KFold(n_splits=folds, shuffle=True, random_state=seed))
    if np.std(predicted) == 0:
        return 0.0
    return float(max(0.0, np.corrcoef(predicted, values)[0, 1]))
