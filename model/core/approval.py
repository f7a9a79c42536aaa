"""An imported classifier seen the way LoanDesk sees every model: labels 0/1, column 1 is approval.

A pipeline someone else trained may call its classes "approved"/"denied", or put approval first;
wrapping it once at import keeps every consumer (scoring, reasons, permutation importance, the API)
on the one contract instead of each learning where approval is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class ApprovalClassifier(ClassifierMixin, BaseEstimator):
    """`estimator`'s probability of class `approved_index` as column 1 of `predict_proba`."""

    def __init__(self, estimator: Any = None, approved_index: int = 1) -> None:
        self.estimator = estimator
        self.approved_index = approved_index

    @classmethod
    def wrap(cls, estimator: Any, approved_index: int) -> ApprovalClassifier:
        """Wrap an already fitted classifier (nothing is refitted)."""
        wrapped = cls(estimator, approved_index)
        wrapped.classes_ = np.array([0, 1])
        wrapped.feature_names_in_ = np.asarray(estimator.feature_names_in_, dtype=object)
        wrapped.n_features_in_ = len(wrapped.feature_names_in_)
        return wrapped

    def fit(self, X: Any, y: Any = None) -> ApprovalClassifier:
        raise NotImplementedError("an imported pipeline is not refitted by LoanDesk: fit yours and import it again")

    def predict_proba(self, X: Any) -> np.ndarray:
        p = np.asarray(self.estimator.predict_proba(X), dtype=float)[:, self.approved_index]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
