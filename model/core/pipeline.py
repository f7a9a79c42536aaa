"""Building the scikit-learn pipeline: every preprocessing step lives inside it, columns chosen by name.

Keeping imputation, encoding and scaling in the saved pipeline is what makes the lesson's deployment
mistakes (different preprocessing, changed feature order, manual transforms) impossible here.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

from model.core.errors import MonotonicityError
from model.core.schema import Schema

ModelKind = Literal["logistic", "gbm"]
MODEL_KINDS: tuple[ModelKind, ...] = ("logistic", "gbm")




def build_pipeline(schema: Schema, kind: ModelKind, seed: int = 42, calibrate: bool = True) -> Pipeline:
    """preprocess (by column name) → classifier, calibrated with cross-validated sigmoid scaling."""
    numbers, categories = schema.numbers, schema.categories
    if kind == "logistic":
        encode = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        estimator = LogisticRegression(max_iter=2000, C=1.0)
    elif kind == "gbm":
        encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        # Columns leave the ColumnTransformer as numbers first, then categories, in schema order.
        cst = [schema[n].monotone for n in numbers] + [0] * len(categories)
        is_cat = [False] * len(numbers) + [True] * len(categories)
        estimator = HistGradientBoostingClassifier(
            monotonic_cst=cst, categorical_features=is_cat if categories else None,
            max_iter=80, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=40,
            l2_regularization=1.0, random_state=seed,
        )
    else:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    transformers = []
    if numbers:
        transformers.append(("numbers", Pipeline([
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]), numbers))
    if categories:
        transformers.append(("categories", Pipeline([
            ("blanks", FunctionTransformer(blanks_to_nan, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", encode),
        ]), categories))
    preprocess = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    model = (
        CalibratedClassifierCV(estimator, method="sigmoid", cv=5, ensemble=False)
        if calibrate else estimator
    )
    return Pipeline([("preprocess", preprocess), ("model", model)])


def blanks_to_nan(x: Any) -> np.ndarray:
    """None and NaN both mean a gap; SimpleImputer sees only NaN, and None would become a category."""
    values = np.asarray(x, dtype=object)
    return np.where(pd.isna(values), np.nan, values)


def is_loandesk_shape(pipeline: Pipeline) -> bool:
    """Built by `build_pipeline` (preprocess by column name, then the model), not imported from elsewhere."""
    return [name for name, _ in pipeline.steps] == ["preprocess", "model"] and isinstance(
        pipeline.steps[0][1], ColumnTransformer)


def base_estimator(pipeline: Pipeline) -> Any:
    """The fitted classifier: the last step, inside the calibration wrapper when there is one."""
    model = pipeline.steps[-1][1]
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


def model_kind(pipeline: Pipeline) -> str:
    """"logistic" or "gbm" for LoanDesk's own pipelines; "imported" for any other shape."""
    if not is_loandesk_shape(pipeline):
        return "imported"
    return "logistic" if isinstance(base_estimator(pipeline), LogisticRegression) else "gbm"


def check_coefficient_signs(pipeline: Pipeline, schema: Schema) -> None:
    """Logistic regression has no monotone constraint, so refuse a fit whose signs are wrong."""
    estimator = base_estimator(pipeline)
    if not isinstance(estimator, LogisticRegression):
        return
    names = list(pipeline.named_steps["preprocess"].get_feature_names_out())
    coef = estimator.coef_[0]
    wrong = []
    for field in schema.fields:
        if field.is_number and field.monotone:
            c = coef[names.index(field.name)]
            if np.sign(c) == -field.monotone and abs(c) > 1e-9:
                rule = "never fall as it rises" if field.monotone > 0 else "never rise as it rises"
                wrong.append(f"{field.name} (coefficient {c:+.4f}; approval must {rule})")
    if wrong:
        raise MonotonicityError(
            "logistic regression moved the score the wrong way for: " + "; ".join(wrong)
            + ". Use --model gbm, which enforces the directions, or check the data."
        )


def feature_effects(pipeline: Pipeline) -> dict[str, float] | None:
    """Standardized coefficients of a logistic model, by transformed feature name (None for GBM, and
    for an imported pipeline, whose inputs may not be standardized)."""
    estimator = base_estimator(pipeline)
    if not is_loandesk_shape(pipeline) or not isinstance(estimator, LogisticRegression):
        return None
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    return {str(n): float(c) for n, c in zip(names, estimator.coef_[0], strict=True)}
