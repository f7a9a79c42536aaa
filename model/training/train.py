"""Training: data in, a fitted pipeline plus everything its model card needs out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from model.core.coercion import to_numbers
from model.core.metrics import evaluate, fingerprint
from model.core.pipeline import (
    MODEL_KINDS,
    MonotonicityError,
    build_pipeline,
    check_coefficient_signs,
)
from model.core.schema import Schema
from model.training.data import DataError, confirmed_meaning, label_meaning
from model.training.protection import Protection, plan_protection
from model.training.proxies import PROXY_THRESHOLD, measure_proxies
from model.training.spec import ColumnSpec, check_against

DEFAULT_THRESHOLD = 0.5
DRIFT_BINS = 10
# Below this many rows, gradient boosting's OpenMP threads cost more than they save, and on a busy
# machine they stall for seconds waiting on each other: train on one thread.
SINGLE_THREAD_ROWS = 100_000


@dataclass
class TrainedModel:
    """A fitted pipeline and the facts about it that go into the model card."""

    pipeline: Pipeline
    schema: Schema
    card: dict[str, Any]
    holdout: pd.DataFrame  # hold-out features, `label` and `probability`




def parse_monotone(text: str | None) -> dict[str, int]:
    """`income=+1,loan_amount=-1` → {"income": 1, "loan_amount": -1}."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, sep, sign = part.partition("=")
        if not sep or not name.strip() or sign.strip() not in {"+1", "1", "-1", "0"}:
            raise DataError(f"--monotone: {part!r} should look like name=+1, name=-1 or name=0")
        out[name.strip()] = int(sign)
    return out


def train(
    features: pd.DataFrame,
    y: np.ndarray,
    *,
    target: str,
    positive_label: str,
    model: str = "auto",
    seed: int = 42,
    test_size: float = 0.2,
    monotone: dict[str, int] | None = None,
    source: str = "",
    declared: dict[str, str] | None = None,
    allowed: dict[str, str] | None = None,
    spec: ColumnSpec | None = None,
    proxy_threshold: float = PROXY_THRESHOLD,
    label_confirmed: str | None = None,
) -> TrainedModel:
    """Fit, calibrate and evaluate; `model="auto"` picks the kind by cross-validated AUC.

    Protected columns (model/core/protected.py, plus `declared` and the spec's) are left out of the
    model unless `allowed` ({column: justification}), except age, which is used as the law allows:
    constrained so that approval never falls as it rises. Left-out columns are kept beside the
    hold-out for the fairness report, and how well the inputs predict each goes into the card.
    `label_confirmed` is the doubt about the label's direction that the user overrode
    (--confirm-approved-value): the card states it beside what approved means.
    """
    if not 0.05 <= test_size <= 0.5:
        raise DataError(f"--test-size must be between 0.05 and 0.5, not {test_size}")
    if not 0.5 < proxy_threshold <= 1.0:
        raise DataError(f"--proxy-threshold must be above 0.5 and at most 1, not {proxy_threshold}")
    features = features.rename(columns=str)
    spec = (spec or ColumnSpec()).without(target)
    check_against(spec, features)
    monotone = {**spec.monotone(), **(monotone or {})}
    unknown = set(monotone) - set(features.columns)
    if unknown:
        raise DataError(f"--monotone names unknown column(s): {', '.join(sorted(unknown))}")
    protection = plan_protection(features, {**spec.declared(), **(declared or {})}, allowed)
    _check_protection(protection, monotone, spec)
    if len(features) < 50:
        raise DataError(f"{len(features)} rows is too few to train and evaluate a model (need 50 or more)")
    if min(np.bincount(y, minlength=2)) < 10:
        raise DataError("each target value needs at least 10 rows to train and evaluate a model")
    aside = kept_aside(features[protection.excluded])
    features = features.drop(columns=protection.excluded)
    if features.shape[1] == 0:
        raise DataError("every column is a protected one left out of the model: nothing is left to train on")
    empty = [str(c) for c in features.columns if features[c].isna().all()]
    if empty:
        raise DataError(f"column(s) with no values at all: {', '.join(empty)}; fill them in or remove them")
    features = normalize_features(features)
    schema = Schema.infer(features, monotone, described=spec.described(), protected=protection.bases_used())
    for name, sign in (monotone or {}).items():
        if sign and not schema[name].is_number:
            raise DataError(f"--monotone: {name} is a text column; directions apply to numbers only")
    x_train, x_test, aside_train, aside_test, y_train, y_test = train_test_split(
        features, aside, y, test_size=test_size, random_state=seed, stratify=y,
    )
    if model != "auto" and model not in MODEL_KINDS:
        raise DataError(f"--model must be one of logistic, gbm, auto; not {model!r}")
    with threadpool_limits(1 if len(features) < SINGLE_THREAD_ROWS else None, user_api="openmp"):
        pipeline, chosen, cv_auc, refused = _fit(schema, model, x_train, y_train, seed)
        proba = pipeline.predict_proba(x_test)[:, 1]
    metrics = evaluate(y_test, proba, DEFAULT_THRESHOLD)
    metrics.update(n_train=len(x_train), n_test=len(x_test))
    approved_train = x_train[y_train == 1] if (y_train == 1).any() else x_train
    schema = schema.with_defaults(example_defaults(schema))
    holdout = x_test.reset_index(drop=True).copy()
    holdout["label"] = y_test
    holdout["probability"] = proba
    for name in aside_test.columns:  # beside the hold-out, never an input: for the fairness report
        holdout[name] = aside_test[name].to_numpy()
    proxies = measure_proxies(x_train.reset_index(drop=True), aside_train.reset_index(drop=True),
                              proxy_threshold, seed)
    card = {
        "model_kind": chosen,
        "target": target,
        "positive_label": positive_label,
        "label_meaning": confirmed_meaning(label_meaning(target, positive_label, y), label_confirmed),
        "label_direction_confirmed": label_confirmed,
        "protected": {"columns": protection.to_card(), "proxy_threshold": proxy_threshold,
                      "proxies": [p.to_dict() for p in proxies]},
        "threshold": DEFAULT_THRESHOLD,
        "schema": schema.to_dict(),
        "metrics": metrics,
        "selection": {"cv_auc": cv_auc, "chosen": chosen, "refused": refused},
        "data": {
            "source": source,
            "rows": len(features),
            "fingerprint": fingerprint(pd.concat([features, pd.Series(y, name=target, index=features.index)], axis=1)),
            "approval_rate": float(np.mean(y)),
            "seed": seed,
            "test_size": test_size,
        },
        "reference": typical_applicant(approved_train, schema),
        "drift_bins": drift_bins(x_train, schema),
        "pipeline_steps": describe_steps(pipeline),
    }
    return TrainedModel(pipeline, schema, card, holdout)


def _check_protection(protection: Protection, monotone: dict[str, int], spec: ColumnSpec) -> None:
    """Age's direction is the law's, not the user's; a left-out column has none; a spec may not
    declare a found column unprotected (that is what --allow and its justification are for)."""
    for name, sign in monotone.items():
        if name == protection.age and sign != +1:
            raise DataError(f"--monotone: {name} is protected (ECOA): it is the applicant's age, and approval may "
                            "never fall as it rises, so its direction stays +1")
        if name in protection.excluded and sign:
            raise DataError(f"--monotone: {name} is protected and left out of the model, so it has no direction")
    for name in spec.not_protected():
        if name in {c.name for c in protection.found} and name != protection.age:
            found = protection.column(name)
            raise DataError(f"--spec says {name} is not protected, but {found.rule} ({found.basis}); to use it "
                            f"anyway: --allow {name} --justification \"why it is lawful\"")


def kept_aside(frame: pd.DataFrame) -> pd.DataFrame:
    """Left-out columns as the hold-out file can store them: numbers as floats, the rest as text."""
    out = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        col = frame[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        out[name] = col.astype(float) if numeric else col.map(lambda v: None if pd.isna(v) else str(v).strip())
    return out


def _fit(schema: Schema, model: str, x: pd.DataFrame, y: np.ndarray, seed: int):
    """The chosen kind, fitted: auto ranks the kinds by cross-validated AUC and takes the first
    whose directions hold; an explicitly chosen kind fails loudly instead."""
    cv_auc: dict[str, float] = {}
    ranked: list[Any] = _rank_by_cv_auc(schema, x, y, seed, cv_auc) if model == "auto" else [model]
    refused = []
    for kind in ranked:
        candidate = build_pipeline(schema, kind, seed).fit(x, y)
        try:
            check_coefficient_signs(candidate, schema)
        except MonotonicityError as exc:
            if model != "auto":
                raise
            refused.append(f"{kind}: {exc}")
            continue
        return candidate, kind, cv_auc, refused
    raise MonotonicityError("; ".join(refused))


def _rank_by_cv_auc(schema: Schema, x: pd.DataFrame, y: np.ndarray, seed: int, cv_auc: dict[str, float]) -> list[str]:
    """Kinds in order of preference by 5-fold AUC, with the one-standard-error rule.

    Gradient boosting is preferred only when it beats logistic regression by more than the standard
    error of the per-fold difference: a smaller model that scores the same is faster and clearer.
    """
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    folds = {}
    for kind in MODEL_KINDS:
        candidate = build_pipeline(schema, kind, seed, calibrate=False)
        folds[kind] = cross_val_score(candidate, x, y, cv=cv, scoring="roc_auc")
        cv_auc[kind] = float(folds[kind].mean())
    diff = folds["gbm"] - folds["logistic"]
    margin = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    return ["gbm", "logistic"] if diff.mean() > margin else ["logistic", "gbm"]




def typical_applicant(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The typical approved applicant: the reference the reasons compare against."""
    out: dict[str, Any] = {}
    for f in schema.fields:
        col = frame[f.name].dropna()
        if f.is_number:
            out[f.name] = float(col.median()) if len(col) else f.train_median
        else:
            mode = col.astype(str).mode()
            out[f.name] = str(mode.iloc[0]) if len(mode) else f.default
    return out


def drift_bins(frame: pd.DataFrame, schema: Schema) -> dict[str, dict[str, list]]:
    """Training distribution per field (decile edges or category shares) for PSI later."""
    out: dict[str, dict[str, list]] = {}
    for f in schema.fields:
        col = frame[f.name].dropna()
        if f.is_number:
            edges = np.unique(np.quantile(col.astype(float), np.linspace(0, 1, DRIFT_BINS + 1)))
            inner = edges[1:-1]
            counts = np.bincount(np.searchsorted(inner, col.astype(float), side="right"), minlength=len(inner) + 1)
            out[f.name] = {"edges": [float(e) for e in inner], "shares": (counts / counts.sum()).tolist()}
        else:
            shares = col.astype(str).value_counts(normalize=True)
            out[f.name] = {"categories": [str(c) for c in shares.index], "shares": shares.tolist()}
    return out


def describe_steps(pipeline: Pipeline) -> list[str]:
    """The pipeline's steps in words, for the model card."""
    pre = pipeline.named_steps["preprocess"]
    steps = []
    for name, transformer, columns in pre.transformers_:
        if name == "remainder":
            continue
        inner = " → ".join(type(s).__name__ for _, s in transformer.steps)
        steps.append(f"{name} [{', '.join(columns)}]: {inner}")
    model = pipeline.named_steps["model"]
    inner = getattr(model, "estimator", model)
    calibrated = " with sigmoid calibration (5-fold)" if inner is not model else ""
    steps.append(f"model: {type(inner).__name__}{calibrated}")
    return steps


def normalize_features(features: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float, text as object, so training and serving see the same dtypes."""
    out = features.copy()
    for name in out.columns:
        col = out[name]
        if pd.api.types.is_bool_dtype(col):
            out[name] = col.astype(str).astype(object)
        elif pd.api.types.is_numeric_dtype(col):
            out[name] = col.astype(float)
        elif (numbers := _as_numbers(name, col)) is not None:
            out[name] = numbers
        else:
            out[name] = col.astype(object).where(col.notna(), None)
    out.columns = [str(c) for c in out.columns]
    return out


def _as_numbers(name: str, col: pd.Series) -> pd.Series | None:
    """A text column that holds numbers, as floats (gaps stay gaps); None for real text.

    A numeric column spoilt by a few words ("n/a", "unknown") would silently become a category
    with hundreds of values: it is refused, naming the rows to fix.
    """
    given = col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v).strip())
    filled = given[given.notna() & (given != "")]
    if filled.empty:
        return None
    numbers = pd.Series(to_numbers(filled.to_numpy(dtype=object)), index=filled.index)
    stray = filled[numbers.isna()]
    if stray.empty:
        return numbers.reindex(col.index).astype(float)
    if len(stray) <= 0.05 * len(filled):
        shown = ", ".join(f"row {i + 1}: {v!r}" for i, v in list(stray.items())[:5])
        more = f" and {len(stray) - 5} more" if len(stray) > 5 else ""
        raise DataError(f"column {name!r} holds numbers except for {len(stray)} value(s) ({shown}{more}): "
                        "fix them or leave those cells empty, which the model fills in")
    return None


def example_defaults(schema: Schema) -> dict[str, Any]:
    """Keep the lesson's example customer where it fits the data, else use training medians."""
    out = {}
    for f in schema.fields:
        low, high, median = f.train_min, f.train_max, f.train_median
        if low is None or high is None or median is None or f.default is None:
            continue
        if f.is_number and not low <= float(f.default) <= high:
            out[f.name] = round(median) if f.integer else round(median, 2)
    return out


def train_builtin(seed: int = 42, rows: int = 5000, model: str = "auto", test_size: float = 0.2) -> TrainedModel:
    """The built-in loan model on generated applicants (see model/data.py for the rule)."""
    from model.training.data import BUILTIN_TARGET, generate_applicants, split_target

    frame = generate_applicants(rows, seed)
    features, y, positive = split_target(frame, BUILTIN_TARGET, "1")
    return train(features, y, target=BUILTIN_TARGET, positive_label=positive, model=model,
                 seed=seed, test_size=test_size, source=f"built-in applicants ({rows:,} rows, seed {seed})")

