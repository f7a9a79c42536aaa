"""The loaded model: scikit-learn's predict/predict_proba, but by column name and validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from .schema import Schema, Validation


class LoanModel:
    """A verified pipeline with its model card. Treat it as read-only: the app shares one instance."""

    def __init__(self, pipeline: Pipeline, card: dict[str, Any], path: str | Path):
        self._pipeline = pipeline
        self.card = card
        self.path = Path(path)
        self.schema = Schema.from_dict(card["schema"])
        self.threshold = float(card["threshold"])
        self.name: str = card["name"]
        self.version: str = card["version"]
        self.sha256: str = card["pipeline_sha256"]

    def __repr__(self) -> str:
        return f"LoanModel({self.name!r}, version={self.version!r}, threshold={self.threshold:g})"

    @property
    def pipeline(self) -> Pipeline:
        """The fitted scikit-learn pipeline (for inspection; do not refit it)."""
        return self._pipeline

    @property
    def features(self) -> list[str]:
        return self.schema.names

    def validate(self, data: Any) -> Validation:
        """Every problem in the input, per row and field; raises only for missing columns."""
        return self.schema.validate(data)

    def predict_proba(self, data: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n, 2): column 1 is the probability of approval."""
        validation = self.validate(data)
        validation.raise_if_errors()
        p = self.approval_probability(validation.clean)
        return np.column_stack([1 - p, p])

    def predict(self, data: Any) -> np.ndarray:
        """1 approved, 0 rejected, at the model's stored threshold."""
        return (self.predict_proba(data)[:, 1] >= self.threshold).astype(int)

    def approval_probability(self, clean: pd.DataFrame) -> np.ndarray:
        """Probabilities for rows that already passed validation (schema order, clean dtypes)."""
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return self._pipeline.predict_proba(clean)[:, 1]

    def decide(self, applicant: Any, curve_field: str | None = None):
        """One applicant's full decision: probability, reasons, warnings, flip points, a curve."""
        from .explain import decide

        return decide(self, applicant, curve_field=curve_field)
