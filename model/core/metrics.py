"""Metrics and fingerprints: plain functions of labels, probabilities and frames, used by training,
the registry's threshold copies and the Model page alike."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss, roc_auc_score


def approves(probability: Any, threshold: float) -> Any:
    """The approval rule, in one place: approved when the probability is at or above the threshold.

    A float gives a bool; an array (or list) gives a boolean array.
    """
    if isinstance(probability, float):
        return probability >= threshold
    return np.asarray(probability) >= threshold


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the training data's content (column names, values and order)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def evaluate(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Hold-out metrics at a threshold; the Model page recomputes these from the stored hold-out."""
    y = np.asarray(y)
    pred = approves(proba, threshold).astype(int)
    approved = pred == 1
    return {
        "auc": float(roc_auc_score(y, proba)),
        "brier": float(brier_score_loss(y, proba)),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-6, 1 - 1e-6))),
        "accuracy": float(accuracy_score(y, pred)),
        "approval_rate": float(approved.mean()),
        "bad_rate_among_approved": float((y[approved] == 0).mean()) if approved.any() else 0.0,
        "good_rejected_share": float((~approved[y == 1]).mean()) if (y == 1).any() else 0.0,
    }
