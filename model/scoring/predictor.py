"""The loaded model: scikit-learn's predict/predict_proba, but by column name and validated."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from model.core.card import ModelCard
from model.core.metrics import approves
from model.core.schema import Schema, Validation
from model.scoring.compiled import compile_pipeline
from model.scoring.reasons import log_odds

if TYPE_CHECKING:
    from model.scoring.explain import Decision


class LoanModel:
    """A verified pipeline with its model card. Treat it as read-only: the app shares one instance."""

    def __init__(self, pipeline: Pipeline, card: Mapping[str, Any], path: str | Path):
        self._pipeline = pipeline
        self.card = card if isinstance(card, ModelCard) else ModelCard.from_dict(card)
        self.path = Path(path)
        self.schema: Schema = self.card.schema
        self.threshold: float = self.card.threshold
        # Width of the band around the threshold whose cases go to an underwriter (0: no band).
        self.refer_band: float = self.card.refer_band
        self.name: str = self.card.name
        self.version: str = self.card.version
        self.sha256: str = self.card.pipeline_sha256
        self._compiled = compile_pipeline(pipeline, self.schema)
        self._plan = None if self._compiled is not None else ServingPlan.of(pipeline)  # scikit-learn's fast path

    def __repr__(self) -> str:
        return f"LoanModel({self.name!r}, version={self.version!r}, threshold={self.threshold:g})"

    @property
    def pipeline(self) -> Pipeline:
        """The fitted scikit-learn pipeline (for inspection; do not refit it)."""
        return self._pipeline

    @property
    def compiled(self) -> bool:
        """Whether scoring runs on the compiled arithmetic rather than through scikit-learn."""
        return self._compiled is not None

    def log_odds(self, columns: Mapping[str, np.ndarray], probabilities: np.ndarray | None = None) -> np.ndarray:
        """The calibrated log-odds of approval for each row: exact for a compiled model; otherwise from
        the probabilities (given, or scored here), which saturate at 0 and 1."""
        if self._compiled is not None:
            return self._compiled.log_odds(columns)
        return log_odds(self.score_columns(columns) if probabilities is None else probabilities)

    def swapped_log_odds(self, columns: Mapping[str, np.ndarray], names: list[str],
                         reference: Mapping[str, Any]) -> np.ndarray:
        """Log-odds with each named field in turn set to its reference value: shape (fields, rows)."""
        if self._compiled is not None:
            return self._compiled.swapped_log_odds(columns, names, reference)
        n = len(columns[names[0]])
        stacked = {name: np.tile(np.asarray(columns[name]), len(names)) for name in self.schema.names}
        for k, name in enumerate(names):
            stacked[name][k * n:(k + 1) * n] = reference[name]
        return log_odds(self.score_columns(stacked)).reshape(len(names), n)

    def referred(self, probabilities: np.ndarray) -> np.ndarray:
        """Which probabilities fall inside the refer band: within half its width of the threshold."""
        p = np.asarray(probabilities, dtype=float)
        if self.refer_band <= 0:
            return np.zeros(p.shape, dtype=bool)
        return np.abs(p - self.threshold) < self.refer_band / 2

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
        return approves(self.predict_proba(data)[:, 1], self.threshold).astype(int)

    def approval_probability(self, clean: pd.DataFrame) -> np.ndarray:
        """Probabilities for rows that already passed validation (schema order, clean dtypes)."""
        return self.score_columns({name: clean[name].to_numpy() for name in self.schema.names})

    def score_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Probabilities for validated column arrays, by name: the explanations' and the API's hot path."""
        if self._compiled is not None:
            return self._compiled(columns)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            if self._plan is None:
                frame = pd.DataFrame({n: columns[n] for n in self.schema.names})
                return self._pipeline.predict_proba(frame)[:, 1]
            return self._plan(columns)

    def decide(self, applicant: Any, curve_field: str | None = None) -> Decision:
        """One applicant's full decision: probability, reasons, warnings, flip points, a curve."""
        from model.scoring.explain import decide

        return decide(self, applicant, curve_field=curve_field)


# The plan's sub-transformers were fitted on named columns and are given the same columns as arrays.
# Set once at import, not per call: `warnings.catch_warnings` is not thread-safe, and Streamlit
# sessions and batch workers score in threads.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


class ServingPlan:
    """The fitted pipeline's own steps, run on numpy column blocks instead of a DataFrame.

    A ColumnTransformer spends most of a small call on pandas bookkeeping (about 1.5 ms of 2 ms for
    a single applicant); feeding each fitted sub-transformer its columns as an array gives the same
    numbers, bit for bit (tests/test_predict.py checks), at a fraction of the cost. Only LoanDesk's
    own pipeline shape is planned; anything else falls back to `Pipeline.predict_proba`.
    """

    def __init__(self, blocks: list[tuple[Any, list[str], bool]], model: Any):
        self._blocks = blocks
        self._model = model

    @classmethod
    def of(cls, pipeline: Pipeline) -> ServingPlan | None:
        steps = dict(pipeline.steps)
        pre = steps.get("preprocess")
        if list(steps) != ["preprocess", "model"] or not isinstance(pre, ColumnTransformer):
            return None
        blocks = []
        for name, transformer, columns in pre.transformers_:
            if name == "remainder":
                continue
            if transformer in ("drop", "passthrough") or name not in ("numbers", "categories"):
                return None
            blocks.append((transformer, list(columns), name == "numbers"))
        return cls(blocks, steps["model"])

    def __call__(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for transformer, names, numeric in self._blocks:
            block = np.asfortranarray(np.column_stack([columns[n] for n in names]))
            parts.append(transformer.transform(block.astype(float) if numeric else block.astype(object)))
        z = parts[0] if len(parts) == 1 else np.hstack(parts)
        return self._model.predict_proba(z)[:, 1]
