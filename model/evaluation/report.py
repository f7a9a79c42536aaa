"""How good a version is, computed from its stored hold-out, so no plot ever needs a retrain.

Label semantics: in the hold-out `label` 1 is a good loan (approved in the data), 0 a bad one; the
model approves when the approval probability is at least the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    confusion_matrix_at_thresholds,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from threadpoolctl import threadpool_limits

from model.core.formatting import percent, utc_time
from model.core.metrics import approves, evaluate, fingerprint
from model.core.pipeline import feature_effects as coefficients
from model.registry.store import list_versions, load_holdout
from model.scoring.predictor import LoanModel

# Thresholds the explorer offers, in half-point steps; the table and the slider share them.
THRESHOLDS = np.round(np.arange(0.01, 0.99 + 1e-9, 0.005), 3)
RELIABILITY_BINS = 10
PERMUTATION_REPEATS = 5
KIND_LABELS = {"logistic": "Logistic regression", "gbm": "Gradient boosting", "imported": "Imported pipeline"}
OUTCOMES = ("Approved", "Rejected")  # confusion matrix columns: what the model decided
ACTUALS = ("Good loan", "Bad loan")  # confusion matrix rows: what the data says


@dataclass(frozen=True)
class Roc:
    false_positive_rate: np.ndarray  # share of bad loans approved
    true_positive_rate: np.ndarray  # share of good loans approved
    auc: float


@dataclass(frozen=True)
class PrecisionRecall:
    precision: np.ndarray  # share of good loans among the approved
    recall: np.ndarray  # share of good loans approved
    average_precision: float
    base_rate: float  # the precision of approving everyone


@dataclass(frozen=True)
class Reliability:
    predicted: np.ndarray  # mean approval probability per bin
    observed: np.ndarray  # share of good loans per bin
    rows: np.ndarray  # hold-out rows per (non-empty) bin
    brier: float


@dataclass(frozen=True)
class Confusion:
    """Counts at one threshold: rows good/bad loan (ACTUALS), columns Approved/Rejected (OUTCOMES)."""

    counts: np.ndarray
    threshold: float

    @property
    def shares(self) -> np.ndarray:
        return self.counts / self.counts.sum()

    @property
    def true_positive_rate(self) -> float:
        """Share of good loans approved (the recall)."""
        return _ratio(self.counts[0, 0], self.counts[0].sum())

    @property
    def false_positive_rate(self) -> float:
        """Share of bad loans approved."""
        return _ratio(self.counts[1, 0], self.counts[1].sum())

    @property
    def precision(self) -> float:
        """Share of good loans among the approved (1 when nobody is approved, as scikit-learn's curve ends)."""
        return _ratio(self.counts[0, 0], self.counts[:, 0].sum(), empty=1.0)


def _ratio(part: int, whole: int, empty: float = 0.0) -> float:
    return float(part / whole) if whole else empty


@dataclass(frozen=True)
class FeatureEffects:
    """How each input moves the score, sorted by strength."""

    frame: pd.DataFrame  # columns: feature, label, effect, spread
    method: str  # "coefficients" or "permutation"

    @property
    def description(self) -> str:
        if self.method == "coefficients":
            return ("Standardized logistic-regression coefficients: the change in the log-odds of approval "
                    "for one standard deviation more of the input (positive raises approval).")
        return ("Permutation importance on the hold-out: how much the AUC drops when the input is shuffled "
                f"({PERMUTATION_REPEATS} shuffles; the bar shows the mean, the whisker one standard deviation).")


@dataclass(frozen=True)
class Report:
    """Everything the Model page draws for one version, computed once from its hold-out."""

    version: str
    model_kind: str
    created_at: str
    threshold: float
    label: np.ndarray
    probability: np.ndarray
    metrics: dict[str, float]  # training.evaluate at the version's own threshold
    roc: Roc
    precision_recall: PrecisionRecall
    reliability: Reliability
    thresholds: pd.DataFrame
    holdout_fingerprint: str

    @property
    def rows(self) -> int:
        return len(self.label)

    def at(self, threshold: float) -> tuple[dict[str, float], Confusion]:
        """The hold-out metrics and confusion matrix at another threshold."""
        return evaluate(self.label, self.probability, threshold), confusion(self.label, self.probability, threshold)

    def referred_share(self, threshold: float, refer_band: float) -> float:
        """The share of hold-out applicants a refer band of this width around `threshold` would send
        to an underwriter (as LoanModel.referred decides it)."""
        if refer_band <= 0 or not len(self.probability):
            return 0.0
        return float(np.mean(np.abs(self.probability - threshold) < refer_band / 2))


# --- single pieces, on label and approval-probability arrays ---------------------------------------
def roc(label: np.ndarray, probability: np.ndarray) -> Roc:
    fpr, tpr, _ = roc_curve(label, probability)
    return Roc(fpr, tpr, float(roc_auc_score(label, probability)))


def precision_recall(label: np.ndarray, probability: np.ndarray) -> PrecisionRecall:
    precision, recall, _ = precision_recall_curve(label, probability)
    return PrecisionRecall(precision, recall, float(average_precision_score(label, probability)),
                           float(np.mean(label)))


def reliability(label: np.ndarray, probability: np.ndarray, bins: int = RELIABILITY_BINS) -> Reliability:
    observed, predicted = calibration_curve(label, probability, n_bins=bins, strategy="uniform")
    # calibration_curve drops empty bins; count rows with the same uniform edges and drop them too.
    rows = np.histogram(probability, bins=np.linspace(0, 1, bins + 1))[0]
    return Reliability(predicted, observed, rows[rows > 0], float(brier_score_loss(label, probability)))


def confusion(label: np.ndarray, probability: np.ndarray, threshold: float) -> Confusion:
    approved = approves(probability, threshold).astype(int)
    return Confusion(confusion_matrix(label, approved, labels=[1, 0]), float(threshold))


def threshold_table(label: np.ndarray, probability: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> pd.DataFrame:
    """Approval rate, bad-loan rate among the approved and share of good applicants rejected, per threshold.

    Same definitions as `training.evaluate` (a rate with nothing to count is 0), for a whole grid at once.
    """
    label = np.asarray(label)
    _, fps, _, tps, scores = confusion_matrix_at_thresholds(label, probability)
    # scores fall; the counts at threshold t are those at the lowest score still >= t.
    at = np.searchsorted(-scores, -np.asarray(thresholds, dtype=float), side="right") - 1
    none = at < 0
    good_approved = np.where(none, 0, tps[np.maximum(at, 0)])
    bad_approved = np.where(none, 0, fps[np.maximum(at, 0)])
    approved = good_approved + bad_approved
    good = int(label.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        bad_rate = np.where(approved > 0, bad_approved / approved, 0.0)
        good_rejected = (good - good_approved) / good if good else np.zeros(len(at))
    return pd.DataFrame({
        "threshold": thresholds,
        "approval_rate": approved / len(label),
        "bad_rate_among_approved": bad_rate,
        "good_rejected_share": good_rejected,
    })


def feature_effects(model: LoanModel, holdout: pd.DataFrame | None = None, seed: int = 0) -> FeatureEffects:
    """Standardized coefficients for logistic regression, else permutation importance on the hold-out."""
    labels = {f.name: f.label for f in model.schema.fields}
    coef = coefficients(model.pipeline)
    if coef is not None:
        frame = pd.DataFrame({"feature": list(coef), "effect": list(coef.values()), "spread": 0.0})
        method = "coefficients"
    else:
        holdout = load_holdout(model) if holdout is None else holdout
        clean = model.validate(holdout[model.schema.names]).clean
        # 26 small predicts: OpenMP threads only wait on each other here, and far worse on a busy machine
        # (0.4 s on one thread against 1-8 s on two while other work runs).
        with threadpool_limits(1, user_api="openmp"):
            result = permutation_importance(model.pipeline, clean, holdout["label"].to_numpy(),
                                            scoring="roc_auc", n_repeats=PERMUTATION_REPEATS, random_state=seed)
        frame = pd.DataFrame({"feature": model.schema.names, "effect": result.importances_mean,
                              "spread": result.importances_std})
        method = "permutation"
    frame["label"] = [_feature_label(name, labels) for name in frame["feature"]]
    frame = frame.reindex(frame["effect"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    return FeatureEffects(frame[["feature", "label", "effect", "spread"]], method)


def _feature_label(name: str, labels: dict[str, str]) -> str:
    """A transformed feature's name for people: 'Credit score', or 'Purpose: car' for a one-hot column."""
    if name in labels:
        return labels[name]
    for field, label in sorted(labels.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(field + "_"):
            return f"{label}: {name[len(field) + 1:]}"
    return name


# --- a whole version -------------------------------------------------------------------------------
def report(model: LoanModel) -> Report:
    """Every curve and number of the Model page for one version, from its checksummed hold-out."""
    holdout = load_holdout(model)
    y = holdout["label"].to_numpy(dtype=int)
    p = holdout["probability"].to_numpy(dtype=float)
    return Report(
        version=model.version, model_kind=model.card.model_kind,
        created_at=model.card.created_at, threshold=model.threshold, label=y, probability=p,
        metrics=evaluate(y, p, model.threshold), roc=roc(y, p), precision_recall=precision_recall(y, p),
        reliability=reliability(y, p), thresholds=threshold_table(y, p),
        holdout_fingerprint=fingerprint(holdout[[*model.schema.names, "label"]]),
    )


def versions_frame(registry: str | Path) -> pd.DataFrame:
    """The versions kept in a model folder, newest first, one row each, for a table."""
    rows = [{
        "version": v.version,
        "trained": _when(v.created_at),
        "kind": kind_label(v.model_kind),
        "auc": v.auc,
        "threshold": v.threshold,
        "active": v.active,
        "parent": v.parent or "",
    } for v in list_versions(registry)]
    return pd.DataFrame(rows, columns=["version", "trained", "kind", "auc", "threshold", "active", "parent"])


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


# What the comparison table shows, in order: metric key → (row label, how to write it).
COMPARED = {
    "auc": ("AUC", "{:.3f}"),
    "brier": ("Brier score (lower is better)", "{:.3f}"),
    "log_loss": ("Log loss (lower is better)", "{:.3f}"),
    "accuracy": ("Accuracy", "percent"),
    "approval_rate": ("Approval rate", "percent"),
    "bad_rate_among_approved": ("Bad-loan rate among the approved", "percent"),
    "good_rejected_share": ("Good applicants rejected", "percent"),
}


def comparison_table(reports: list[Report]) -> pd.DataFrame:
    """Versions side by side (one column each), every metric at the version's own threshold."""
    columns = {}
    for r in reports:
        column = {
            "Kind": kind_label(r.model_kind),
            "Trained": utc_time(r.created_at),
            "Threshold": percent(r.threshold),
            "Hold-out rows": f"{r.rows:,}",
        }
        for key, (label, how) in COMPARED.items():
            column[label] = percent(r.metrics[key]) if how == "percent" else how.format(r.metrics[key])
        columns[r.version] = column
    return pd.DataFrame(columns)


def same_holdout(reports: list[Report]) -> bool:
    """Whether the versions were scored on the same rows, so their numbers compare like for like."""
    return len({r.holdout_fingerprint for r in reports}) <= 1


def _when(created_at: str) -> datetime | None:
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
